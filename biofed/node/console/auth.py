"""Logging in and out, and choosing a password from a one-time setup link."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from biofed.node.console.accounts import MIN_PASSWORD, AccountError, LoginRefused
from biofed.node.console.labels import label
from biofed.node.console.web import (LOGIN_COOKIE, SESSION_COOKIE, Refused, accounts_of, check_csrf, is_https,
                                     login_token, read_submitted, redirect, render, safe_next, set_session_cookie)

router = APIRouter(include_in_schema=False)


def _login_page(request: Request, *, status: int = 200, error: str = "", name: str = "", notice: str = ""):
    token, new = login_token(request)
    response = render(request, "login.html", status=status, csrf=token, error=error, name=name, notice=notice,
                      next=safe_next(request.query_params.get("next")))
    if new:
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request),
                            path="/admin")
    return response


@router.get("/admin/login")
def login_page(request: Request):
    return _login_page(request, notice=label("setup.done") if request.query_params.get("setup") == "done" else "")


@router.post("/admin/login")
async def login(request: Request):
    submitted = await read_submitted(request)
    check_csrf(submitted, request.cookies.get(LOGIN_COOKIE))
    name = submitted.get("name")
    try:
        cookie, _ = await run_in_threadpool(accounts_of(request).login, name, submitted.get("password"))
    except LoginRefused as exc:
        status = 429 if exc.retry_after else 401
        message = str(exc)[0].upper() + str(exc)[1:] + "." if exc.retry_after else label("login.failed")
        response = _login_page(request, status=status, error=message, name=name[:64])
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = redirect(safe_next(submitted.get("next")))
    set_session_cookie(response, request, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/admin/logout")
async def logout(request: Request):
    submitted = await read_submitted(request)
    accounts = accounts_of(request)
    session = accounts.session(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        check_csrf(submitted, session.csrf)
        await run_in_threadpool(accounts.logout, request.cookies.get(SESSION_COOKIE))
    response = redirect("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.get("/admin/setup")
def setup_page(request: Request):
    token = request.query_params.get("token", "")
    user = accounts_of(request).setup_account(token)
    if user is None:
        raise Refused(404, label("setup.bad-link"))
    return render(request, "setup.html", token=token, user=user, minimum=MIN_PASSWORD, error="")


@router.post("/admin/setup")
async def setup(request: Request):
    submitted = await read_submitted(request)
    token = submitted.get("token")
    accounts = accounts_of(request)
    user = accounts.setup_account(token)
    if user is None:
        raise Refused(404, label("setup.bad-link"))
    # The setup token itself is the secret that proves the form came from its link: it is the CSRF check.
    password, again = submitted.get("password"), submitted.get("again")
    error = ""
    if not hmac.compare_digest(password.encode(), again.encode()):
        error = label("setup.mismatch")
    else:
        try:
            await run_in_threadpool(accounts.set_password, token, password)
        except AccountError as exc:
            error = str(exc)[0].upper() + str(exc)[1:] + "."
    if error:
        return render(request, "setup.html", status=422, token=token, user=user, minimum=MIN_PASSWORD, error=error)
    return redirect("/admin/login?setup=done")
