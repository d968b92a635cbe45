"""Helpers the tests share (fixtures are in the conftest.py files): real nodes, hostile servers,
a small network, the sample catalogue, fuzzing budgets; and where things are."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPOSITORY = TESTS.parent
DATA = TESTS / "data"  # fixtures: import files, schema corpus
VECTORS = TESTS / "vectors"  # the W3C and RFC 8785 test vectors
