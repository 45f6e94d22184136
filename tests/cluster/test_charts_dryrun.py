"""Every manifest the charts render, with default and non-default values, passes the real API
server's validation (server-side dry run)."""
from __future__ import annotations

import pytest

from localkube.cluster import Cluster
from localkube.testing import ROOT


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("shop", []),
        (
            "shop",
            [
                "--set",
                "persistence.enabled=false",
                "--set",
                "faultHooks=true",
                "--set",
                "gateway.service.type=ClusterIP",
            ],
        ),
        ("observability", []),
        ("observability", ["--set", "cadvisor.enabled=false"]),
        ("llm", ["--set", "model.hostPath=/var/lib/models"]),
        ("llm", ["--set", "model.url=https://models.example/m.gguf", "--set", "server.apiKeySecret=llm-key"]),
    ],
)
def test_rendered_manifests_pass_a_server_side_dry_run(cluster: Cluster, namespace: str, chart: str,
                                                       values: list[str]) -> None:
    rendered = cluster.helm("template", "rel", str(ROOT / "charts" / chart), "--namespace", namespace, *values).stdout
    out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered)
    assert "(server dry run)" in out.stdout
    assert out.stdout.count("(server dry run)") == rendered.count("\nkind: ")


def test_a_broken_manifest_is_refused_by_the_dry_run(cluster: Cluster, namespace: str) -> None:
    rendered = cluster.helm("template", "rel", str(ROOT / "charts" / "shop"), "--namespace", namespace).stdout
    broken = rendered.replace("containerPort: 5002", "containerPort: 700000", 1)
    out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=broken, check=False)
    assert out.returncode != 0 and "containerPort" in out.stderr
