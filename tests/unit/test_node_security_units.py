"""The node agent's trust checks on their own: capability sets, its Pod Security check, and a
subPath opened only inside its volume."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from localkube.node import security, subpath
from localkube.node.linux import CAPABILITIES, DEFAULT_CAPABILITIES


@pytest.mark.parametrize(("sec", "expected"), [
    ({}, sorted(DEFAULT_CAPABILITIES, key=CAPABILITIES.index)),
    ({"capabilities": {"drop": ["ALL"]}}, []),
    ({"capabilities": {"drop": ["all"], "add": ["CAP_NET_BIND_SERVICE"]}}, ["NET_BIND_SERVICE"]),
    ({"capabilities": {"drop": ["NET_RAW", "MKNOD"]}},
     sorted(set(DEFAULT_CAPABILITIES) - {"NET_RAW", "MKNOD"}, key=CAPABILITIES.index)),
    ({"privileged": True, "capabilities": {"drop": ["ALL"]}}, list(CAPABILITIES)),
])
def test_a_container_keeps_the_runtime_defaults_minus_drop_plus_add(sec: dict, expected: list[str]) -> None:
    assert security.capabilities(sec) == expected


HOSTILE = {"spec": {"hostNetwork": True, "hostPID": True, "hostIPC": True,
                    "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}],
                    "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
                    "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}],
                                    "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}}]}}


def test_baseline_and_restricted_refuse_every_kind_of_host_access() -> None:
    for level in ("baseline", "restricted"):
        found = security.violations(HOSTILE, level)
        assert found == ["hostNetwork=true", "hostPID=true", "hostIPC=true", 'hostPath volume "root"',
                         'privileged container "i"', "container \"c\" adds capabilities ['SYS_ADMIN']",
                         'container "c" uses a hostPort']
    assert security.violations(HOSTILE, "privileged") == []
    assert security.violations({"spec": {"containers": [{"name": "c"}]}}, "baseline") == []


@pytest.mark.parametrize(("labels", "level"), [
    (None, "baseline"), ({}, "baseline"), ({security.LEVEL_LABEL: "restricted"}, "restricted"),
    ({security.LEVEL_LABEL: "privileged"}, "privileged"), ({security.LEVEL_LABEL: "anything"}, "baseline"),
])
def test_a_namespace_without_a_known_level_is_baseline(labels: dict | None, level: str) -> None:
    assert security.level({"metadata": {"labels": labels}}) == level


def _vol(tmp_path: Path) -> Path:
    vol = tmp_path / "vol"
    (vol / "real").mkdir(parents=True)
    (vol / "real" / "f").write_text("inside")
    (vol / "link").symlink_to("real")
    (vol / "escape").symlink_to("/")
    (vol / "up").symlink_to("../..")
    (tmp_path / "outside").mkdir()
    return vol


@pytest.mark.parametrize("sub", ["escape", "escape/etc", "up", "real/../../outside", "/etc", "up/outside/new"])
def test_a_subpath_out_of_its_volume_is_refused(tmp_path: Path, sub: str) -> None:
    vol = _vol(tmp_path)
    with pytest.raises(subpath.SubPathError):
        subpath.open_beneath(str(vol), sub, create=True)
    assert not (tmp_path / "outside" / "new").exists()


def test_a_subpath_inside_its_volume_is_opened_and_made(tmp_path: Path) -> None:
    vol = _vol(tmp_path)
    fd = subpath.open_beneath(str(vol), "link/f")
    try:
        assert os.path.realpath(f"/proc/self/fd/{fd}") == str(vol / "real" / "f")
    finally:
        os.close(fd)
    os.close(subpath.open_beneath(str(vol), "made/deeper", create=True))
    assert (vol / "made" / "deeper").is_dir()
    with pytest.raises(FileNotFoundError):
        subpath.open_beneath(str(vol), "missing")
