"""The node console in a real headless Chromium, against a real `biofed node serve`.

What cluster staff do: log in, create an actor with two mistakes, read the messages beside the
fields, fix them, save, see the signed record as the public does and verify it in the log;
edit it (version 2), delete it (410), upload a spreadsheet with an error, read the preview,
fix it, confirm. And what must not happen: a POST without the CSRF token, a name run as HTML,
unlimited password guessing, an editor in account management, a page with serious or critical
accessibility violations (axe-core, from tests/browser: `npm ci` there; skipped, naming what is
missing, without it).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import orjson
import pytest
from support.node import NODE_ID

from biofed.node.console.accounts import Accounts
from biofed.node.store import Node, init_node
from biofed.trust import merkle, proofs
from biofed.trust.keys import PublicKey

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
AXE = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SAMPLE = Path(__file__).resolve().parents[2] / "biofed" / "data" / "samples" / "bioregio-stern-members.csv"
PASSWORD = "correct horse battery staple"

if not os.environ.get("CI") and not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (CI installs it with apt)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def add_account(node: Node, name: str, role: str, password: str = PASSWORD) -> None:
    accounts = Accounts(node)
    accounts.set_password(accounts.add_user(name, role), password)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`biofed node serve` in its own process, on a node holding the sample member directory."""
    directory = tmp_path_factory.mktemp("console") / "node"
    port = free_port()
    node, _ = init_node(directory, node_id=NODE_ID, name="BioRegio STERN", country="DE", region="DE1",
                        base_url=f"http://127.0.0.1:{port}")
    from biofed.node.importers import read_rows
    from biofed.node.importing import import_rows

    import_rows(node, read_rows(SAMPLE, node_id=NODE_ID, node_region="DE1"))
    add_account(node, "alice", "admin")
    add_account(node, "eddie", "editor")
    add_account(node, "guessed", "editor")
    node.close()
    process = subprocess.Popen([sys.executable, "-m", "biofed", "node", "serve", str(directory), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/checkpoint", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "biofed node serve did not start"
        time.sleep(0.1)
    yield base, directory
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, *, width: int = 1280):
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)

    def only_loopback(route):  # nothing may load from another host (no CDN, no fonts)
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def log_in(page, base: str, name: str = "alice", password: str = PASSWORD):
    page.goto(f"{base}/admin/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")


def verify_in_log(base: str, record_id: str, record_bytes: bytes) -> None:
    """The record is the log entry /log/index names, its proof verifies with the node's key, and the
    entry is in the signed tree (inclusion proof against the checkpoint's root)."""
    index = httpx.get(f"{base}/log/index", params={"id": record_id}).json()
    entries = httpx.get(f"{base}/log", params={"after": index["seq"] - 1, "limit": 1}).json()["entries"]
    leaf = orjson.dumps(entries[0]["record"])
    assert orjson.loads(leaf) == orjson.loads(record_bytes)
    descriptor = httpx.get(f"{base}/.well-known/biofed-node.json").json()
    keys = [PublicKey.from_jwk({f: k[f] for f in ("kty", "crv", "x", "kid")}) for k in descriptor["keys"]["keys"]]
    proofs.verify(orjson.loads(record_bytes), keys)
    checkpoint = httpx.get(f"{base}/checkpoint").text.split("\n")
    size, root = int(checkpoint[1]), base64.b64decode(checkpoint[2])
    proof = httpx.get(f"{base}/log/proof/inclusion", params={"seq": index["seq"], "size": size}).json()
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    from biofed.trust.canonical import canonicalize

    merkle.verify_inclusion(merkle.leaf_hash(canonicalize(orjson.loads(record_bytes))), index["seq"] - 1, size,
                            hashes, root)  # raises when the entry is not in the signed tree


