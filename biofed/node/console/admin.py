"""Admin pages: accounts, API tokens, the signing keys' status, the audit trail."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from biofed.errors import BiofedError
from biofed.node.console.accounts import ROLES
from biofed.node.console.labels import label
from biofed.node.console.web import accounts_of, check_csrf, current_session, read_submitted, render
from biofed.node.store import SCOPES

router = APIRouter(include_in_schema=False)


def setup_link(request: Request, token: str) -> str:
    """Where the new account chooses its password: on the node's public address when it has one."""
    base = request.app.state.node.config.baseUrl or str(request.base_url).rstrip("/")
    return f"{base}/admin/setup?token={token}"


def _accounts_page(request, session, *, status=200, link="", link_user="", error="", notice=""):
    return render(request, "accounts.html", status=status, session=session, users=accounts_of(request).users(),
                  roles=ROLES, link=link, link_user=link_user, error=error, notice=notice)


@router.get("/admin/accounts")
def accounts_page(request: Request):
    session = current_session(request, admin=True)
    return _accounts_page(request, session)


@router.post("/admin/accounts")
async def add_account(request: Request):
    session = current_session(request, admin=True)
    submitted = await read_submitted(request)
    check_csrf(submitted, session.csrf)
    accounts = accounts_of(request)
    action, name = submitted.get("action") or "add", submitted.get("name").strip()
    try:
        if action == "add":
            token = await run_in_threadpool(accounts.add_user, name.lower(), submitted.get("role"), by=session.user)
            return _accounts_page(request, session, link=setup_link(request, token), link_user=name.lower())
        if action == "reset":
            token = await run_in_threadpool(accounts.reset, name, by=session.user)
            return _accounts_page(request, session, link=setup_link(request, token), link_user=name)
        if action == "disable":
            await run_in_threadpool(accounts.disable, name, by=session.user)
            return _accounts_page(request, session, notice=label("accounts.disabled-done", user=name))
    except BiofedError as exc:
        return _accounts_page(request, session, status=422, error=str(exc))
    return _accounts_page(request, session, status=422, error=f"unknown action {action!r}")


def _tokens_page(request, session, *, status=200, token="", token_name="", error="", notice=""):
    return render(request, "tokens.html", status=status, session=session,
                  tokens=request.app.state.node.list_tokens(), scopes=SCOPES, token=token, token_name=token_name,
                  error=error, notice=notice)


@router.get("/admin/tokens")
def tokens_page(request: Request):
    session = current_session(request, admin=True)
    return _tokens_page(request, session)


@router.post("/admin/tokens")
async def change_tokens(request: Request):
    session = current_session(request, admin=True)
    submitted = await read_submitted(request)
    check_csrf(submitted, session.csrf)
    node, accounts = request.app.state.node, accounts_of(request)
    name = submitted.get("name").strip()
    try:
        if submitted.get("action") == "revoke":
            await run_in_threadpool(node.revoke_token, name)
            await run_in_threadpool(accounts.audit, session.user, "token-revoked", detail=name)
            return _tokens_page(request, session, notice=label("tokens.revoked-done", name=name))
        scopes = [scope for name_, scope in submitted.fields if name_ == "scope"]
        token = await run_in_threadpool(node.create_token, name, scopes)
        await run_in_threadpool(accounts.audit, session.user, "token-created", detail=f"{name} ({' '.join(scopes)})")
        return _tokens_page(request, session, token=token, token_name=name)
    except BiofedError as exc:
        return _tokens_page(request, session, status=422, error=str(exc))


@router.get("/admin/keys")
def keys_page(request: Request):
    session = current_session(request, admin=True)
    node = request.app.state.node
    row = node.conn.execute("SELECT size, timestamp FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return render(request, "keys.html", session=session, keys=node.keys(), size=row[0] if row else 0,
                  time=row[1] if row else "")


@router.get("/admin/audit")
def audit_page(request: Request):
    session = current_session(request, admin=True)
    page = request.query_params.get("page", "0")
    page = int(page) if page.isdigit() and len(page) < 7 else 0
    entries = accounts_of(request).audit_entries(limit=100, offset=page * 100)
    return render(request, "audit.html", session=session, entries=entries, page=page)
