"""The node's records as an .xlsx template, and a filled one read back.

The template has one sheet per record type in the columns of the spreadsheet
importer (docs/importing.md), an `id` column, and drop-down lists (data
validation) for the coded columns. Reading it back goes through the importer
(biofed.node.importers) and biofed.node.importing.import_rows, so an upload in
the console means what `biofed node import` means, with one addition: a row of a
published record keeps that record's `sources` (provenance has no column, and
editing a cell must not erase where the record came from). A record with other
fields the columns cannot hold (a partner's identifiers, a link's title) is
named on the "Read me" sheet: uploading the sheet would publish it without them.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import orjson
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from biofed.node.importers import ImportRow, RowError, read_rows
from biofed.node.importers.columns import map_row
from biofed.node.importers.xlsx import read_xlsx
from biofed.node.records import content_of
from biofed.node.store import Node
from biofed.schema.codes import code_list

SHEETS = {"Actor": "Actors", "Project": "Projects", "Offer": "Offers"}
KIND_OF_SHEET = {"Actors": "actor", "Projects": "project", "Offers": "offer"}
COLUMNS = {
    "Actor": ["id", "name", "name_lang", "other_names", "acronym", "actor_type", "status", "size_class",
              "founding_year", "sectors", "value_chain_stages", "technologies", "services", "website", "email",
              "phone", "contact_form", "street", "postal_code", "city", "country", "region", "lat", "lon", "ror",
              "pic", "vat", "lei", "wikidata", "memberships"],
    "Project": ["id", "title", "acronym", "programme", "programme_codes", "funding_scheme", "call", "grant_id",
                "start_date", "end_date", "status", "total_budget", "eu_contribution", "co_funding_rate", "topics",
                "coordinator", "partners", "links"],
    "Offer": ["id", "title", "offer_type", "provider", "conditions", "valid_until", "sectors", "value_chain_stages",
              "technologies", "website", "email", "phone", "contact_form", "country", "region"],
}
# One code per cell: a drop-down list. (Several codes per cell, `;`-separated, get the list as a note.)
SINGLE_CODES = {"actor_type": "actor-types", "status": None, "size_class": "size-classes", "programme": "programmes",
                "offer_type": "offer-types", "country": "countries", "region": "nuts2021"}
STATUS_LISTS = {"Actor": "actor-statuses", "Project": "project-statuses"}
SEVERAL_CODES = {"sectors": "sectors", "value_chain_stages": "value-chain-stages"}
# Where each column's value is in a record: for naming the column of a problem the data standard finds.
COLUMN_OF_POINTER = {
    "/names": "name", "/acronyms": "acronym", "/actorType": "actor_type", "/status": "status",
    "/sizeClass": "size_class", "/foundingYear": "founding_year", "/sectors": "sectors",
    "/valueChainStages": "value_chain_stages", "/technologies": "technologies", "/services": "services",
    "/website": "website", "/contact/email": "email", "/contact/phone": "phone", "/contact/contactForm": "contact_form",
    "/address/street": "street", "/address/postalCode": "postal_code", "/address/locality": "city",
    "/country": "country", "/region": "region", "/geo/lat": "lat", "/geo/lon": "lon", "/identifiers/ror": "ror",
    "/identifiers/pic": "pic", "/identifiers/vat": "vat", "/identifiers/lei": "lei",
    "/identifiers/wikidata": "wikidata", "/memberships": "memberships", "/title": "title", "/acronym": "acronym",
    "/programme": "programme", "/programmeCodes": "programme_codes", "/fundingScheme": "funding_scheme",
    "/call": "call", "/grantId": "grant_id", "/startDate": "start_date", "/endDate": "end_date",
    "/totalBudgetCents": "total_budget", "/euContributionCents": "eu_contribution",
    "/coFundingRateBp": "co_funding_rate", "/topics": "topics", "/partners": "partners", "/links": "links",
    "/offerType": "offer_type", "/provider": "provider", "/conditions": "conditions", "/validUntil": "valid_until",
    "/description": "description", "/id": "id",
}


def column_of(pointer: str) -> str:
    """The spreadsheet column a JSON pointer (or an importer's column name) is about."""
    if not pointer.startswith("/"):
        return pointer
    parts = pointer.split("/")
    for length in range(len(parts), 1, -1):
        column = COLUMN_OF_POINTER.get("/".join(parts[:length]))
        if column:
            return column
    return pointer


def _joined(items) -> str:
    return "; ".join(items or [])


def _euros(cents: int | None) -> str:
    return "" if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _percent(bp: int | None) -> str:
    if bp is None:
        return ""
    return f"{bp // 100}" + (f".{bp % 100:02d}".rstrip("0") if bp % 100 else "")


def row_of(record: dict) -> dict[str, object]:
    """A record as the importer's columns (column -> cell value)."""
    kind = record["type"]
    row: dict[str, object] = {"id": record["id"].rsplit("/", 1)[-1]}
    for lang, text in (record.get("description") or {}).items():
        row[f"description_{lang.lower()}"] = text
    contact = record.get("contact") or {}
    row.update({"website": record.get("website", ""), "email": contact.get("email", ""),
                "phone": contact.get("phone", ""), "contact_form": contact.get("contactForm", ""),
                "country": record.get("country", ""), "region": record.get("region", ""),
                "sectors": _joined(record.get("sectors")), "value_chain_stages": _joined(record.get("valueChainStages")),
                "technologies": _joined(record.get("technologies")), "status": record.get("status", "")})
    if kind == "Actor":
        names = sorted(record.get("names") or [], key=lambda n: not n.get("preferred"))
        address, geo, ids = record.get("address") or {}, record.get("geo") or {}, record.get("identifiers") or {}
        row.update({
            "name": names[0]["value"] if names else "", "name_lang": names[0].get("lang", "") if names else "",
            "other_names": _joined(n["value"] for n in names[1:]), "acronym": _joined(record.get("acronyms")),
            "actor_type": record.get("actorType", ""), "size_class": record.get("sizeClass", ""),
            "founding_year": record.get("foundingYear", ""), "services": _joined(record.get("services")),
            "street": address.get("street", ""), "postal_code": address.get("postalCode", ""),
            "city": address.get("locality", ""), "lat": geo.get("lat", ""), "lon": geo.get("lon", ""),
            "ror": ids.get("ror", ""), "pic": ids.get("pic", ""), "vat": ids.get("vat", ""), "lei": ids.get("lei", ""),
            "wikidata": ids.get("wikidata", ""), "memberships": _joined(m["cluster"] for m in record.get("memberships") or [])})
    elif kind == "Project":
        def partner(p: dict) -> str:
            return " | ".join([p["name"], p["country"]] + ([p["actor"]] if p.get("actor") else []))

        partners = record.get("partners") or []
        row.update({
            "title": record.get("title", ""), "acronym": record.get("acronym", ""),
            "programme": record.get("programme", ""), "programme_codes": _joined(record.get("programmeCodes")),
            "funding_scheme": record.get("fundingScheme", ""), "call": record.get("call", ""),
            "grant_id": record.get("grantId", ""), "start_date": record.get("startDate", ""),
            "end_date": record.get("endDate", ""), "total_budget": _euros(record.get("totalBudgetCents")),
            "eu_contribution": _euros(record.get("euContributionCents")),
            "co_funding_rate": _percent(record.get("coFundingRateBp")), "topics": _joined(record.get("topics")),
            "coordinator": _joined(partner(p) for p in partners if p.get("role") == "coordinator"),
            "partners": _joined(partner(p) for p in partners if p.get("role") != "coordinator"),
            "links": _joined(link["url"] for link in record.get("links") or [])})
        for column in ("website", "email", "phone", "contact_form", "country", "region", "sectors",
                       "value_chain_stages", "technologies"):
            row.pop(column, None)
    else:
        row.update({"title": record.get("title", ""), "offer_type": record.get("offerType", ""),
                    "provider": record.get("provider", ""), "conditions": record.get("conditions", ""),
                    "valid_until": record.get("validUntil", "")})
    return {column: value for column, value in row.items() if value not in ("", None)}


def lost_in_sheet(node: Node, record: dict) -> list[str]:
    """The fields of a record that reading its row back would change (empty: the row is the record)."""
    content = content_of(record)
    read, errors, _ = map_row(row_of(record), kind=record["type"].lower(), node_id=node.id,
                              node_region=node.config.region)
    if errors or read is None:
        return sorted({e.field for e in errors}) or ["(the row cannot be read back)"]
    return sorted(key for key in set(content) | set(read) if content.get(key) != read.get(key) and key != "sources")


def keep_sources(node: Node, row: ImportRow) -> ImportRow:
    """The row of a published record keeps that record's `sources` (the sheet has no column for them)."""
    content = row.content
    if not content or "sources" in content or not content.get("id"):
        return row
    stored = node.record(content["id"])
    if stored is None or stored.deleted:
        return row
    sources = orjson.loads(stored.signed).get("sources")
    return dataclasses.replace(row, content={**content, "sources": sources}) if sources else row


def workbook_of(node: Node) -> bytes:
    """The node's live records as the .xlsx template."""
    _, signed = node.current_records()
    records: dict[str, list[dict]] = {t: [] for t in SHEETS}
    for data in signed:
        record = orjson.loads(data)
        records[record["type"]].append(record)
    book = Workbook()
    book.remove(book.active)
    codes_sheet_rows: dict[str, str] = {}
    sheets = {t: book.create_sheet(SHEETS[t]) for t in SHEETS}
    readme = book.create_sheet("Read me")
    codes = book.create_sheet("Codes")
    column = 1
    for name in sorted((set(SINGLE_CODES.values()) | set(STATUS_LISTS.values()) | set(SEVERAL_CODES.values())) - {None}):
        rows = code_list(name)
        codes.cell(1, column, name).font = Font(bold=True)
        for index, row in enumerate(rows, 2):
            codes.cell(index, column, row["code"])
            codes.cell(index, column + 1, row.get("label") or row.get("name") or "")
        letter = get_column_letter(column)
        codes_sheet_rows[name] = f"Codes!${letter}$2:${letter}${len(rows) + 1}"
        column += 2
    lossy = []
    for record_type, sheet in sheets.items():
        langs = sorted({lang.lower() for r in records[record_type] for lang in (r.get("description") or {})}) or ["en"]
        header = COLUMNS[record_type] + [f"description_{lang}" for lang in langs]
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "B2"
        for record in sorted(records[record_type], key=lambda r: r["id"]):
            row = row_of(record)
            sheet.append([row.get(name, "") for name in header])
            lost = lost_in_sheet(node, record)
            if lost:
                lossy.append((SHEETS[record_type], record["id"], ", ".join(lost)))
        last = max(sheet.max_row, 2) + 1000  # room for new rows
        for index, name in enumerate(header, 1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = 14 if len(name) < 12 else len(name) + 2
            list_name = STATUS_LISTS.get(record_type) if name == "status" else SINGLE_CODES.get(name)
            if name in SINGLE_CODES and list_name:
                validation = DataValidation(type="list", formula1=f"={codes_sheet_rows[list_name]}", allow_blank=True,
                                            showErrorMessage=True, errorTitle=name,
                                            error="Choose a value from the list (the Codes sheet explains each).")
                validation.add(f"{letter}2:{letter}{last}")
                sheet.add_data_validation(validation)
            elif name in SEVERAL_CODES:
                allowed = ", ".join(row["code"] for row in code_list(SEVERAL_CODES[name]))
                sheet.cell(1, index).comment = Comment(f"Codes, separated by ';': {allowed}", "BioFed")
    readme.append(["This workbook holds the records of node " + node.id + ", one sheet per record type."])
    readme.append(["Change cells, add rows (leave id empty to make one from the name), delete rows, then upload "
                   "the file in the node console. Columns: see docs/importing.md."])
    readme.append(["Coded columns offer a drop-down list; the Codes sheet lists the codes with their meaning."])
    readme.append([])
    if lossy:
        readme.append(["These records have fields the sheet cannot hold; uploading the sheet publishes them without "
                       "those fields (edit them in the console instead). Sources are always kept."])
        readme.append(["sheet", "record", "fields"])
        for entry in lossy:
            readme.append(list(entry))
    readme.column_dimensions["A"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def uploaded_rows(path: Path, node: Node) -> list[ImportRow]:
    """The import rows of an uploaded .xlsx (every record sheet of the template, else the first sheet) or .csv.

    Each row's source names its sheet: "Actors row 3".
    """
    if path.suffix.lower() == ".csv":
        return list(read_rows(path, format="csv", node_id=node.id, node_region=node.config.region))
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True)
        names = list(book.sheetnames)
        book.close()
    except Exception as exc:  # a damaged or hostile file: the importer's own reading says why, once
        return [ImportRow("file", None, [RowError("", f"not a readable .xlsx workbook ({type(exc).__name__})")],
                          whole_file=True)]
    record_sheets = [(index, name) for index, name in enumerate(names) if name in KIND_OF_SHEET]
    if not record_sheets:
        return list(read_xlsx(path, kind=None, node_id=node.id, node_region=node.config.region))
    rows = []
    for index, name in record_sheets:
        for row in read_xlsx(path, kind=KIND_OF_SHEET[name], node_id=node.id, node_region=node.config.region,
                             worksheet=index):
            rows.append(dataclasses.replace(row, source=f"{name} {row.source}"))
    return rows
