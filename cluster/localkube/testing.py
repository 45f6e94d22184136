"""pytest plugin: a real local cluster for a whole test session, a fresh namespace per test, the
project's CRDs applied, and a final check that the session left nothing behind.

Registered from tests/conftest.py. The cluster is started lazily by the first test that asks for it.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import netns
from .cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


def leftovers(cluster: Cluster) -> list[str]:
    """Everything of this cluster still on the machine: namespaces, processes."""
    found = [f"netns {n}" for n in netns.list_names(f"lk-{cluster.name}-")]
    out = subprocess.run(["pgrep", "-af", str(cluster.data)], capture_output=True, text=True)
    found += [f"process {ln}" for ln in out.stdout.splitlines() if "pgrep" not in ln]
    return found


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    netns.require_root("the cluster test tier")
    name = "t" + uuid.uuid4().hex[:6]
    data = Path(tempfile.mkdtemp(prefix=f"localkube-{name}-"))
    c = Cluster(name, data)
    try:
        c.up()
        yield c
    finally:
        c.down(quiet=True, purge=True)
        left = leftovers(c)
        if os.environ.get("LOCALKUBE_KEEP_LOGS") is None:
            subprocess.run(["rm", "-rf", str(data)])
        assert not left, f"the test session left behind: {left}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    ns = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    ns = "".join(ch for ch in ns if ch.isalnum() or ch == "-")
    cluster.kubectl("create", "namespace", ns)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "-f", str(CRDS), "--server-side")
    for path in sorted(CRDS.glob("*.yaml")):
        name = path.name.removesuffix(".yaml")
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return cluster