def test_an_actor_from_first_mistakes_to_tombstone(served, browser):
    base, _ = served
    page = new_page(browser)
    log_in(page, base)
    expect(page.locator("h1")).to_have_text("Records")

    # Two mistakes: no type of organisation, a website that is not a web address.
    page.click("text=New actor")
    page.fill("#f-id", "neckar-probe")
    page.fill("#f-names-0-value", "Neckar Probe GmbH")
    page.fill("#f-names-0-lang", "de")
    page.fill("#f-website", "neckar-probe dot example")
    page.fill("#f-address-locality", "Tübingen")
    page.click("form button:has-text('Save and publish') >> nth=-1")
    expect(page.locator(".problem-summary")).to_contain_text("2 thing(s) to fix")
    expect(page.locator("#e-actorType")).to_have_text("Please fill this in.")
    expect(page.locator("#e-website")).to_contain_text("'neckar-probe dot example'")
    expect(page.locator("#f-names-0-value")).to_have_value("Neckar Probe GmbH")  # what was typed stays
    assert httpx.get(f"{base}/records/{NODE_ID}/actor/neckar-probe").status_code == 404  # nothing signed

    page.select_option("#f-actorType", "sme")
    page.fill("#f-website", "https://neckar-probe.example")
    page.check("input[name=sectors][value=diagnostics]")
    page.click("form button:has-text('Save and publish') >> nth=-1")
    expect(page.locator(".notice")).to_contain_text("version 1")
    page.click("text=See the signed record as the public sees it")
    record_bytes = page.locator("body").inner_text().encode()
    record = orjson.loads(record_bytes)
    assert record["id"] == f"{NODE_ID}/actor/neckar-probe" and record["version"] == 1
    assert record["actorType"] == "sme" and record["sectors"] == ["diagnostics"]
    verify_in_log(base, record["id"], httpx.get(f"{base}/records/{record['id']}").content)

    # Edit: version 2, and the history says what changed.
    page.goto(f"{base}/admin/edit/actor/neckar-probe")
    page.fill("#f-address-locality", "Reutlingen")
    page.click("form button:has-text('Save and publish') >> nth=-1")
    expect(page.locator(".notice")).to_contain_text("version 2")
    assert httpx.get(f"{base}/records/{record['id']}").json()["address"]["locality"] == "Reutlingen"
    page.click(".notice >> text=History")
    expect(page.locator("#v2")).to_contain_text("Version 2")
    expect(page.locator("section.version").first).to_contain_text("/address/locality")
    expect(page.locator("section.version").first).to_contain_text("Reutlingen")

    # Delete, after a confirmation naming the record: then 410 with the signed tombstone.
    page.goto(f"{base}/admin/delete/actor/neckar-probe")
    expect(page.locator("h1")).to_have_text("Delete Neckar Probe GmbH?")
    page.click("text=Yes, delete Neckar Probe GmbH")
    expect(page.locator(".notice")).to_contain_text("Neckar Probe GmbH is deleted")
    gone = httpx.get(f"{base}/records/{record['id']}")
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    page.goto(f"{base}/admin/deleted")
    expect(page.locator("table")).to_contain_text("Neckar Probe GmbH")

    # The audit trail names who did it.
    page.goto(f"{base}/admin/audit")
    for action in ("created", "updated", "deleted"):
        expect(page.locator("table")).to_contain_text(action)
    expect(page.locator("table")).to_contain_text("alice")
    page.context.close()


def test_a_spreadsheet_with_an_error_then_fixed(served, browser, tmp_path):
    from openpyxl import load_workbook

    base, _ = served
    page = new_page(browser)
    log_in(page, base)
    page.goto(f"{base}/admin/spreadsheet")
    with page.expect_download() as download:
        page.click("text=Download records.xlsx")
    template = tmp_path / "records.xlsx"
    download.value.save_as(template)
    book = load_workbook(template)
    sheet = book["Actors"]
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "id" and "actor_type" in header
    assert sheet.data_validations.dataValidation  # the drop-down lists
    row = {"id": "filder-cells", "name": "Filder Cells GmbH", "actor_type": "startup", "country": "DE",
           "city": "Esslingen"}
    sheet.append([row.get(name) for name in header])
    bad_row = sheet.max_row
    book.save(tmp_path / "with-error.xlsx")

    page.set_input_files("#file", str(tmp_path / "with-error.xlsx"))
    page.click("text=Show the preview")
    errors = page.locator("table.errors")
    expect(errors).to_contain_text("Actors")
    expect(errors.locator("tbody tr").first).to_contain_text(str(bad_row))
    expect(errors).to_contain_text("actor_type")
    expect(errors).to_contain_text("unknown code 'startup'")
    expect(page.locator("text=Publish these changes")).to_have_count(0)

    sheet.cell(bad_row, header.index("actor_type") + 1, "sme")
    book.save(tmp_path / "fixed.xlsx")
    page.goto(f"{base}/admin/spreadsheet")
    page.set_input_files("#file", str(tmp_path / "fixed.xlsx"))
    page.click("text=Show the preview")
    expect(page.locator("#g-created")).to_contain_text("New (1)")
    expect(page.locator("ul.summary")).to_contain_text("0 Errors")
    assert httpx.get(f"{base}/records/{NODE_ID}/actor/filder-cells").status_code == 404  # not before confirming
    page.click("text=Publish these changes")
    expect(page.locator(".notice")).to_contain_text("1 new")
    assert httpx.get(f"{base}/records/{NODE_ID}/actor/filder-cells").json()["actorType"] == "sme"
    page.context.close()


