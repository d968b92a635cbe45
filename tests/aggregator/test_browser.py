"""The catalogue in a real headless Chromium: search, facet, row page, map markers.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright with
executable_path. Every request to a host other than the test server (map
tiles from tile.openstreetmap.org included) is blocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

if not os.environ.get("CI") and not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (CI installs it with apt)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from support.catalogue_sample import build_sample_catalogue  # noqa: E402

from biofed.aggregator.serve import make_datasette  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    db_path = tmp_path_factory.mktemp("browser") / "catalogue.db"
    build_sample_catalogue(db_path)
    port = _free_port()
    config = uvicorn.Config(make_datasette(db_path).app(), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def page(server):
    blocked = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()

        def only_loopback(route):
            if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.blocked = blocked
        yield page
        browser.close()


def test_search_facet_row_and_map(server, page):
    page.goto(f"{server}/catalogue/actors")
    # The cluster map draws markers from the page's rows; tiles are blocked, markers are not tiles.
    expect(page.locator(".leaflet-container")).to_be_visible()
    page.locator(".leaflet-marker-icon").first.wait_for(state="attached")
    assert page.locator(".leaflet-marker-icon").count() >= 1
    assert any("tile.openstreetmap.org" in url for url in page.blocked)

    # Full-text search, accents ignored.
    page.fill("input[name=_search]", "Tubingen")
    page.locator("input[name=_search]").press("Enter")
    page.wait_for_url("**_search=Tubingen**")
    expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(2)
    expect(page.locator("table.rows-and-columns")).to_contain_text("Eberhard Karls Universität Tübingen")

    # A facet: actor type.
    page.goto(f"{server}/catalogue/actors")
    page.locator(".facet-info[data-column=actor_type] a", has_text="university").first.click()
    page.wait_for_url("**actor_type=university**")
    expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(3)

    # A row: provenance and the link to the signed record at its node.
    page.locator("table.rows-and-columns tbody tr td.type-pk a", has_text="uni-tuebingen").first.click()
    page.wait_for_url("**/catalogue/actors/bioregio-stern~2Factor~2Funi-tuebingen")
    link = page.locator('a[href="https://bioregio-stern.example/records/bioregio-stern/actor/uni-tuebingen"]')
    expect(link).to_have_count(1)
    expect(page.locator("body")).to_contain_text("CC-BY-4.0")

    # The HTML in a name is shown as text, never run.
    page.goto(f"{server}/catalogue/actors?actor_type=sme")
    expect(page.locator("table.rows-and-columns")).to_contain_text("<script>alert('x')</script> Labs GmbH")
    assert page.evaluate("document.querySelectorAll('td script').length") == 0
