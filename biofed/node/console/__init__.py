"""The node's web console at /admin: cluster staff keep the node's records in a browser.

Server-rendered (Jinja2 templates in templates/, no script needed), part of the
node app: the same process, store and signing path as the JSON write API.
Modules: accounts (users, passwords, sessions, audit), web (templates, session,
CSRF, capped form bodies), forms (record forms from the data standard), reading
(lists, versions, changes), spreadsheet (the .xlsx template and uploads), the
pages (auth, records, sheets, admin), labels (every word shown).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SWAGGER = "/admin/static/swagger-ui"


def install(app: FastAPI) -> None:
    """Add the console (pages, static files, the API page with local assets) to the node app."""
    from biofed.node.console import admin, auth, records, sheets
    from biofed.node.console.accounts import Accounts
    from biofed.node.console.web import Refused, redirect, render

    app.state.console_accounts = Accounts(app.state.node)
    app.state.console_actor_cache = {}

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        if exc.location:
            return redirect(exc.location)
        return render(request, "error.html", status=exc.status, message=exc.message)

    for pages in (auth, records, sheets, admin):
        app.include_router(pages.router)
    app.mount("/admin/static", StaticFiles(directory=STATIC), name="console-static")

    @app.get("/docs", include_in_schema=False)
    def api_page():
        # FastAPI's default page loads Swagger UI from a CDN: blank offline. These are the vendored files.
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")
