"""What the schemathesis suites of the node and the registry share: budget, checks, bookkeeping."""

from __future__ import annotations

import os
from collections import Counter

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


class CaseTally:
    """Generated cases per fuzz run of one suite; the run that completes the set checks the total.

    Whichever order the runs take, the last of them to finish asserts that all of
    them together generated at least `minimum` cases. When only a selection of the
    runs is made (-k, one test id), no run completes the set and nothing is claimed.
    """

    def __init__(self, runs: list, minimum: int):
        self.runs, self.minimum = set(runs), minimum
        self.cases: Counter = Counter()
        self.finished: set = set()

    def count(self, run) -> None:
        self.cases[run] += 1

    def finish(self, run) -> None:
        assert run in self.runs, run
        self.finished.add(run)
        if self.finished == self.runs:
            total = sum(self.cases.values())
            print(f"{total} generated cases over {len(self.runs)} runs")
            assert total >= self.minimum, f"only {total} generated cases over all {len(self.runs)} runs " \
                                          f"(at least {self.minimum}): {dict(self.cases)}"
