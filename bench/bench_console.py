"""Node console benchmark: saving a record through the console on a node holding 10,000 records.

    python -m bench.bench_console [--records 10000] [--saves 200]

A real `biofed node serve` (uvicorn) on loopback; httpx logs in as a staff account
and posts the edit form of a random actor with a changed city, as a browser does
(urlencoded, with the CSRF token and the version it saw). Each save is the whole
request: session and CSRF check, form read into a record, validation, signing, the
one-transaction append with its fsync, the audit entry, the redirect. The target is
p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from biofed.node.console.accounts import Accounts
from biofed.node.samples import sample_actor
from biofed.node.store import init_node

PASSWORD = "bench password long enough"
TOWNS = ["Stuttgart", "Tübingen", "Reutlingen", "Esslingen", "Ulm", "Heilbronn"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form_of(html: str) -> list[tuple[str, str]]:
    """The fields a browser would send from the edit form: inputs, selected options, checked boxes, textareas."""
    fields = [(name, value) for name, value in re.findall(r'<input id="f-[^"]+" name="([^"]+)" value="([^"]*)"', html)]
    fields += re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    fields += re.findall(r'<input type="checkbox" name="([^"]+)" value="([^"]+)" checked', html)
    for name, body in re.findall(r'<select id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields.append((name, chosen.group(1) if chosen else ""))
    fields += [(name, text) for name, text in re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>',
                                                         html, re.S)]
    import html as markup

    return [(name, markup.unescape(value)) for name, value in fields]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "node"
        port = free_port()
        node, _ = init_node(directory, node_id="bench-node", name="Bench", country="DE", region="DE1",
                            base_url=f"http://127.0.0.1:{port}")
        started = time.perf_counter()
        node.put_many([sample_actor(i) for i in range(args.records)])
        print(f"node with {args.records:,} actors built in {time.perf_counter() - started:.1f} s", flush=True)
        accounts = Accounts(node)
        accounts.set_password(accounts.add_user("bench", "editor"), PASSWORD)
        node.close()
        server = subprocess.Popen([sys.executable, "-m", "biofed", "node", "serve", str(directory), "--port",
                                   str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if client.get("/checkpoint").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("biofed node serve did not start")
                    time.sleep(0.1)
                login = client.get("/admin/login")
                token = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
                client.post("/admin/login", data={"_csrf": token, "name": "bench", "password": PASSWORD})
                rng = random.Random(1)
                times, pages = [], []
                for _ in range(args.saves):
                    local = f"org-{rng.randrange(args.records)}"
                    t0 = time.perf_counter()
                    page = client.get(f"/admin/edit/actor/{local}")
                    pages.append(time.perf_counter() - t0)
                    fields = [(n, v) for n, v in form_of(page.text) if n != "address-locality"]
                    fields.append(("address-locality", rng.choice(TOWNS) + f" {rng.randrange(10**6)}"))
                    t0 = time.perf_counter()
                    saved = client.post(f"/admin/edit/actor/{local}", content=httpx.QueryParams(fields).__str__(),
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
                    times.append(time.perf_counter() - t0)
                    if saved.status_code != 303 or "saved=" not in saved.headers.get("location", ""):
                        raise SystemExit(f"save of {local} failed: {saved.status_code} {saved.text[:500]}")
        finally:
            server.terminate()
            server.wait(timeout=10)

    def ms(values, q):
        return statistics.quantiles(values, n=100)[q - 1] * 1000

    print(f"save through the console ({args.saves} edits, node of {args.records:,} records): "
          f"p50 {statistics.median(times) * 1000:.1f} ms, p95 {ms(times, 95):.1f} ms, max {max(times) * 1000:.1f} ms")
    print(f"edit page (GET, rendered form): p50 {statistics.median(pages) * 1000:.1f} ms, p95 {ms(pages, 95):.1f} ms")


if __name__ == "__main__":
    main()