def test_csrf_escaping_and_roles(served, browser):
    base, _ = served
    page = new_page(browser)
    log_in(page, base)
    # A POST with the session cookie but without the form's token is refused, and writes nothing.
    refused = page.request.post(f"{base}/admin/new/actor", form={"names-0-value": "Forged GmbH", "actorType": "sme",
                                                                 "country": "DE", "id": "forged"})
    assert refused.status == 403
    assert httpx.get(f"{base}/records/{NODE_ID}/actor/forged").status_code == 404

    # A name with markup is shown as text, never run.
    page.goto(f"{base}/admin/new/actor")
    page.fill("#f-id", "script-labs")
    page.fill("#f-names-0-value", "<script>document.title='owned'</script> Labs GmbH")
    page.select_option("#f-actorType", "sme")
    page.click("form button:has-text('Save and publish') >> nth=-1")
    expect(page.locator(".notice")).to_contain_text("version 1")
    expect(page.locator("h1")).to_contain_text("<script>")
    page.goto(f"{base}/admin/records?q=Labs")
    expect(page.locator("table")).to_contain_text("<script>document.title='owned'</script> Labs GmbH")
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    assert page.title() != "owned"
    page.context.close()

    # An editor edits records but never reaches account management.
    editor = new_page(browser)
    log_in(editor, base, "eddie")
    expect(editor.locator("h1")).to_have_text("Records")
    expect(editor.locator("nav")).not_to_contain_text("Accounts")
    response = editor.goto(f"{base}/admin/accounts")
    assert response.status == 403
    expect(editor.locator(".problem")).to_contain_text("Only admins")
    assert editor.goto(f"{base}/admin/tokens").status == 403
    editor.context.close()


def test_five_wrong_passwords_slow_logins_down(served, browser):
    base, _ = served
    page = new_page(browser)
    for _ in range(5):
        log_in(page, base, "guessed", "not the password at all")
        expect(page.locator(".problem")).to_have_text("Wrong account name or password.")
    log_in(page, base, "guessed", PASSWORD)  # even the right password waits now
    expect(page.locator(".problem")).to_have_text(re.compile(
        r"^Too many wrong passwords for this account: try again in (5\d|60) seconds\.$"))
    expect(page.locator("h1")).to_have_text("Log in")
    page.context.close()


CONSOLE_PAGES = ["/admin/login", "/admin/records", "/admin/new/actor", "/admin/new/project", "/admin/new/offer",
                 "/admin/edit/actor/albgen-dx", "/admin/history/actor/albgen-dx", "/admin/delete/actor/albgen-dx",
                 "/admin/deleted", "/admin/spreadsheet", "/admin/accounts", "/admin/tokens", "/admin/keys",
                 "/admin/audit"]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_console_page_has_no_serious_accessibility_violation(served, browser, width):
    if not AXE.is_file():  # CI installs it (.ci/run), so there a missing axe-core is a failure
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: run `npm ci` in tests/browser")
        pytest.skip("axe-core is not installed: run `npm ci` in tests/browser")
    base, _ = served
    page = new_page(browser, width=width)
    axe = AXE.read_text(encoding="utf-8")
    found = {}
    for path in CONSOLE_PAGES:
        if path != "/admin/login" and "/admin/login" in page.url or path == CONSOLE_PAGES[1]:
            log_in(page, base)
        page.goto(base + path)
        assert "/admin/login" not in page.url or path == "/admin/login", path
        page.evaluate(axe)  # through the DevTools protocol: the console's CSP allows no script of its own
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = serious
        if width < 500:  # a phone: nothing wider than the screen but the scrolling tables
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (path, overflow)
    assert not found, found
    page.context.close()


def test_the_api_page_loads_swagger_ui_from_the_node(served, browser):
    base, _ = served
    page = new_page(browser)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("BioFed node")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert requested and all(url.startswith(base) for url in requested), requested
    page.context.close()

