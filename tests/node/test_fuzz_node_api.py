"""Schemathesis against the node's own OpenAPI description, through the real ASGI app.

Every operation the node declares is fuzzed with data that fits its
description (positive) and data that does not (negative), once with a valid
admin bearer token (so the authenticated write paths are reached) and once
without. Checks: no 5xx, the status code, content type, headers and body of
every answer are the ones the description declares, invalid data is refused,
and an operation that declares bearer auth refuses requests without it.

Budget: BIOFED_FUZZ_EXAMPLES examples per operation, mode and token (default
40: (9 operations with inputs positive + 7 negative) x 2 tokens x 40 = about
1,100 generated cases in CI, asserted >= 1,000 by the run that completes the
set, in whatever order the runs take). The full-budget command is in SECURITY.md.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
)
from support.fuzzing import CONFORMANCE, EXAMPLES, CaseTally, declared_operations
from support.node import NODE_ID, actors, make_node

from biofed.node.app import create_app
from biofed.node.samples import sample_actor

MIN_CASES = 1000 if EXAMPLES >= 40 else 0  # the CI floor; a smaller local budget is allowed to fall short

OPERATIONS = [
    "GET /.well-known/biofed-node.json",
    "GET /controller.json",
    "GET /schemas/{name}.json",
    "GET /checkpoint",
    "GET /log",
    "GET /log/proof/inclusion",
    "GET /log/proof/consistency",
    "GET /log/index",
    "GET /snapshot.jsonl.gz",
    "GET /records/{record_id}",
    "POST /records",
    "PUT /records/{record_id}",
    "DELETE /records/{record_id}",
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(schemathesis schema, admin token) for a node holding 20 records, one deleted."""
    base = tmp_path_factory.mktemp("fuzz")
    node, token = make_node(base)
    node.put_many(actors(20))
    node.delete("actor/org-3")
    node.close()
    app = create_app(base / "node")
    return schemathesis.openapi.from_asgi("/openapi.json", app), token


def test_every_route_is_fuzzed(api):
    schema, _ = api
    assert declared_operations(schema) == sorted(OPERATIONS), "a new route needs its place in OPERATIONS"


# Nothing to make invalid (no parameters, or only a path string any value of which is valid): positive only.
NOTHING_TO_NEGATE = {"GET /.well-known/biofed-node.json", "GET /controller.json", "GET /checkpoint",
                     "GET /snapshot.jsonl.gz",
                     "GET /schemas/{name}.json", "GET /records/{record_id}"}
RUNS = [(label, with_token, mode) for label in OPERATIONS for with_token in (True, False)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if not (mode == GenerationMode.NEGATIVE and label in NOTHING_TO_NEGATE)]


@pytest.fixture(scope="session")
def tally():
    return CaseTally(RUNS, MIN_CASES)


@pytest.mark.slow
@pytest.mark.parametrize(("label", "with_token", "mode"), RUNS,
                         ids=[f"{label}-{'token' if t else 'anonymous'}-{mode}" for label, t, mode in RUNS])
def test_fuzz_operation(api, tally, label, with_token, mode):
    schema, token = api
    operation = schema.find_operation_by_label(label)
    headers = {"Authorization": f"Bearer {token}"} if with_token else {}
    checks = list(CONFORMANCE)
    if mode == GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    if with_token:
        checks.append(ignored_auth)  # with the right token it succeeds; the probes without one must not

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        tally.count((label, with_token, mode))
        response = case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=checks)
        assert response.status_code < 500
        # (negative cases may mutate the Authorization header itself, so only positive ones tell)
        if case.method != "GET" and mode == GenerationMode.POSITIVE and response.json()["message"] != "Not Found":
            if with_token:  # the admin token opens every write: the request reached the node's checks
                assert response.status_code not in (401, 403), response.text
            else:  # no token, no write: refused before the body is even read
                assert response.status_code == 401, (case.path_parameters, response.text)

    fuzz()
    tally.finish((label, with_token, mode))  # the last run to finish checks the total


def test_happy_paths_conform(api):
    """The successful answers the fuzzer rarely reaches: create, read, update, delete, each checked
    against the OpenAPI description like a fuzzed case."""
    schema, token = api
    auth = {"Authorization": f"Bearer {token}"}
    content = {**sample_actor(900), "id": f"{NODE_ID}/actor/fuzz-happy"}
    created = schema["/records"]["POST"].Case(body=content).call_and_validate(headers=auth, checks=CONFORMANCE)
    assert created.status_code == 201
    record_id = created.json()["id"]
    read = schema["/records/{record_id}"]["GET"].Case(path_parameters={"record_id": record_id})
    assert read.call_and_validate(checks=CONFORMANCE).status_code == 200
    update = schema["/records/{record_id}"]["PUT"].Case(path_parameters={"record_id": record_id},
                                                       headers={"If-Match": '"1"'},
                                                       body={**content, "actorType": "university"})
    assert update.call_and_validate(headers=auth, checks=CONFORMANCE).status_code == 200
    delete = schema["/records/{record_id}"]["DELETE"].Case(path_parameters={"record_id": record_id})
    assert delete.call_and_validate(headers=auth, checks=CONFORMANCE).status_code == 200
    assert read.call_and_validate(checks=CONFORMANCE).status_code == 410
    for label, query in [("/log", {"after": 0, "limit": 5}), ("/log/proof/inclusion", {"seq": 1}),
                         ("/log/proof/consistency", {"first": 1}), ("/log/index", {"id": f"{NODE_ID}/actor/org-1"})]:
        case = schema[label]["GET"].Case(query=query)
        assert case.call_and_validate(checks=CONFORMANCE).status_code == 200
    for label in ("/checkpoint", "/snapshot.jsonl.gz", "/.well-known/biofed-node.json"):
        assert schema[label]["GET"].Case().call_and_validate(checks=CONFORMANCE).status_code == 200
    # errors have the protocol's shape, FastAPI's own query validation included
    bad = schema["/log"]["GET"].Case(query={"limit": 0}).call_and_validate(checks=CONFORMANCE)
    assert bad.status_code == 422 and set(bad.json()) == {"error", "message", "errors"}
    unknown = schema["/log/index"]["GET"].Case(query={"id": "no/such/record"}).call_and_validate(checks=CONFORMANCE)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not-found"
