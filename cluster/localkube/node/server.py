"""The kubelet's HTTPS endpoints on the node's address, port 10250 (clients need a certificate from
the cluster's CA, as the API server's kubelet client has):

- `/healthz`
- `/containerLogs/NS/POD/CONTAINER` with `follow`, `previous`, `tailLines`, `sinceSeconds`,
  `timestamps`, `limitBytes` (what `kubectl logs` reaches through the API server)
- `/metrics/cadvisor`: cAdvisor's metric names per container and pod, read from the cgroups
- `/pods`: the pods this node runs
"""
from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlparse

from . import cgroups

if TYPE_CHECKING:
    from .agent import Agent
    from .podworker import Container, PodWorker


def parse_cri_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """`TIME STREAM TAG MSG` → (time, stream, full, msg)."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    msg = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), parts[1].decode(), parts[2] == b"F", msg


def _ts(value: str) -> float:
    try:
        return dt.datetime.strptime(value[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return 0.0


def render(lines: list[bytes], timestamps: bool, since: float | None) -> bytes:
    out = []
    pending = b""
    for raw in lines:
        parsed = parse_cri_line(raw)
        if parsed is None:
            continue
        ts, _stream, full, msg = parsed
        if since is not None and _ts(ts) < since:
            continue
        pending += msg
        if full:
            out.append((ts.encode() + b" " if timestamps else b"") + pending + b"\n")
            pending = b""
    return b"".join(out)


def read_tail(path: Path, tail: int | None) -> tuple[list[bytes], int]:
    """The log's lines (the last `tail` if given) and the offset where reading stopped."""
    with open(path, "rb") as fh:
        if tail is None:
            data = fh.read()
            lines = data.splitlines(keepends=True)
        else:
            lines = list(deque(fh, maxlen=tail)) if tail > 0 else []
            fh.seek(0, os.SEEK_END)
        end = fh.tell()
    if lines and not lines[-1].endswith(b"\n"):
        end -= len(lines.pop())
    return lines, end


