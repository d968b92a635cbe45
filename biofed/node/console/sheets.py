"""Spreadsheet pages: download the template, upload a filled one, preview, confirm.

The preview is `import_rows(..., dry_run=True)` and the confirmation the same
call without it: what `biofed node import [--sync]` does, on the file kept
between the two steps (in the node's database, for an hour, for that account).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from biofed.node.console import reading
from biofed.node.console.labels import label
from biofed.node.console.spreadsheet import column_of, keep_sources, uploaded_rows, workbook_of
from biofed.node.console.web import (MAX_UPLOAD_BYTES, Refused, accounts_of, check_csrf, current_session,
                                     read_submitted, redirect, render)
from biofed.node.importing import MASS_DELETE_SHARE, import_rows

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIMIT_MIB = MAX_UPLOAD_BYTES // 2**20


@router.get("/admin/spreadsheet")
def sheet_page(request: Request):
    session = current_session(request)
    return render(request, "spreadsheet.html", session=session, limit=LIMIT_MIB, error="")


@router.get("/admin/spreadsheet/records.xlsx")
async def download(request: Request):
    current_session(request)
    node = request.app.state.node
    data = await run_in_threadpool(workbook_of, node)
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{node.id}-records.xlsx"', "Cache-Control": "no-store"})


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-100:] or "upload"


def _preview(node, filename: str, data: bytes, *, sync: bool, allow_mass_delete: bool, dry_run: bool):
    suffix = ".csv" if filename.lower().endswith(".csv") else ".xlsx"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("upload" + suffix)
        path.write_bytes(data)
        rows = [keep_sources(node, row) for row in uploaded_rows(path, node)]
    outcome = import_rows(node, rows, dry_run=dry_run, sync=sync, allow_mass_delete=allow_mass_delete,
                          label="")
    contents = {row.content.get("id"): row.content for row in rows if row.content}
    return outcome, contents


def _where(source: str) -> tuple[str, str]:
    """'Actors row 12' -> ('Actors', '12')."""
    match = re.match(r"^(.*?)\s*row (\d+)$", source)
    return (match.group(1), match.group(2)) if match else (source, "")


def _plan(node, outcome, contents) -> dict:
    groups: dict[str, list] = {"created": [], "updated": [], "restored": [], "unchanged": [], "deleted": []}
    for action, record_id, source in outcome.result.changes:
        entry = {"id": record_id, "source": source, "changes": []}
        if action in ("updated", "restored") and record_id in contents:
            before, _ = reading.current(node, record_id)
            entry["changes"] = reading.changes(before, {**contents[record_id], "type": before["type"]})
        groups[action].append(entry)
    errors = []
    for rejected in outcome.rejected:
        sheet, row = _where(rejected.source)
        for error in rejected.errors:
            errors.append({"sheet": sheet, "row": row, "column": column_of(error.get("pointer") or ""),
                           "message": error.get("message", "")})
    warnings = []
    for source, warning in outcome.warnings:
        sheet, row = _where(source)
        warnings.append({"sheet": sheet, "row": row, "column": warning.field, "message": warning.message})
    return {"groups": groups, "errors": errors, "warnings": warnings}


@router.post("/admin/spreadsheet")
async def upload(request: Request):
    session = current_session(request)
    submitted = await read_submitted(request, MAX_UPLOAD_BYTES)
    check_csrf(submitted, session.csrf)
    filename, data = submitted.files.get("file", ("", b""))
    if not data:
        return render(request, "spreadsheet.html", status=422, session=session, limit=LIMIT_MIB,
                      error=label("sheet.empty"))
    if not filename.lower().endswith((".xlsx", ".csv")):
        return render(request, "spreadsheet.html", status=422, session=session, limit=LIMIT_MIB,
                      error=label("sheet.kind"))
    accounts = accounts_of(request)
    upload_id = await run_in_threadpool(accounts.keep_upload, session.user, _safe_name(filename), data)
    return await _show(request, session, upload_id, _safe_name(filename), data, sync=bool(submitted.get("sync")),
                       allow_mass_delete=False)


async def _show(request, session, upload_id, filename, data, *, sync, allow_mass_delete):
    node = request.app.state.node
    outcome, contents = await run_in_threadpool(_preview, node, filename, data, sync=sync,
                                                allow_mass_delete=allow_mass_delete, dry_run=True)
    plan = _plan(node, outcome, contents)
    blocked = bool(outcome.rejected)
    writes = outcome.result.written
    return render(request, "preview.html", status=422 if blocked else 200, session=session, upload_id=upload_id,
                  filename=filename, plan=plan, outcome=outcome, sync=sync, blocked=blocked, writes=writes,
                  mass_delete=outcome.mass_delete, share=f"{MASS_DELETE_SHARE:.0%}",
                  allow_mass_delete=allow_mass_delete)


@router.post("/admin/spreadsheet/confirm")
async def confirm(request: Request):
    session = current_session(request)
    submitted = await read_submitted(request)
    check_csrf(submitted, session.csrf)
    accounts = accounts_of(request)
    upload_id = submitted.get("upload")
    kept = await run_in_threadpool(accounts.upload, upload_id, session.user)
    if kept is None:
        return render(request, "spreadsheet.html", status=410, session=session, limit=LIMIT_MIB,
                      error=label("sheet.expired"))
    filename, data = kept
    sync, allow = bool(submitted.get("sync")), bool(submitted.get("allow_mass_delete"))
    node = request.app.state.node
    outcome, _ = await run_in_threadpool(_preview, node, filename, data, sync=sync, allow_mass_delete=allow,
                                         dry_run=False)
    if not outcome.written:  # errors or a refused mass delete: show the preview again, nothing was published
        return await _show(request, session, upload_id, filename, data, sync=sync, allow_mass_delete=allow)
    entries = []
    for action, record_id, _ in outcome.result.changes:
        if action != "unchanged":
            stored = node.record(record_id)
            entries.append((action, record_id, stored.version if stored else None))
    await run_in_threadpool(accounts.audit_many, session.user, entries, f"spreadsheet {filename}")
    await run_in_threadpool(accounts.drop_upload, upload_id)
    result = outcome.result
    return render(request, "spreadsheet.html", session=session, limit=LIMIT_MIB, error="",
                  done=label("sheet.done", created=result.created, updated=result.updated, restored=result.restored,
                             deleted=result.deleted, unchanged=result.unchanged))


@router.get("/admin/spreadsheet/confirm")
def confirm_get(request: Request):
    current_session(request)
    return redirect("/admin/spreadsheet")
