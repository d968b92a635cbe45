"""Fixtures of the aggregator tests."""

import pytest
from support.network import Network


@pytest.fixture
def net(tmp_path):
    network = Network(tmp_path)
    yield network
    network.close()
