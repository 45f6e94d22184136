"""Binary provisioning: what counts as provisioned, KUBEBUILDER_ASSETS, and the real version stamps."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from localkube import binaries, provision, versions


def _fake(dir_: Path, names: tuple[str, ...], marker: bool) -> None:
    dir_.mkdir(parents=True)
    for n in names:
        (dir_ / n).write_text("#!/bin/sh\n")
        (dir_ / n).chmod(0o755)
    if marker:
        (dir_ / ".complete").write_text("\n".join(names))


def test_an_unfinished_cache_dir_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    _fake(binaries.HELM.dir, ("helm",), marker=False)
    assert not binaries.HELM.complete()
    with pytest.raises(binaries.MissingBinary, match="make cluster-bin"):
        binaries.find_binary("helm")
    (binaries.HELM.dir / ".complete").write_text("helm\n")
    assert binaries.find_binary("helm") == binaries.HELM.dir / "helm"


def test_ensure_skips_complete_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))
    _fake(binaries.KWOK.dir, ("kwok",), marker=True)
    monkeypatch.setitem(provision.BUILDERS, "kwok", lambda out: pytest.fail("must not rebuild"))
    assert provision.ensure(binaries.KWOK, log=lambda _: None) == "cache hit"


def test_a_failed_build_leaves_nothing_that_looks_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))

    def broken(out: Path) -> None:
        (out / "kwok").write_text("half")
        raise subprocess.CalledProcessError(1, "go build")

    monkeypatch.setitem(provision.BUILDERS, "kwok", broken)
    with pytest.raises(subprocess.CalledProcessError):
        provision.ensure(binaries.KWOK, log=lambda _: None)
    assert not binaries.KWOK.dir.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_kubebuilder_assets_supply_envtest_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(tmp_path / "assets", ("etcd", "kube-apiserver", "kubectl"), marker=False)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "assets"))
    assert binaries.find_binary("kube-apiserver") == tmp_path / "assets" / "kube-apiserver"
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path / "empty"))
    with pytest.raises(binaries.MissingBinary):
        binaries.find_binary("kube-proxy")  # not an envtest asset


def test_unknown_binary_is_a_clear_error() -> None:
    with pytest.raises(binaries.MissingBinary, match="not one of"):
        binaries.find_binary("dockerd")


def test_provisioned_binaries_carry_the_pinned_versions() -> None:
    out = subprocess.run(
        [binaries.find_binary("kube-apiserver"), "--version"], capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == f"Kubernetes {versions.KUBERNETES}"
    out = subprocess.run(
        [binaries.find_binary("kubectl"), "version", "--client"], capture_output=True, text=True, check=False
    )
    assert f"Client Version: {versions.KUBERNETES}" in out.stdout
    out = subprocess.run([binaries.find_binary("etcd"), "--version"], capture_output=True, text=True, check=False)
    assert f"etcd Version: {versions.ETCD.lstrip('v')}" in out.stdout
    out = subprocess.run(
        [binaries.find_binary("helm"), "version", "--short"], capture_output=True, text=True, check=False
    )
    assert out.stdout.startswith(versions.HELM)
    out = subprocess.run([binaries.find_binary("coredns"), "-version"], capture_output=True, text=True, check=False)
    assert versions.COREDNS.lstrip("v") in out.stdout
