"""What every end-to-end test shares: a fresh shop with Prometheus per test, and the operator's
handler modules as kopf runs them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from localkube.cluster import Cluster
from localkube.testing import shop_namespace

OPERATOR_ARGS = ["run", "--standalone", "--all-namespaces", "-m", "sre_operator.handlers.faultscenarios",
                 "-m", "sre_operator.handlers.incidents"]


@pytest.fixture
def shop(cluster: Cluster, crds: Cluster) -> Iterator[str]:
    """A fresh shop per test: full stock, no history, no incidents of another test."""
    with shop_namespace(cluster, observability=True) as ns:
        yield ns
