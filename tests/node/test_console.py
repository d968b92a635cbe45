"""The node console's security and behaviour without a browser: the real app through TestClient, a real node.

Cookies, CSRF, roles, expiry, slowed logins, size caps, what never leaves the node, the
migration of an older node.db, forms read into records (validation, kept fields, partners,
conflicts), history, the spreadsheet round trip, the CLI, the API page's local assets.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from support.node import NODE_ID, actors, make_node, run_cli

from biofed.node.app import create_app
from biofed.node.console import accounts as accounts_module
from biofed.node.console.accounts import Accounts
from biofed.node.console.web import MAX_UPLOAD_BYTES, SESSION_COOKIE
from biofed.node.store import Node
from biofed.protocol.times import format_time, parse_time, utc_now

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]
SWAGGER = ROOT / "biofed" / "node" / "console" / "static" / "swagger-ui"
BROWSER_PACKAGES = Path(__file__).resolve().parents[1] / "browser"
NPM_SWAGGER = BROWSER_PACKAGES / "node_modules" / "swagger-ui-dist"


@pytest.fixture
def node_dir(tmp_path):
    node, _ = make_node(tmp_path)
    node.put_many(actors(3))
    accounts = Accounts(node)
    accounts.set_password(accounts.add_user("alice", "admin"), PASSWORD)
    accounts.set_password(accounts.add_user("eddie", "editor"), PASSWORD)
    node.close()
    return tmp_path / "node"


@pytest.fixture
def client(node_dir):
    with TestClient(create_app(node_dir), base_url="http://127.0.0.1:8000") as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


def log_in(client, name="alice", password=PASSWORD):
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={"_csrf": csrf_of(page.text), "name": name, "password": password,
                                                 "next": "/admin/records"}, follow_redirects=False)
    return response


def logged_in(client, name="alice") -> str:
    assert log_in(client, name).status_code == 303
    return csrf_of(client.get("/admin/records").text)


def tree_size(client) -> int:
    return int(client.get("/checkpoint").text.split("\n")[1])


# --- sessions, cookies, CSRF, roles


def test_session_cookie_is_httponly_strict_and_secure_over_https(node_dir):
    for base, secure in (("http://127.0.0.1:8000", False), ("https://node.example", True)):
        with TestClient(create_app(node_dir), base_url=base) as client:
            response = log_in(client)
            assert response.status_code == 303 and response.headers["location"] == "/admin/records"
            cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
            flags = {part.strip().lower() for part in cookie.split(";")[1:]}
            assert "httponly" in flags and "samesite=strict" in flags and "path=/admin" in flags
            assert ("secure" in flags) is secure


def test_every_console_page_needs_a_session_and_every_post_a_csrf_token(client):
    for path in ("/admin", "/admin/records", "/admin/new/actor", "/admin/spreadsheet", "/admin/accounts",
                 "/admin/edit/actor/org-1", "/admin/spreadsheet/records.xlsx"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/admin/login?next="), path
    before = tree_size(client)
    assert client.post("/admin/new/actor", data={"names-0-value": "X", "actorType": "sme", "country": "DE"},
                       follow_redirects=False).status_code == 303  # to the login page, nothing written
    token = logged_in(client)
    posts = {"/admin/new/actor": {"id": "x", "names-0-value": "X GmbH", "actorType": "sme", "country": "DE"},
             "/admin/edit/actor/org-1": {"names-0-value": "Renamed", "actorType": "sme", "country": "DE",
                                         "_version": "1"},
             "/admin/delete/actor/org-1": {"_version": "1"}, "/admin/accounts": {"name": "mallory", "role": "admin"},
             "/admin/tokens": {"name": "stolen", "scope": "admin"}, "/admin/spreadsheet/confirm": {"upload": "x"},
             "/admin/spreadsheet": {}}
    for path, data in posts.items():
        for forged in ({}, {"_csrf": "not-the-token"}):
            response = client.post(path, data={**data, **forged})
            assert response.status_code == 403, path
            assert "security token" in response.text
    assert tree_size(client) == before
    assert [u["name"] for u in Accounts(client.app.state.node).users()] == ["alice", "eddie"]
    assert "stolen" not in [t["name"] for t in client.app.state.node.list_tokens()]
    # The login form has its own token (there is no session yet): without it, no login.
    client.cookies.clear()
    refused = client.post("/admin/login", data={"name": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert token  # the real token was there all along


def test_editors_never_reach_admin_pages(client):
    token = logged_in(client, "eddie")
    for path in ("/admin/accounts", "/admin/tokens", "/admin/keys", "/admin/audit"):
        response = client.get(path)
        assert response.status_code == 403 and "Only admins" in response.text, path
    assert client.post("/admin/accounts", data={"_csrf": token, "name": "mallory", "role": "admin"}).status_code == 403
    assert client.post("/admin/tokens", data={"_csrf": token, "name": "t", "scope": "admin"}).status_code == 403
    assert "Accounts" not in client.get("/admin/records").text
    assert client.get("/admin/new/actor").status_code == 200  # an editor does edit records


def test_sessions_expire_when_idle_or_old_and_end_at_logout(client):
    token = logged_in(client)
    node = client.app.state.node
    idle = format_time(parse_time(utc_now()) - accounts_module.SESSION_IDLE - timedelta(seconds=5))
    node.conn.execute("UPDATE console_sessions SET seen = ?", (idle,))
    assert client.get("/admin/records", follow_redirects=False).status_code == 303
    token = logged_in(client)
    node.conn.execute("UPDATE console_sessions SET expires = ?", (format_time(parse_time(utc_now()) - timedelta(seconds=1)),))
    assert client.get("/admin/records", follow_redirects=False).status_code == 303
    token = logged_in(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert client.post("/admin/logout", data={"_csrf": token}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie, path="/admin")  # an old cookie is worth nothing after logout
    assert client.get("/admin/records", follow_redirects=False).status_code == 303


def test_five_wrong_passwords_slow_the_next_attempts_down(client):
    for _ in range(accounts_module.FREE_FAILURES):
        response = log_in(client, password="wrong password here")
        assert response.status_code == 401 and "Wrong account name or password." in response.text
    slowed = log_in(client)  # the right password, too soon
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) > 50
    assert "Too many wrong passwords" in slowed.text
    node = client.app.state.node
    earlier = format_time(parse_time(utc_now()) - timedelta(seconds=accounts_module.FIRST_WAIT + 1))
    node.conn.execute("UPDATE console_logins SET last_failure = ?", (earlier,))
    assert log_in(client).status_code == 303  # after the wait, and the count starts again
    assert node.conn.execute("SELECT count(*) FROM console_logins").fetchone()[0] == 0
    # An unknown name is slowed down the same way (no hint which names exist).
    for _ in range(accounts_module.FREE_FAILURES):
        assert log_in(client, name="nobody").status_code == 401
    assert log_in(client, name="nobody").status_code == 429


def test_passwords_are_scrypt_hashes_and_setup_links_work_once(node_dir, client):
    node = client.app.state.node
    stored = node.conn.execute("SELECT password FROM console_users WHERE name = 'alice'").fetchone()[0]
    assert stored.startswith("scrypt$32768$8$1$") and PASSWORD not in stored
    token = logged_in(client)
    added = client.post("/admin/accounts", data={"_csrf": token, "name": "Bea", "role": "editor"})
    link = re.search(r'<code class="secret">([^<]+)</code>', added.text).group(1)
    assert link.startswith("https://node.example/admin/setup?token=")  # the node's public address
    path = link.removeprefix("https://node.example")
    setup_token = path.split("token=")[1]
    assert client.get(path).status_code == 200
    short = client.post("/admin/setup", data={"token": setup_token, "password": "short", "again": "short"})
    assert short.status_code == 422 and "at least 12 characters" in short.text
    done = client.post("/admin/setup", data={"token": setup_token, "password": PASSWORD, "again": PASSWORD},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get(path).status_code == 404  # used
    assert client.post("/admin/setup", data={"token": setup_token, "password": PASSWORD * 2,
                                             "again": PASSWORD * 2}).status_code == 404
    client.cookies.clear()
    assert log_in(client, "bea").status_code == 303


def test_accounts_sessions_and_audit_never_leave_the_node(node_dir, client):
    token = logged_in(client)
    client.post("/admin/new/actor", data={"_csrf": token, "id": "leak-check", "names-0-value": "Leak Check GmbH",
                                          "actorType": "sme", "country": "DE"})
    client.post("/admin/tokens", data={"_csrf": token, "name": "crm", "scope": "write"})
    node = client.app.state.node
    secrets_ = [row[0] for row in node.conn.execute("SELECT password FROM console_users")]
    secrets_ += [row[0] for row in node.conn.execute("SELECT hash FROM console_sessions")]
    public = b"".join(client.get(p).content for p in ("/log?limit=1000", "/snapshot.jsonl.gz",
                                                        "/.well-known/biofed-node.json", "/openapi.json"))
    import gzip

    public += gzip.decompress(client.get("/snapshot.jsonl.gz").content)
    for secret in secrets_ + ["alice", "eddie", "console_"]:
        assert secret.encode() not in public, secret
    assert "/admin/records" not in client.get("/openapi.json").json()["paths"]  # HTML routes are not the API


def test_an_older_node_db_gets_the_console_tables(tmp_path):
    node, _ = make_node(tmp_path)
    for table in ("console_users", "console_sessions", "console_logins", "console_uploads", "console_audit"):
        node.conn.execute(f"DROP TABLE {table}")
    node.conn.execute("DROP INDEX log_record")
    node.close()
    with Node.open(tmp_path / "node") as reopened:
        Accounts(reopened).add_user("alice", "admin")
        assert [u["name"] for u in Accounts(reopened).users()] == ["alice"]
        assert reopened.check_log() == []


def test_uploads_and_forms_are_size_capped(client):
    token = logged_in(client)
    big = b"x" * (MAX_UPLOAD_BYTES + 1)
    response = client.post("/admin/spreadsheet", data={"_csrf": token},
                           files={"file": ("members.xlsx", big, "application/octet-stream")})
    assert response.status_code == 413
    huge_form = client.post("/admin/new/actor", data={"_csrf": token, "names-0-value": "x" * 300_000})
    assert huge_form.status_code == 413


# --- records through the forms


def test_two_mistakes_are_named_beside_their_fields_and_nothing_is_signed(client):
    token = logged_in(client)
    before = tree_size(client)
    response = client.post("/admin/new/actor", data={"_csrf": token, "id": "neckar-probe",
                                                     "names-0-value": "Neckar Probe GmbH", "country": "DE",
                                                     "geo-lat": "48,5 N", "geo-lon": "9.05"})
    assert response.status_code == 422
    assert re.search(r'id="e-actorType">Please fill this in\.<', response.text)
    assert re.search(r'id="e-geo-lat">&#39;48,5 N&#39; is not a latitude<', response.text)
    assert 'value="Neckar Probe GmbH"' in response.text
    assert tree_size(client) == before
    # "Add a row" shows the form again with one more name row, and saves nothing.
    more = client.post("/admin/new/actor", data={"_csrf": token, "names-0-value": "Neckar Probe GmbH",
                                                 "names-1-value": "", "_more": "names"})
    assert more.status_code == 200 and 'name="names-2-value"' in more.text and tree_size(client) == before
    saved = client.post("/admin/new/actor", data={"_csrf": token, "id": "neckar-probe",
                                                  "names-0-value": "Neckar Probe GmbH", "names-0-lang": "de",
                                                  "names-1-value": "Neckar Probe", "names-1-lang": "en",
                                                  "actorType": "sme", "country": "DE", "geo-lat": "48,5",
                                                  "geo-lon": "9.05", "sectors": ["diagnostics", "medtech"],
                                                  "technologies": "qPCR\nmicrofluidics\n",
                                                  "description-0-lang": "en", "description-0-text": "Probes."},
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/edit/actor/neckar-probe?saved=1"
    record = client.get(f"/records/{NODE_ID}/actor/neckar-probe").json()
    assert record["names"] == [{"value": "Neckar Probe GmbH", "lang": "de", "preferred": True},
                               {"value": "Neckar Probe", "lang": "en"}]
    assert record["geo"] == {"lat": "48.500000", "lon": "9.050000"}
    assert record["sectors"] == ["diagnostics", "medtech"] and record["technologies"] == ["qPCR", "microfluidics"]
    assert record["description"] == {"en": "Probes."}
    page = client.get(saved.headers["location"]).text
    assert "Saved and published as version 1." in page and f'href="/records/{NODE_ID}/actor/neckar-probe"' in page
    assert client.post("/admin/new/actor", data={"_csrf": token, "id": "neckar-probe", "names-0-value": "Other",
                                                 "actorType": "sme", "country": "DE"}).status_code == 422


def test_an_edit_keeps_what_the_form_does_not_show_and_refuses_a_stale_version(client):
    token = logged_in(client)
    original = client.get(f"/records/{NODE_ID}/actor/org-1").json()
    assert original["sources"]
    form = client.get("/admin/edit/actor/org-1").text
    assert "Also published, not editable here: sources." in form
    values = dict(re.findall(r'<input id="f-([^"]+)" name="[^"]+" value="([^"]*)"', form))
    data = {"_csrf": token, "_version": "1", "names-0-value": values["names-0-value"],
            "names-0-lang": values["names-0-lang"], "actorType": original["actorType"], "country": "DE",
            "address-locality": "Reutlingen"}
    response = client.post("/admin/edit/actor/org-1", data=data, follow_redirects=False)
    assert response.headers["location"] == "/admin/edit/actor/org-1?saved=2"
    updated = client.get(f"/records/{NODE_ID}/actor/org-1").json()
    assert updated["sources"] == original["sources"] and updated["address"]["locality"] == "Reutlingen"
    stale = client.post("/admin/edit/actor/org-1", data={**data, "address-locality": "Ulm"})
    assert stale.status_code == 409 and "now version 2" in stale.text
    same = client.post("/admin/edit/actor/org-1", data={**data, "_version": "2"}, follow_redirects=False)
    assert same.headers["location"] == "/admin/edit/actor/org-1?unchanged=2"
    history = client.get("/admin/history/actor/org-1").text
    assert "Version 2" in history and "/address/locality" in history and "by alice" in history
    audit = client.get("/admin/audit").text
    assert "updated" in audit and f"{NODE_ID}/actor/org-1" in audit


def test_a_project_with_partners_here_and_elsewhere_and_an_offer_of_an_actor(client):
    token = logged_in(client)
    actor = client.get(f"/records/{NODE_ID}/actor/org-2").json()
    response = client.post("/admin/new/project", data={
        "_csrf": token, "id": "probe-2026", "title": "Probe", "programme": "REGIONAL", "startDate": "2026-01-01",
        "endDate": "2027-12-31", "totalBudgetCents": "1.234.567,89", "coFundingRateBp": "62,5",
        "partners-0-actor": f"{NODE_ID}/actor/org-2", "partners-0-role": "coordinator",
        "partners-1-name": "Institut Exemple", "partners-1-country": "FR", "partners-1-role": "partner",
        "partners-1-actor": "genopole-idf/actor/x1", "links": "https://probe.example/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    project = client.get(f"/records/{NODE_ID}/project/probe-2026").json()
    assert project["partners"] == [
        {"actor": f"{NODE_ID}/actor/org-2", "name": actor["names"][0]["value"], "country": "DE", "role": "coordinator"},
        {"actor": "genopole-idf/actor/x1", "name": "Institut Exemple", "country": "FR", "role": "partner"}]
    assert project["totalBudgetCents"] == 123456789 and project["coFundingRateBp"] == 6250
    bad_dates = client.post("/admin/new/project", data={"_csrf": token, "id": "p2", "title": "P2",
                                                         "programme": "REGIONAL", "startDate": "2026-01-01",
                                                         "endDate": "2025-01-01"})
    assert bad_dates.status_code == 422 and "before start date" in bad_dates.text
    offer = client.post("/admin/new/offer", data={"_csrf": token, "id": "gmp", "title": "GMP suite",
                                                  "offerType": "facility", "provider": f"{NODE_ID}/actor/org-2"},
                        follow_redirects=False)
    assert offer.status_code == 303
    assert client.get(f"/records/{NODE_ID}/offer/gmp").json()["provider"] == f"{NODE_ID}/actor/org-2"
    form = client.get("/admin/new/offer").text
    assert f'<option value="{NODE_ID}/actor/org-2">' in form  # the provider is picked from the node's actors


def test_delete_asks_first_then_publishes_a_tombstone(client):
    token = logged_in(client)
    confirm = client.get("/admin/delete/actor/org-0")
    name = client.get(f"/records/{NODE_ID}/actor/org-0").json()["names"][0]["value"]
    assert f"Delete {name}?" in confirm.text
    done = client.post("/admin/delete/actor/org-0", data={"_csrf": token, "_version": "1"})
    assert done.status_code == 200 and "is deleted" in done.text
    assert client.get(f"/records/{NODE_ID}/actor/org-0").status_code == 410
    assert name in client.get("/admin/deleted").text
    assert client.get("/admin/edit/actor/org-0").status_code == 410
    history = client.get("/admin/history/actor/org-0").text
    assert "Version 2 (deleted)" in history


def test_names_are_escaped_everywhere(client):
    token = logged_in(client)
    name = "<script>alert(1)</script> & <b>Labs</b>"
    client.post("/admin/new/actor", data={"_csrf": token, "id": "xss", "names-0-value": name, "actorType": "sme",
                                          "country": "DE"})
    for path in ("/admin/records", "/admin/edit/actor/xss", "/admin/history/actor/xss", "/admin/delete/actor/xss",
                 "/admin/audit"):
        page = client.get(path).text
        assert "<script>alert(1)" not in page and "<b>Labs" not in page, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;Labs&lt;/b&gt;" in client.get("/admin/records").text
    headers = client.get("/admin/records").headers
    assert "script-src" not in headers["content-security-policy"] and "default-src 'none'" in \
        headers["content-security-policy"]


def test_api_tokens_made_in_the_console_write_through_the_unchanged_json_api(client):
    token = logged_in(client)
    made = client.post("/admin/tokens", data={"_csrf": token, "name": "crm-sync", "scope": "write"})
    bearer = re.search(r'<code class="secret">(bfn_[^<]+)</code>', made.text).group(1)
    response = client.post("/records", headers={"Authorization": f"Bearer {bearer}"},
                           content=orjson.dumps({"id": "actor/api-made", "type": "Actor", "actorType": "sme",
                                                 "country": "DE", "names": [{"value": "API GmbH", "preferred": True}]}))
    assert response.status_code == 201
    revoked = client.post("/admin/tokens", data={"_csrf": token, "name": "crm-sync", "action": "revoke"})
    assert "is revoked" in revoked.text
    assert client.post("/records", headers={"Authorization": f"Bearer {bearer}"}, content=b"{}").status_code == 401
    keys = client.get("/admin/keys").text
    assert client.app.state.node.signing_key.kid in keys and "active" in keys


# --- spreadsheets


def test_the_template_round_trips_and_an_upload_is_previewed_then_confirmed(client, tmp_path):
    token = logged_in(client)
    download = client.get("/admin/spreadsheet/records.xlsx")
    assert download.status_code == 200 and download.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(download.content))
    assert book.sheetnames[:3] == ["Actors", "Projects", "Offers"]
    sheet = book["Actors"]
    header = [c.value for c in sheet[1]]
    assert header[0] == "id" and sheet.max_row == 4
    lists = {str(v.sqref).split(":")[0][0]: v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists[chr(ord("A") + header.index("actor_type"))].startswith("=Codes!")
    same = client.post("/admin/spreadsheet", data={"_csrf": token, "sync": "1"},
                       files={"file": ("records.xlsx", download.content, "application/octet-stream")})
    assert same.status_code == 200 and "The spreadsheet changes nothing." in same.text
    assert re.search(r"<strong>3</strong> Unchanged", same.text)

    sheet.delete_rows(2)  # org-0 goes (sync), org-1 changes, a new row comes
    sheet.cell(2, header.index("city") + 1, "Ulm")
    sheet.append([{"id": "new-one", "name": "New One GmbH", "actor_type": "sme", "country": "DE"}.get(h)
                  for h in header])
    out = io.BytesIO()
    book.save(out)
    before = tree_size(client)
    preview = client.post("/admin/spreadsheet", data={"_csrf": token, "sync": "1"},
                          files={"file": ("records.xlsx", out.getvalue(), "application/octet-stream")})
    assert preview.status_code == 200
    for count, group in ((1, "New"), (1, "Changed"), (1, "To be deleted")):
        assert re.search(rf"<strong>{count}</strong> {group}", preview.text), group
    assert "/address/locality" in preview.text and tree_size(client) == before
    assert "This would delete 1 of 3 Actor records (33%), more than 20%" in preview.text  # the CLI's guard
    upload = re.search(r'name="upload" value="([^"]+)"', preview.text).group(1)
    refused = client.post("/admin/spreadsheet/confirm", data={"_csrf": token, "upload": upload, "sync": "1"})
    assert "This would delete" in refused.text and tree_size(client) == before
    done = client.post("/admin/spreadsheet/confirm", data={"_csrf": token, "upload": upload, "sync": "1",
                                                           "allow_mass_delete": "1"})
    assert "Published: 1 new, 1 changed, 0 published again, 1 deleted" in done.text
    assert client.get(f"/records/{NODE_ID}/actor/org-0").status_code == 410
    assert client.get(f"/records/{NODE_ID}/actor/new-one").status_code == 200
    again = client.post("/admin/spreadsheet/confirm", data={"_csrf": token, "upload": upload, "sync": "1",
                                                            "allow_mass_delete": "1"})
    assert again.status_code == 410  # an upload is published once
    assert "spreadsheet records.xlsx" in client.get("/admin/audit").text


def test_an_upload_with_errors_names_sheet_row_and_column_and_publishes_nothing(client):
    token = logged_in(client)
    csv_file = b"id,name,actor_type,country,lat,lon\ngood,Good GmbH,sme,DE,,\nbad,Bad GmbH,startup,DE,48.48N,9.1\n"
    before = tree_size(client)
    preview = client.post("/admin/spreadsheet", data={"_csrf": token},
                          files={"file": ("members.csv", csv_file, "text/csv")})
    assert preview.status_code == 422
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", preview.text)
    assert [(r[1], r[2]) for r in rows] == [("3", "actor_type"), ("3", "lat")]
    assert "Publish these changes" not in preview.text and tree_size(client) == before
    wrong_kind = client.post("/admin/spreadsheet", data={"_csrf": token},
                             files={"file": ("members.pdf", b"%PDF", "application/pdf")})
    assert wrong_kind.status_code == 422 and "Only .xlsx and .csv" in wrong_kind.text


# --- the CLI and the API page


def test_user_commands(tmp_path):
    node, _ = make_node(tmp_path)
    node.close()
    directory = tmp_path / "node"
    added = run_cli("node", "user", "add", directory, "alice", "--role", "admin")
    assert re.fullmatch(r"https://node\.example/admin/setup\?token=[A-Za-z0-9_-]{43}\n", added.stdout)
    listed = [json.loads(line) for line in run_cli("node", "user", "list", directory).stdout.splitlines()]
    assert [(u["name"], u["role"], u["setupPending"]) for u in listed] == [("alice", "admin", True)]
    assert run_cli("node", "user", "add", directory, "alice", ok=False).exit_code != 0
    assert run_cli("node", "user", "add", directory, "Bad Name!", ok=False).exit_code != 0
    run_cli("node", "user", "disable", directory, "alice")
    assert json.loads(run_cli("node", "user", "list", directory).stdout)["disabled"]


def test_the_api_page_uses_the_vendored_swagger_ui(client):
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/admin/static/swagger-ui/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert (SWAGGER / "LICENSE").is_file()


@pytest.mark.skipif(not NPM_SWAGGER.is_dir(), reason="swagger-ui-dist is not installed: run npm ci in tests/browser")
def test_the_vendored_swagger_ui_is_the_pinned_npm_release():
    pinned = json.loads((BROWSER_PACKAGES / "package.json").read_text())["dependencies"]
    assert json.loads((NPM_SWAGGER / "package.json").read_text())["version"] == pinned["swagger-ui-dist"]
    for path in SWAGGER.iterdir():
        assert path.read_bytes() == (NPM_SWAGGER / path.name).read_bytes(), path.name
