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
from pathlib import Path
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


# --- the pages for people ------------------------------------------------------------------------------

AXE = Path(__file__).parent.parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
PEOPLE_PAGES = {
    "home": "/",
    "search results": "/find?q=mrna",
    "actor": "/bioregio-stern/actor/curevac",
    "project": "/genopole/project/cobioe",
    "region": "/region/DE14",
    "regions": "/regions",
    "offer": "/bioregio-stern/offer/mrna-process",
    "canned query": "/catalogue/region_strengths?region=DE1",
    "not found": "/no/such/page",
}


@pytest.mark.parametrize("name", sorted(PEOPLE_PAGES))
def test_no_serious_accessibility_violations(server, page, name):
    """axe-core (tests/browser, `npm ci`) on each page: no serious or critical violation (EU Web Accessibility Directive)."""
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: run `npm ci` in tests/browser")
        pytest.skip("axe-core is not installed: run `npm ci` in tests/browser")
    page.goto(server + PEOPLE_PAGES[name])
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
               if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_a_visitors_journey(server, page):
    """Front door search -> actor profile -> one of its projects -> a partner on another node -> its region."""
    page.goto(server + "/")
    page.get_by_label("What").fill("mrna")
    page.get_by_label("Where").select_option("DE")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/find?q=mrna**")
    page.get_by_role("link", name="CureVac SE").first.click()
    page.wait_for_url("**/bioregio-stern/actor/curevac")
    expect(page.get_by_role("heading", level=1)).to_have_text("CureVac SE")
    page.get_by_role("link", name="COBIOE: Growing connection for bio ecosystems").click()
    page.wait_for_url("**/genopole/project/cobioe")
    expect(page.locator("table.biofed-table")).to_contain_text("Novo Nordisk A/S")
    expect(page.locator("body")).to_contain_text("€1,234,567.89")
    page.get_by_role("link", name="Novo Nordisk A/S").click()
    page.wait_for_url("**/dlsc/actor/novo")
    expect(page.locator(".provenance")).to_contain_text("Danish Life Science Cluster")
    page.get_by_role("link", name="Hovedstaden").first.click()
    page.wait_for_url("**/region/DK01")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hovedstaden")
    expect(page.locator("svg.biofed-chart").first).to_be_visible()
    expect(page.locator("table.biofed-table").first).to_contain_text("Biomanufacturing")


def test_maps_show_markers_without_tiles_and_escape_popups(server, page):
    page.goto(server + "/bioregio-stern/actor/script-labs")
    page.locator(".leaflet-marker-icon").first.wait_for(state="attached")
    expect(page.locator(".map-notice")).to_be_visible()  # tiles are blocked: the page says so
    page.locator(".leaflet-marker-icon").first.click()
    expect(page.locator(".leaflet-popup-content")).to_contain_text("<script>alert('x')</script> Labs GmbH")
    assert page.evaluate("document.querySelectorAll('.leaflet-popup script').length") == 0
    page.goto(server + "/genopole/project/cobioe")
    page.locator(".leaflet-marker-icon").first.wait_for(state="attached")
    assert page.locator(".leaflet-marker-icon").count() == 4


def test_maps_of_cross_border_links(server, page):
    """The region page's links and /regions draw lines and sized circles, tiles or not, with the numbers beside them."""
    page.goto(server + "/region/DE14")
    links = page.locator("#links-title + p + .map-and-table")
    links.locator("path.leaflet-interactive").first.wait_for(state="attached")
    # three lines and three circles (DK01, ES, FR10), and the region's own marker
    assert links.locator("path.leaflet-interactive").count() == 6
    assert links.locator(".leaflet-marker-icon").count() == 1
    expect(links.locator(".map-notice")).to_be_visible()
    expect(links.locator("#links-table")).to_contain_text("Hovedstaden")
    page.goto(server + "/regions")
    page.locator("path.leaflet-interactive").first.wait_for(state="attached")
    assert page.locator("path.leaflet-interactive").count() == 6 + 4  # six links, four regions' circles
    page.get_by_role("link", name="Stuttgart").click()
    page.wait_for_url("**/region/DE11")
    expect(page.get_by_role("heading", level=1)).to_have_text("Stuttgart")


def test_facet_by_country_then_sector(server, page):
    page.goto(server + "/catalogue/actor_sectors")
    page.locator(".facet-info[data-column=country] a", has_text="DK").first.click()
    page.wait_for_url("**country=DK**")
    page.locator(".facet-info[data-column=sector] a", has_text="pharma").first.click()
    page.wait_for_url("**sector=pharma**")
    expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(1)
    expect(page.locator("table.rows-and-columns")).to_contain_text("Novo Nordisk A/S")


def test_keyboard_reaches_the_search(server, page):
    page.goto(server + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("Genopole")
    page.keyboard.press("Enter")
    page.wait_for_url("**/find?q=Genopole**")
    expect(page.locator("body")).to_contain_text("a cluster node in France")


def test_unknown_page_is_a_404_page(server, page):
    response = page.goto(server + "/no/such/page/at/all")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
