"""The unit tier's shared fixture: the in-memory cluster holding one healthy shop."""
from __future__ import annotations

import pytest

from tests.fakes.cluster import MemoryCluster, shop


@pytest.fixture
def cluster() -> MemoryCluster:
    """A fresh in-memory cluster with the shop's objects (a test file may override it)."""
    return shop(MemoryCluster())
