"""The catalogue for people: BioFed's pages, readable cells, and a 404 that stays a 404.

Hooks: register_routes (the front door, search, record and region pages in
biofed.aggregator.datasette.pages), extra_template_vars (names for codes,
the map's tile server) and render_cell (euros, country and region names,
record ids as links to their pages). Only the HTML changes: Datasette's JSON,
CSV and SQL answers keep the stored values.
"""

from __future__ import annotations

import re
import sqlite3

from datasette import Response, hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from biofed.aggregator.datasette import labels, pages

RECORD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}/(actor|project|offer)/[a-z0-9][a-z0-9._-]{0,127}$")
DEFAULT_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_ATTRIBUTION = '© OpenStreetMap contributors'
_ROW_TABLES = {"actor": "actors", "project": "projects", "offer": "offers"}


def quiet_rich_tracebacks() -> None:
    """Stop Datasette 0.65 turning a 404 into a 500.

    Its default handle_exception calls rich's print_exception(), which raises
    ValueError when no exception is being handled -- and an unknown URL (one no
    route matches, e.g. /a/b/c/d) reaches it with a NotFound that was created,
    not raised. Without rich it prints plain tracebacks for real 500s as before.
    """
    import datasette.handle_exception

    datasette.handle_exception.rich = None


def row_url(kind: str, record_id: str) -> str:
    """Datasette's row page of a record (its data view): /catalogue/actors/<tilde-encoded id>."""
    return f"/{pages.DATABASE}/{_ROW_TABLES.get(kind, kind)}/{tilde_encode(record_id)}"


def _settings(datasette) -> dict:
    return datasette.plugin_config("biofed") or {}


@hookimpl
def startup(datasette):
    quiet_rich_tracebacks()


def client_error_status(exception, url_vars: dict | None = None) -> tuple[int, str] | None:
    """(status, message) for the errors Datasette 0.65 reports as 500 although the request is at fault."""
    from datasette.views.base import DatasetteError

    message = str(exception)
    if isinstance(exception, DatasetteError) and exception.status == 500 and message.startswith("Cannot sort table by"):
        return 400, message  # ?_sort= on a column that is not sortable
    if isinstance(exception, sqlite3.ProgrammingError):
        # Parameters the request's own SQL cannot be given: a row named by fewer values than its
        # key has columns (404), or a ?_where= with a ? or :name in it (400).
        if (url_vars or {}).get("pks") is not None and "supply a value for binding parameter" in message:
            return 404, "No such row: a row of this table is named by all of its key columns"
        return 400, f"The query's parameters do not fit it: {message}"
    return None


@hookimpl(tryfirst=True)
def handle_exception(datasette, request, exception):
    known = client_error_status(exception, getattr(request, "url_vars", None))
    if known is None:
        return None
    status, message = known

    async def inner():
        if request.path.split("?")[0].endswith(".json"):
            return Response.json({"ok": False, "error": message, "status": status, "title": None}, status=status,
                                 headers={"Access-Control-Allow-Origin": "*"} if datasette.cors else {})
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        body = await template.render_async({"ok": False, "error": message, "status": status, "title": None,
                                            "urls": datasette.urls, "app_css_hash": datasette.app_css_hash(),
                                            "menu_links": lambda: []})
        return Response.html(body, status=status)

    return inner


@hookimpl
def register_routes():
    return pages.ROUTES


@hookimpl
def extra_template_vars(request, datasette):
    settings = _settings(datasette)
    base_url = ""
    if request is not None:
        base_url = f"{request.scheme}://{request.host}"
    return {
        "label": labels.label,
        "short_label": labels.short_label,
        "country_name": labels.country_name,
        "region_label": labels.region_name,
        "euros": labels.euros,
        "web_url": labels.web_url,
        "row_url": row_url,
        "base_url": base_url,
        "tiles": settings.get("tiles") or DEFAULT_TILES,
        "tiles_attribution": settings.get("tiles_attribution") or DEFAULT_ATTRIBUTION,
    }


def _link(record_id: str, text: str) -> Markup:
    return Markup('<a href="/{}">{}</a>').format(Markup(escape(record_id)), text or record_id)


# Columns shown as a code list's label, in any table or query.
_LABELLED = {"actor_type": "actor_type", "sector": "sector", "stage": "stage", "offer_type": "offer_type",
             "role": "role", "programme": "programme"}
_COUNTRY = {"country", "partner_country", "coordinator_country"}
_REGION = {"region", "partner_region"}
_TITLE = {("actors", "name"), ("projects", "title"), ("offers", "title")}


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if database != pages.DATABASE or value is None or value == "":
        return None
    if isinstance(value, dict):  # an expanded foreign key: {"value": ..., "label": ...}
        target = value.get("value")
        if column in _REGION and isinstance(target, str):
            return _region_link(target)
        if isinstance(target, str) and RECORD_ID.match(target):
            return _link(target, value.get("label") or target)
        return None
    if column.endswith("_eur") and isinstance(value, (int, float)):
        return labels.euros(value)
    if column in _COUNTRY and isinstance(value, str) and len(value) == 2:
        return Markup('<span title="{}">{}</span>').format(value, labels.country_name(value))
    if column in _REGION and isinstance(value, str) and table != "regions":
        return _region_link(value)
    if column in _LABELLED and isinstance(value, str):
        return Markup('<span title="{}">{}</span>').format(value, labels.short_label(_LABELLED[column], value))
    if (table, column) in _TITLE and isinstance(value, str):
        record_id = _row_value(row, "id")
        if record_id and RECORD_ID.match(record_id):
            return _link(record_id, value)
    if isinstance(value, str) and table not in _ROW_TABLES.values() and RECORD_ID.match(value):
        return _link(value, value)  # a record id in a query or junction table: its page
    return None


def _region_link(code: str) -> Markup:
    return Markup('<a href="/region/{}" title="{}">{}</a>').format(code, code, labels.region_name(code))


def _row_value(row, column: str):
    try:
        return row[column]
    except (KeyError, IndexError, TypeError):
        return None
