"""cgroup v1 groups for pods and containers, `/sys/fs/cgroup/<controller>/localkube-<cluster>/pod<uid>/<container>`,
with the container's limits (memory limit, CFS quota, CPU shares) and the figures the kubelet's
cAdvisor endpoint reports (CPU time, memory working set, OOM kills, throttling)."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
CFS_PERIOD_US = 100_000


def cluster_group(cluster: str) -> str:
    return f"localkube-{cluster}"


def group(cluster: str, pod_uid: str, container: str | None = None) -> str:
    g = f"{cluster_group(cluster)}/pod{pod_uid}"
    return f"{g}/{container}" if container else g


def path(controller: str, grp: str) -> Path:
    return ROOT / controller / grp


def _write(p: Path, value: str) -> None:
    with contextlib.suppress(OSError):  # a file this kernel lacks (e.g. memsw) is not an error
        p.write_text(value)


def create(grp: str, memory_limit: int | None = None, cpu_limit_millis: int | None = None,
           cpu_request_millis: int | None = None) -> list[str]:
    """Make the group in every controller and set its limits; returns the cgroup.procs paths."""
    procs = []
    for ctrl in CONTROLLERS:
        p = path(ctrl, grp)
        p.mkdir(parents=True, exist_ok=True)
        procs.append(str(p / "cgroup.procs"))
    mem = path("memory", grp)
    if memory_limit:
        _write(mem / "memory.limit_in_bytes", str(memory_limit))
        _write(mem / "memory.memsw.limit_in_bytes", str(memory_limit))  # no swap, as the kubelet
    cpu = path("cpu", grp)
    _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
    if cpu_limit_millis:
        _write(cpu / "cpu.cfs_quota_us", str(max(1000, cpu_limit_millis * CFS_PERIOD_US // 1000)))
    if cpu_request_millis:
        _write(cpu / "cpu.shares", str(max(2, cpu_request_millis * 1024 // 1000)))
    return procs


def read_int(controller: str, grp: str, name: str) -> int | None:
    try:
        return int((path(controller, grp) / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_kv(controller: str, grp: str, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in (path(controller, grp) / name).read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def oom_kills(grp: str) -> int:
    return read_kv("memory", grp, "memory.oom_control").get("oom_kill", 0)


def pids_in(grp: str) -> list[int]:
    try:
        return [int(p) for p in (path("pids", grp) / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def kill_all(grp: str, sig: int = signal.SIGKILL) -> None:
    for pid in pids_in(grp):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def remove(grp: str, timeout: float = 5.0) -> bool:
    """Kill what is left and remove the group (children first) in every controller."""
    deadline = time.monotonic() + timeout
    ok = True
    for ctrl in CONTROLLERS:
        base = path(ctrl, grp)
        if not base.exists():
            continue
        dirs = sorted((d for d in base.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True)
        for d in [*dirs, base]:
            while True:
                for pid in _procs(d):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        ok = False
                        break
                    time.sleep(0.05)
    return ok


def _procs(d: Path) -> list[int]:
    try:
        return [int(p) for p in (d / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def leftovers(cluster: str) -> list[str]:
    return [str(path(c, cluster_group(cluster))) for c in CONTROLLERS if path(c, cluster_group(cluster)).exists()]
