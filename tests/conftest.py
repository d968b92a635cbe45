from pathlib import Path

import pytest
from support import VECTORS


@pytest.fixture
def vectors() -> Path:
    return VECTORS