class Handler(BaseHTTPRequestHandler):
    server_version = "localkube-kubelet/1.36"
    protocol_version = "HTTP/1.0"
    agent: Agent

    def log_message(self, fmt: str, *args: object) -> None:  # quiet: the agent log is for pods
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            if parts == ["healthz"]:
                self._send(200, b"ok")
            elif parts[0] == "containerLogs" and len(parts) == 4:
                self._logs(parts[1], parts[2], parts[3], q)
            elif parts == ["metrics", "cadvisor"]:
                self._send(200, cadvisor_metrics(self.agent).encode(), "text/plain; version=0.0.4")
            elif parts == ["pods"]:
                with self.agent.lock:
                    pods = [w.pod for w in self.agent.workers.values() if not w.finished]
                self._send(200, json.dumps({"kind": "PodList", "apiVersion": "v1", "items": pods}).encode(),
                           "application/json")
            elif parts[0] in ("exec", "attach", "portForward", "run"):
                self._send(501, b"exec, attach and port-forward are not supported by the process node\n")
            else:
                self._send(404, b"404 page not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _logs(self, ns: str, pod: str, ctr: str, q: dict[str, str]) -> None:
        w = self.agent.worker_for(ns, pod)
        if w is None or ctr not in w.containers:
            self._send(404, f'container "{ctr}" in pod "{pod}" is not available\n'.encode())
            return
        c = w.containers[ctr]
        previous = q.get("previous") in ("true", "1")
        path = c.log_path(previous)
        if path is None or not path.exists():
            what = "previous terminated container" if previous else "container"
            self._send(400, f'{what} "{ctr}" in pod "{pod}" not found\n'.encode())
            return
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        since = time.time() - int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        if q.get("sinceTime"):
            since = _ts(q["sinceTime"].replace("Z", ".000000"))
        stamps = q.get("timestamps") in ("true", "1")
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        lines, offset = read_tail(path, tail)
        body = render(lines, stamps, since)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        sent = self._write_limited(body, limit, 0)
        if q.get("follow") not in ("true", "1") or previous:
            return
        attempt = path.name.split(".")[0]
        exit_file = path.with_name(f"{attempt}.exit.json")
        buf = b""
        while sent is not None:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            if chunk:
                offset += len(chunk)
                buf += chunk
                complete, _, buf = buf.rpartition(b"\n")
                if complete:
                    sent = self._write_limited(render((complete + b"\n").splitlines(keepends=True), stamps, None),
                                               limit, sent)
                    continue
            if exit_file.exists() or w.finished:
                return
            time.sleep(0.2)

    def _write_limited(self, data: bytes, limit: int | None, sent: int) -> int | None:
        """Write within limitBytes; None once the limit is reached."""
        if limit is not None:
            room = limit - sent
            if room <= 0:
                return None
            data = data[:room]
        self.wfile.write(data)
        self.wfile.flush()
        sent += len(data)
        return None if limit is not None and sent >= limit else sent


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


METRICS = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in seconds."),
    "container_memory_usage_bytes": (
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    "container_memory_working_set_bytes": ("gauge", "Current working set in bytes."),
    "container_memory_rss": ("gauge", "Size of RSS in bytes."),
    "container_memory_cache": ("gauge", "Number of bytes of page cache memory."),
    "container_memory_failcnt": ("counter", "Number of memory usage hits limits"),
    "container_oom_events_total": ("counter", "Count of out of memory events observed for the container"),
    "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
    "container_spec_cpu_quota": ("gauge", "CPU quota of the container."),
    "container_spec_cpu_period": ("gauge", "CPU period of the container."),
    "container_spec_cpu_shares": ("gauge", "CPU share of the container."),
    "container_cpu_cfs_periods_total": ("counter", "Number of elapsed enforcement period intervals."),
    "container_cpu_cfs_throttled_periods_total": ("counter", "Number of throttled period intervals."),
    "container_cpu_cfs_throttled_seconds_total": (
        "counter",
        "Total time duration the container has been throttled.",
    ),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds."),
    "container_last_seen": ("gauge", "Last time a container was seen by the exporter"),
}
UNLIMITED = 1 << 62


def _group_samples(grp: str) -> dict[str, float]:
    usage = cgroups.read_int("memory", grp, "memory.usage_in_bytes")
    if usage is None:
        return {}
    stat = cgroups.read_kv("memory", grp, "memory.stat")
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    limit = cgroups.read_int("memory", grp, "memory.limit_in_bytes") or 0
    cpu = cgroups.read_kv("cpu", grp, "cpu.stat")
    quota = cgroups.read_int("cpu", grp, "cpu.cfs_quota_us") or -1
    return {
        "container_cpu_usage_seconds_total": (cgroups.read_int("cpuacct", grp, "cpuacct.usage") or 0) / 1e9,
        "container_memory_usage_bytes": usage,
        "container_memory_working_set_bytes": max(0, usage - inactive),
        "container_memory_rss": stat.get("total_rss", stat.get("rss", 0)),
        "container_memory_cache": stat.get("total_cache", stat.get("cache", 0)),
        "container_memory_failcnt": cgroups.read_int("memory", grp, "memory.failcnt") or 0,
        "container_oom_events_total": cgroups.oom_kills(grp),
        "container_spec_memory_limit_bytes": 0 if limit >= UNLIMITED else limit,
        "container_spec_cpu_quota": max(quota, 0),
        "container_spec_cpu_period": cgroups.read_int("cpu", grp, "cpu.cfs_period_us") or 0,
        "container_spec_cpu_shares": cgroups.read_int("cpu", grp, "cpu.shares") or 0,
        "container_cpu_cfs_periods_total": cpu.get("nr_periods", 0),
        "container_cpu_cfs_throttled_periods_total": cpu.get("nr_throttled", 0),
        "container_cpu_cfs_throttled_seconds_total": cpu.get("throttled_time", 0) / 1e9,
    }


def cadvisor_metrics(agent: Agent) -> str:
    samples: dict[str, list[str]] = {m: [] for m in METRICS}
    now = time.time()
    with agent.lock:
        workers: list[PodWorker] = [w for w in agent.workers.values() if not w.finished]
    for w in workers:
        pod_grp = cgroups.group(agent.cluster, w.uid)
        entries: list[tuple[str, str, Container | None]] = [("", pod_grp, None)]
        entries += [(c.name, cgroups.group(agent.cluster, w.uid, c.name), c) for c in w.containers.values()
                    if c.running]
        for name, grp, c in entries:
            values = _group_samples(grp)
            if not values:
                continue
            labels = {"container": name, "id": f"/{grp}", "image": c.spec["image"] if c else "",
                      "name": f"{w.uid[:8]}-{name}" if name else "", "namespace": w.ns, "pod": w.name_}
            if c and c.running:
                values["container_start_time_seconds"] = _ts(c.running["startedAt"].replace("000Z", ""))
            values["container_last_seen"] = now
            lab = _labels(**labels)
            for metric, value in values.items():
                samples[metric].append(f"{metric}{lab} {value:.9g}")
    out = []
    for metric, lines in samples.items():
        kind, help_ = METRICS[metric]
        out += [f"# HELP {metric} {help_}", f"# TYPE {metric} {kind}", *lines]
    cores = os.cpu_count() or 1
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    out += ["# HELP machine_cpu_cores Number of logical CPU cores.", "# TYPE machine_cpu_cores gauge",
            f"machine_cpu_cores {cores}", "# HELP machine_memory_bytes Amount of memory installed on the machine.",
            "# TYPE machine_memory_bytes gauge", f"machine_memory_bytes {mem}"]
    return "\n".join(out) + "\n"


def serve(agent: Agent, host: str, port: int, serving: tuple[Path, Path]) -> ThreadingHTTPServer:
    handler = type("KubeletHandler", (Handler,), {"agent": agent})
    srv = ThreadingHTTPServer((host, port), handler)
    srv.daemon_threads = True
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(agent.ca_path))
    ctx.load_cert_chain(str(serving[0]), str(serving[1]))
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv
