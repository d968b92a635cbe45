"""The screenshots of "Your first hour without a terminal" (docs/node.md), taken from a real node.

    python -m bench.console_screenshots [--output docs/images/console]

Builds a node from the sample member sheet, adds an admin account, serves it with
`biofed node serve` and walks through the console in headless Chromium (Debian's
/usr/bin/chromium), saving one PNG per step.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from biofed.node.console.accounts import Accounts
from biofed.node.importers import read_rows
from biofed.node.importing import import_rows
from biofed.node.store import init_node

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "biofed" / "data" / "samples" / "bioregio-stern-members.csv"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "four words are enough"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images" / "console")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        directory = Path(folder) / "stern"
        node, _ = init_node(directory, node_id="bioregio-stern", name="BioRegio STERN", country="DE", region="DE1",
                            base_url=base)
        import_rows(node, read_rows(SAMPLE, node_id=node.id, node_region="DE1"))
        setup_link = f"{base}/admin/setup?token={Accounts(node).add_user('anna', 'admin')}"
        node.close()
        server = subprocess.Popen([sys.executable, "-m", "biofed", "node", "serve", str(directory), "--port",
                                   str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/checkpoint").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("biofed node serve did not start")
                time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1100, "height": 760})

                def shot(name: str, full: bool = False) -> None:
                    page.screenshot(path=str(args.output / f"{name}.png"), full_page=full)
                    print(args.output / f"{name}.png")

                page.goto(setup_link)
                page.fill("#password", PASSWORD)
                page.fill("#again", PASSWORD)
                shot("1-setup")
                page.click("button[type=submit]")
                page.fill("#name", "anna")
                page.fill("#password", PASSWORD)
                shot("2-login")
                page.click("button[type=submit]")
                page.wait_for_url("**/admin/records")
                shot("3-records")
                page.click("text=New actor")
                page.fill("#f-id", "neckar-probe")
                page.fill("#f-names-0-value", "Neckar Probe GmbH")
                page.fill("#f-names-0-lang", "de")
                page.fill("#f-website", "neckar-probe.example")
                page.fill("#f-address-locality", "Tübingen")
                page.click("form button:has-text('Save and publish') >> nth=-1")
                page.locator("#f-actorType").scroll_into_view_if_needed()
                page.evaluate("window.scrollTo(0, 0)")
                shot("4-mistakes")
                page.select_option("#f-actorType", "sme")
                page.fill("#f-website", "https://neckar-probe.example")
                page.check("input[name=sectors][value=diagnostics]")
                page.click("form button:has-text('Save and publish') >> nth=-1")
                shot("5-saved")
                page.fill("#f-address-locality", "Reutlingen")
                page.click("form button:has-text('Save and publish') >> nth=-1")
                page.click(".notice >> text=History")
                shot("6-history")
                page.goto(f"{base}/admin/spreadsheet")
                shot("7-spreadsheet")
                with page.expect_download() as download:
                    page.click("text=Download records.xlsx")
                sheet = Path(folder) / "records.xlsx"
                download.value.save_as(sheet)
                from openpyxl import load_workbook

                book = load_workbook(sheet)
                actors = book["Actors"]
                header = [c.value for c in actors[1]]
                actors.cell(2, header.index("city") + 1, "Metzingen")
                actors.append([{"name": "Filder Cells GmbH", "actor_type": "startup", "country": "DE",
                                "city": "Esslingen"}.get(h) for h in header])
                book.save(sheet)
                page.set_input_files("#file", str(sheet))
                page.click("text=Show the preview")
                shot("8-preview-errors", full=True)
                phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
                phone.context.add_cookies(page.context.cookies())
                phone.goto(f"{base}/admin/edit/actor/neckar-probe")
                phone.screenshot(path=str(args.output / "9-phone.png"))
                print(args.output / "9-phone.png")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
