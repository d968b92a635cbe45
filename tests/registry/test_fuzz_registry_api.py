"""Schemathesis against the registry server's own OpenAPI description, through the real ASGI app.

The app serves a real registry directory (made with `biofed registry` like an
operator would: three nodes added offline from their real join requests, one
suspended, one key rotated: six signed versions). Every operation it declares
is fuzzed with data that fits its description (positive) and, where there is
something to make invalid, data that does not (negative), once as sent by the
generator and once as a revalidating client that sends `If-None-Match` with
every ETag the registry has (so each 304 path is reached too). Checks: no 5xx,
the status code, content type, headers and body of every answer are the ones
the description declares, and invalid data is refused. After each run the
registry directory must be byte for byte what it was: the server only reads.

Budget: 2 x BIOFED_FUZZ_EXAMPLES examples per operation, mode and ETag choice
(the registry's operations have few inputs and answer in about a millisecond;
default 40: (4 positive + 1 negative) x 2 x 80, of which the two operations
without inputs give one case each: about 480 generated cases in CI, asserted
>= 400 by the run that completes the set, in whatever order the runs take).
The full-budget command is in SECURITY.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
)
from support.fuzzing import CONFORMANCE, EXAMPLES, CaseTally, declared_operations
from support.registry import join, run

from biofed.node.store import init_node
from biofed.registry.server import create_app
from biofed.registry.store import RegistryStore
from biofed.trust.keys import SigningKey

PER_RUN = 2 * EXAMPLES
MIN_CASES = 400 if EXAMPLES >= 40 else 0  # the CI floor; a smaller local budget is allowed to fall short

OPERATIONS = [
    "GET /registry.json",
    "GET /registry/versions",
    "GET /registry/{version}.json",
    "GET /.well-known/biofed-registry.json",
]
VERSIONS = [1, 2, 3, 4, 5, 6]


def files(directory: Path) -> dict:
    """Every file and folder under `directory`: contents and modification time (nothing may even be rewritten)."""
    return {str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """(registry directory, its files before any request) for a registry of six versions."""
    base = tmp_path_factory.mktemp("fuzz-registry")
    directory = base / "registry"
    RegistryStore.init(directory, name="biofed-eu", validity_days=7)
    for node_id, name, country, region in [("biopro", "BIOPRO", "DE", "DE1"), ("genopole", "Genopole", "FR", "FR1"),
                                           ("bioalps", "BioAlps", "CH", "CH0")]:
        init_node(base / node_id, node_id=node_id, name=name, country=country, region=region,
                  base_url=f"https://{node_id}.example")
        run("registry", "add", directory, join(base / node_id, base), "--offline")
    run("registry", "suspend", directory, "genopole")
    run("registry", "rotate-node-key", directory, "bioalps", "--offline", "--new-key",
        SigningKey.generate().public.multibase, "--at", "2026-03-01T00:00:00Z")
    assert RegistryStore.open(directory).versions() == VERSIONS
    return directory, files(directory)


@pytest.fixture(scope="module")
def api(registry):
    """(schemathesis schema, an If-None-Match header naming every ETag the registry has)."""
    directory, _ = registry
    etags = [f'"{VERSIONS[-1]}"'] + ['"' + hashlib.sha256((directory / "history" / f"{v}.json").read_bytes())
                                     .hexdigest()[:32] + '"' for v in VERSIONS]
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(directory)), ", ".join(etags)


def test_every_route_is_fuzzed(api):
    schema, _ = api
    assert declared_operations(schema) == sorted(OPERATIONS), "a new route needs its place in OPERATIONS"


# No parameters, or only a header any value of which is valid: positive only.
NOTHING_TO_NEGATE = {"GET /registry.json", "GET /registry/versions", "GET /.well-known/biofed-registry.json"}
RUNS = [(label, revalidating, mode) for label in OPERATIONS for revalidating in (True, False)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if not (mode == GenerationMode.NEGATIVE and label in NOTHING_TO_NEGATE)]


@pytest.fixture(scope="session")
def tally():
    return CaseTally(RUNS, MIN_CASES)


@pytest.mark.slow
@pytest.mark.parametrize(("label", "revalidating", "mode"), RUNS,
                         ids=[f"{label}-{'etags' if r else 'generated'}-{mode}" for label, r, mode in RUNS])
def test_fuzz_operation(api, registry, tally, label, revalidating, mode):
    schema, etags = api
    directory, before = registry
    operation = schema.find_operation_by_label(label)
    headers = {"If-None-Match": etags} if revalidating else {}
    checks = list(CONFORMANCE)
    if mode == GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @settings(max_examples=PER_RUN, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        tally.count((label, revalidating, mode))
        response = case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=checks)
        assert response.status_code < 500
        if revalidating and response.status_code == 200:  # every ETag was sent: nothing may come back in full
            assert label in ("GET /registry/versions", "GET /.well-known/biofed-registry.json"), case.path_parameters

    fuzz()
    assert files(directory) == before, "the server only reads: the registry directory changed"
    tally.finish((label, revalidating, mode))  # the last run to finish checks the total


def test_happy_paths_conform(api, registry):
    """Each answer the fuzzer may miss, checked against the OpenAPI description like a fuzzed case."""
    schema, etags = api
    directory, before = registry
    current = schema["/registry.json"]["GET"].Case()
    response = current.call_and_validate(checks=CONFORMANCE)
    assert response.status_code == 200 and response.content == (directory / "registry.json").read_bytes()
    assert response.headers["etag"] == [f'"{VERSIONS[-1]}"']
    revalidated = current.call_and_validate(headers={"If-None-Match": f'"{VERSIONS[-1]}"'}, checks=CONFORMANCE)
    assert revalidated.status_code == 304 and revalidated.content == b""
    one = schema["/registry/{version}.json"]["GET"]
    for version in VERSIONS:
        case = one.Case(path_parameters={"version": str(version)})
        response = case.call_and_validate(checks=CONFORMANCE)
        assert response.status_code == 200, version
        assert response.content == (directory / "history" / f"{version}.json").read_bytes()
        again = case.call_and_validate(headers={"If-None-Match": response.headers["etag"][0]}, checks=CONFORMANCE)
        assert again.status_code == 304, version
    listing = schema["/registry/versions"]["GET"].Case().call_and_validate(checks=CONFORMANCE)
    assert listing.json() == {"name": "biofed-eu", "current": VERSIONS[-1], "versions": VERSIONS}
    well_known = schema["/.well-known/biofed-registry.json"]["GET"].Case().call_and_validate(checks=CONFORMANCE)
    assert well_known.status_code == 200 and well_known.json()["version"] == VERSIONS[-1]
    assert files(directory) == before, "the server only reads"


@pytest.mark.parametrize("version", [
    "7", "0", "x", "-1", "1.5", "01", "1 ", "\u0661",  # Arabic-Indic one: str.isdigit() and int() take it
    "\u00b2",  # superscript two: str.isdigit() takes it, int() does not (was a 500)
    "9" * 17, "9" * 300,  # longer than any file name may be (was a 500: ENAMETOOLONG)
    "9" * 5000,  # more digits than int() converts (was a 500)
    "a/b", "..", "%2e%2e",  # other paths: the protocol's error shape, not the framework's
], ids=lambda version: f"{len(version)}-digits" if len(version) > 20 else version)
def test_anything_but_a_signed_version_is_404(api, registry, version):
    """Only the names of history/ files are versions, as from a static copy: anything else is 404, never 500."""
    schema, _ = api
    case = schema["/registry/{version}.json"]["GET"].Case(path_parameters={"version": version})
    response = case.call_and_validate(checks=CONFORMANCE)
    assert response.status_code == 404, response.text
    assert set(response.json()) == {"error", "message", "errors"} and response.json()["error"] == "not-found"
    directory, before = registry
    assert files(directory) == before
