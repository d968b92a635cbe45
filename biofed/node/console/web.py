"""What every console page needs: templates, the session, CSRF, reading a capped form body, HTML answers."""

from __future__ import annotations

import hmac
import io
import secrets
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from python_multipart import parse_form

from biofed.node.console.accounts import Accounts, Session
from biofed.node.console.labels import LANGUAGE, label

HERE = Path(__file__).parent
SESSION_COOKIE = "biofed_console"
LOGIN_COOKIE = "biofed_console_login"  # the login form's CSRF token (double submit: there is no session yet)
MAX_FORM_BYTES = 256 * 1024  # a record form (at most 64 KiB of record) with room for its field names
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_FIELDS = 5000  # a spreadsheet; the importer's own limit for a file is 32 MiB

# No script, no frame, no form to another site; styles and images only from the node itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
templates.globals.update(t=label, lang=LANGUAGE)
# 2026-11-30T15:51:13Z -> 2026-11-30 15:51 UTC: RFC 3339 is for machines
templates.filters["when"] = lambda text: f"{text[:10]} {text[11:16]} UTC" if text and len(text) >= 16 else text


class Refused(Exception):
    """A console page answered with an error page (or a redirect) instead of its content."""

    def __init__(self, status: int, message: str = "", location: str | None = None):
        super().__init__(message)
        self.status, self.message, self.location = status, message, location


class TooLarge(Refused):
    def __init__(self, limit: int):
        super().__init__(413, label("error.too-large"))
        self.limit = limit


@dataclass
class Submitted:
    fields: list[tuple[str, str]]
    files: dict[str, tuple[str, bytes]]  # field -> (file name, bytes)

    def get(self, key: str) -> str:
        return next((value for name, value in self.fields if name == key), "")


def accounts_of(request: Request) -> Accounts:
    return request.app.state.console_accounts


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def render(request: Request, template: str, status: int = 200, session: Session | None = None,
           **context) -> HTMLResponse:
    node = request.app.state.node
    page = templates.get_template(template).render(node=node, session=session, path=request.url.path, **context)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def current_session(request: Request, *, admin: bool = False) -> Session:
    """The logged-in session, or Refused: to the login page (none), 403 (an editor on an admin page)."""
    session = accounts_of(request).session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Refused(303, location="/admin/login?" + urllib.parse.urlencode({"next": target}))
    if admin and not session.is_admin:
        raise Refused(403, label("error.forbidden"))
    return session


def check_csrf(submitted: Submitted, expected: str | None) -> None:
    given = submitted.get("_csrf")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(403, label("error.csrf"))


async def read_submitted(request: Request, limit: int = MAX_FORM_BYTES) -> Submitted:
    """The form a browser sent, at most `limit` bytes: urlencoded (the standard library reads it) or multipart
    (python-multipart reads it: a file upload)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise TooLarge(limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "the form could not be read (not UTF-8, or too many fields)") from None
        return Submitted(pairs, {})
    if not body or not content_type.startswith("multipart/form-data"):
        return Submitted([], {})
    fields: list[tuple[str, str]] = []
    files: dict[str, tuple[str, bytes]] = {}

    def on_field(field) -> None:  # a multipart part's name and value come as sent (no URL encoding)
        if field.field_name is not None and len(fields) < MAX_FIELDS:
            fields.append((field.field_name.decode("utf-8", "replace"),
                           (field.value or b"").decode("utf-8", "replace")))

    def on_file(file) -> None:
        file.file_object.seek(0)
        name = (file.file_name or b"").decode("utf-8", "replace")
        files[(file.field_name or b"").decode("utf-8", "replace")] = (name, file.file_object.read())
        file.close()

    try:
        parse_form({"Content-Type": content_type.encode("latin-1"), "Content-Length": str(len(body)).encode()},
                   io.BytesIO(body), on_field, on_file)
    except Exception as exc:  # python-multipart raises its own errors for a malformed body
        raise Refused(400, f"the form could not be read ({type(exc).__name__})") from None
    return Submitted(fields, files)


def set_session_cookie(response, request: Request, cookie: str) -> None:
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="strict", secure=is_https(request),
                        path="/admin")


def login_token(request: Request) -> tuple[str, bool]:
    """The login form's CSRF token: the one in the browser's cookie, or a new one (True: set the cookie)."""
    token = request.cookies.get(LOGIN_COOKIE)
    if token and 20 <= len(token) <= 100:
        return token, False
    return secrets.token_urlsafe(32), True


def safe_next(target: str | None) -> str:
    """Only a console path of this site: never an open redirect."""
    if target and target.startswith("/admin/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/records"
