"""Console pages for records: the list, the forms (new, edit), delete, the deleted list, history.

Saving goes through Node.put and deleting through Node.delete: the one path that
validates, signs and appends, the same as the JSON write API.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from biofed.node.console import forms, reading
from biofed.node.console.labels import label
from biofed.node.console.web import (Refused, accounts_of, check_csrf, current_session, read_submitted, redirect,
                                     render)
from biofed.node.records import content_of
from biofed.node.store import RecordExists, RecordGone, RecordInvalid, RecordNotFound, VersionConflict
from biofed.schema import validate_record

router = APIRouter(include_in_schema=False)


def _type_of(kind: str) -> str:
    record_type = forms.TYPE_OF_KIND.get(kind)
    if record_type is None:
        raise Refused(404, label("error.not-found"))
    return record_type


def _record(request: Request, kind: str, local: str, *, live: bool = True) -> tuple[dict, bool]:
    node = request.app.state.node
    _type_of(kind)
    record, deleted = reading.current(node, f"{node.id}/{kind}/{local}")
    if record is None:
        raise Refused(404, label("error.not-found"))
    if live and deleted:
        raise Refused(410, label("error.gone"))
    return record, deleted


def _int(text: str | None, default: int = 0) -> int:
    return int(text) if text and text.isdigit() and len(text) < 10 else default


@router.get("/admin")
def home(request: Request):
    current_session(request)
    return redirect("/admin/records")


@router.get("/admin/records")
def records_page(request: Request):
    session = current_session(request)
    params = request.query_params
    query, record_type, page = params.get("q", "")[:200], params.get("type", ""), _int(params.get("page"))
    listed, total = reading.list_records(request.app.state.node, query=query, record_type=record_type, page=page)
    return render(request, "records.html", session=session, records=listed, total=total, query=query,
                  record_type=record_type, page=page, page_size=reading.PAGE)


@router.get("/admin/deleted")
def deleted_page(request: Request):
    session = current_session(request)
    page = _int(request.query_params.get("page"))
    listed, total = reading.list_records(request.app.state.node, deleted=True, page=page)
    return render(request, "deleted.html", session=session, records=listed, total=total, page=page,
                  page_size=reading.PAGE)


def _form_page(request: Request, session, record_type: str, *, values: dict, errors: dict | None = None,
               general: list[str] | None = None, record: dict | None = None, status: int = 200,
               extra_rows: dict | None = None, notice: str = "", conflict: int | None = None):
    node = request.app.state.node
    actors = reading.node_actors(node, request.app.state.console_actor_cache, forms.ACTOR_SELECT_MAX)
    extra_rows = extra_rows or {}
    counts = {group: forms.rows_in(values, group, extra_rows.get(group, 0))
              for group in ("names", "description", "partners")}
    kept = sorted(set(content_of(record)) - forms.managed_keys(record_type)) if record else []
    return render(request, "form.html", status=status, session=session, record_type=record_type,
                  kind=forms.KIND_OF_TYPE[record_type], sections=forms.fields(record_type), values=values,
                  errors=errors or {}, general=general or [], record=record, counts=counts,
                  options=forms.options, actors=actors,
                  kept=kept, notice=notice, conflict=conflict)


@router.get("/admin/new/{kind}")
def new_page(kind: str, request: Request):
    session = current_session(request)
    record_type = _type_of(kind)
    node = request.app.state.node
    values = {"country": node.config.country} if record_type == "Actor" else {}
    return _form_page(request, session, record_type, values=values)


@router.get("/admin/edit/{kind}/{local}")
def edit_page(kind: str, local: str, request: Request):
    session = current_session(request)
    record, _ = _record(request, kind, local)
    notice = ""
    if request.query_params.get("saved", "").isdigit():
        notice = label("form.saved", version=request.query_params["saved"])
    elif request.query_params.get("unchanged", "").isdigit():
        notice = label("form.unchanged", version=request.query_params["unchanged"])
    return _form_page(request, session, record["type"], values=forms.form_values(record), record=record,
                      notice=notice)


@router.post("/admin/new/{kind}")
async def create(kind: str, request: Request):
    return await _save(request, kind, None)


@router.post("/admin/edit/{kind}/{local}")
async def update(kind: str, local: str, request: Request):
    return await _save(request, kind, local)


async def _save(request: Request, kind: str, local: str | None):
    session = current_session(request)
    submitted = await read_submitted(request)
    check_csrf(submitted, session.csrf)
    record_type = _type_of(kind)
    node = request.app.state.node
    record = _record(request, kind, local)[0] if local else None
    form = forms.FormData(submitted.fields)
    shown = {**(forms.form_values(record) if record else {}), **form.flat()}
    if submitted.get("_more") in ("names", "description", "partners"):  # "Add a row": show the form again
        return _form_page(request, session, record_type, values=shown, record=record,
                          extra_rows={submitted.get("_more"): 1})
    content, errors = forms.read_form(record_type, form, node_id=node.id, current=content_of(record) if record else None,
                                      actor=lambda actor_id: reading.actor_summary(node, actor_id))
    issues: list[dict] = []
    conflict = None
    signed = None
    before = node.record(content["id"]) if "id" in content else None
    if errors:
        issues = [issue.as_dict() for issue in validate_record(content, signed=False)]
    else:
        try:
            expected = _int(submitted.get("_version"), -1) if record else None
            signed = await run_in_threadpool(node.put, content, expect_version=expected, create=record is None)
        except RecordInvalid as exc:
            issues = exc.errors
        except RecordExists:
            errors["id"] = [f"a record with the id {content['id']} exists already; choose another id"]
        except VersionConflict:
            conflict = node.record(content["id"]).version
        except (RecordNotFound, RecordGone) as exc:
            raise Refused(exc.status, str(exc)) from None
    if signed is None:
        general = _place_issues(record_type, issues, errors, shown)
        return _form_page(request, session, record_type, values=shown, errors=errors, general=general,
                          record=record, status=409 if conflict else 422, conflict=conflict)
    version = signed["version"]
    local_id = signed["id"].rsplit("/", 1)[-1]
    if before is not None and not before.deleted and before.version == version:
        return redirect(f"/admin/edit/{kind}/{local_id}?unchanged={version}")
    action = "created" if before is None else "restored" if before.deleted else "updated"
    await run_in_threadpool(accounts_of(request).audit, session.user, action, signed["id"], version)
    return redirect(f"/admin/edit/{kind}/{local_id}?saved={version}")


def _place_issues(record_type: str, issues: list[dict], errors: dict[str, list[str]], values: dict) -> list[str]:
    """Put each validation issue beside its field (in plain words); return those about the whole record."""
    known = forms.field_names(record_type, values)
    general = []
    for issue in issues:
        field = forms.field_of_pointer(issue.get("pointer", ""), known)
        if field and field in errors:
            continue  # the value could not be read at all: that says enough
        message = label("error.required") if issue.get("rule") == "required" and field else issue.get("message", "")
        if field:
            if message not in errors.setdefault(field, []):
                errors[field].append(message)
        else:
            general.append(message)
    return general


@router.get("/admin/delete/{kind}/{local}")
def delete_page(kind: str, local: str, request: Request):
    session = current_session(request)
    record, _ = _record(request, kind, local)
    return render(request, "delete.html", session=session, record=record, name=reading.listed_of(record, 0).name)


@router.post("/admin/delete/{kind}/{local}")
async def delete(kind: str, local: str, request: Request):
    session = current_session(request)
    submitted = await read_submitted(request)
    check_csrf(submitted, session.csrf)
    record, _ = _record(request, kind, local)
    node = request.app.state.node
    try:
        tombstone = await run_in_threadpool(node.delete, record["id"],
                                            expect_version=_int(submitted.get("_version"), -1))
    except VersionConflict:
        return redirect(f"/admin/delete/{kind}/{local}")
    await run_in_threadpool(accounts_of(request).audit, session.user, "deleted", record["id"], tombstone["version"])
    name = reading.listed_of(record, 0).name
    return render(request, "deleted_one.html", session=session, record=record, name=name,
                  version=tombstone["version"])


@router.get("/admin/history/{kind}/{local}")
def history_page(kind: str, local: str, request: Request):
    session = current_session(request)
    record, deleted = _record(request, kind, local, live=False)
    node = request.app.state.node
    all_versions = reading.versions(node, record["id"])
    authors = {(entry["version"]): entry["user"]
               for entry in accounts_of(request).audit_entries(record_id=record["id"], limit=10_000)}
    shown, before = [], None
    for version in all_versions:
        shown.append({"version": version.get("version"), "time": version.get("dateModified", ""),
                      "deleted": version.get("type") == "Tombstone", "changes": reading.changes(before, version),
                      "first": before is None, "by": authors.get(version.get("version"))})
        before = version
    named = next((v for v in reversed(all_versions) if v.get("type") != "Tombstone"), record)
    return render(request, "history.html", session=session, record=record, deleted=deleted,
                  name=reading.listed_of(named, 0).name, versions=list(reversed(shown)))
