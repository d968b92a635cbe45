"""BioFed's schema files and signed records, checked with independent JavaScript libraries.

interop.mjs compiles every schema file with Ajv 2020 in strict mode (with
ajv-formats) and runs the corpus of tests/data/schema/corpus.json through it,
then verifies every record in the log of a real node served by uvicorn with
Digital Bazaar's Data Integrity libraries, resolving keys through the node's
controller document (the recipe of docs/developers.md). The packages are the
ones package-lock.json pins: `npm ci` in this directory installs them (.ci/run does).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.controller import resolver
from support.hostile import serve
from support.node import actors, make_node

from biofed.node.app import create_app
from biofed.trust import proofs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PACKAGES = sorted(json.loads((HERE / "package.json").read_text(encoding="utf-8"))["dependencies"])


def _missing() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    absent = [name for name in PACKAGES if not (HERE / "node_modules" / name / "package.json").is_file()]
    if absent:
        return f"npm packages not installed ({', '.join(absent)}): run npm ci in tests/interop/js"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def run_interop(*extra: str) -> tuple[int, dict]:
    result = subprocess.run(
        ["node", str(HERE / "interop.mjs"), "--schemas", str(ROOT / "biofed" / "schema" / "schemas"),
         "--examples", str(ROOT / "biofed" / "schema" / "examples"),
         "--corpus", str(ROOT / "tests" / "data" / "schema" / "corpus.json"), *extra],
        capture_output=True, text=True, timeout=120, cwd=HERE)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_ajv_strict_compiles_every_schema_file_and_agrees_on_the_corpus():
    code, report = run_interop()
    assert report["failures"] == [] and code == 0
    files = sorted(path.name for path in (ROOT / "biofed" / "schema" / "schemas").glob("*.json"))
    assert report["schemas"]["compiled"] == files
    assert report["schemas"]["accepted"] == ["actor", "project", "offer"]
    corpus = json.loads((ROOT / "tests" / "data" / "schema" / "corpus.json").read_text(encoding="utf-8"))
    assert report["schemas"]["refused"] == [m["mistake"] for m in corpus["mistakes"]]


@pytest.fixture(scope="module")
def node_url(tmp_path_factory):
    """A real node on loopback that signed with three keys: one revoked, one retired, one active."""
    base = tmp_path_factory.mktemp("interop")
    node, _ = make_node(base)
    node.put_many(actors(4))
    first = node.signing_key.kid
    time.sleep(1.01)  # times have whole seconds: a key signs before the second it is retired in
    node.rotate_key()
    node.put_many(actors(4, start=4))
    node.delete("actor/org-5")
    time.sleep(1.01)
    node.rotate_key()
    node.put_many(actors(2, start=8))
    node.revoke_key(first, "2000-01-01T00:00:00Z")
    node.close()
    served = serve(create_app(base / "node"))
    try:
        yield served.url
    finally:
        served.stop()


def test_digital_bazaar_verifies_every_record_of_a_real_node(node_url):
    import httpx

    code, report = run_interop("--node", node_url)
    assert report["failures"] == [] and code == 0
    log = httpx.get(f"{node_url}/log?limit=1000").json()["entries"]
    entries = report["records"]["entries"]
    assert [e["seq"] for e in entries] == [e["seq"] for e in log] and len(entries) >= 16
    assert {e["key"] for e in entries} == {m["id"] for m in httpx.get(f"{node_url}/controller.json").json()
                                           ["verificationMethod"]}
    # Digital Bazaar verifies every signature; the validity the controller document states is
    # the one BioFed applies: what the revoked key signed is out of time, everything else in.
    resolve = resolver(httpx.get(f"{node_url}/controller.json").json())
    for entry, logged in zip(entries, log):
        record = logged["record"]
        assert entry["verified"], entry
        in_time = resolve(record["proof"]["verificationMethod"], record["proof"]["created"]) is not None
        assert entry["inTime"] == in_time, entry
        if in_time:
            proofs.verify(record, lambda method: resolve(method, record["proof"]["created"]))
    assert any(not e["inTime"] for e in entries) and sum(e["inTime"] for e in entries) >= 12
