"""Screenshots of the catalogue's pages for people, for docs/catalogue.md.

    python -m bench.screenshots [--out docs/screenshots] [--chromium /usr/bin/chromium]

Builds the small signed sample catalogue of the tests, serves it the way
`biofed aggregator serve` does (uvicorn, on a free loopback port), and saves
one PNG per page with headless Chromium (Playwright). Requests to other hosts
(map tiles) are refused, so the maps show their "tiles could not be loaded"
notice with the markers still drawn -- what a visitor sees when the tile
server is down.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "home": "/",
    "search": "/find?q=mrna",
    "actor": "/bioregio-stern/actor/curevac",
    "project": "/genopole/project/cobioe",
    "region": "/region/DE14",
    "regions": "/regions",
    "offer": "/bioregio-stern/offer/mrna-process",
    "canned-query": "/catalogue/region_strengths?region=DE1",
    "table": "/catalogue/actors",
    "not-found": "/no/such/page",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_sample(db_path: Path):
    """Build the sample catalogue at db_path and serve it; returns (base URL, stop())."""
    import uvicorn

    from tests.support.catalogue_sample import build_sample_catalogue  # run from the repository root

    from biofed.aggregator.serve import make_datasette

    build_sample_catalogue(db_path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(make_datasette(db_path).app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(timeout=5)

    return f"http://127.0.0.1:{port}", stop


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base, stop = serve_sample(Path(tmp) / "catalogue.db")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport={"width": args.width, "height": 900})
                context.route("**/*", lambda route: route.continue_()
                              if urlparse(route.request.url).hostname == "127.0.0.1" else route.abort())
                page = context.new_page()
                for name, path in PAGES.items():
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    target = args.out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                browser.close()
        finally:
            stop()


if __name__ == "__main__":
    main()
