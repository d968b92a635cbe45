"""What the schemathesis suites of the node and the registry share: budget, checks, bookkeeping."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("BIOFED_FUZZ_EXAMPLES", "40"))
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
               response_schema_conformance]


def declared_operations(schema) -> list[str]:
    """Every operation label the OpenAPI description declares, sorted."""
    return sorted(result.ok().label for result in schema.get_all_operations())


def assert_enough_cases(cases: Counter, runs: list, minimum: int) -> None:
    """After a module's fuzz runs: at least `minimum` generated cases (skip when only a selection ran)."""
    if len(cases) < len(runs):
        pytest.skip(f"only {len(cases)} of {len(runs)} fuzz runs ran in this session (a selection)")
    total = sum(cases.values())
    print(f"{total} generated cases over {len(cases)} runs")
    assert total >= minimum, cases
