"""Start, watch and stop the shop's processes on loopback: used by `shop.localrun` and the tests."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .gateway import render_config

NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedProcess:
    """A child process with its output in a log file, a health URL, and a clean stop."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 health_url: str | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.health_url = health_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout: float = 30.0) -> ManagedProcess:
        if not self.health_url:
            raise ValueError(f"{self.name} has no health URL")
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited with {self.proc and self.proc.returncode}; "
                                   f"log:\n{self.log_tail()}")
            try:
                resp = httpx.get(self.health_url, timeout=1.0)
                if resp.status_code == 200:
                    return self
                last = resp.status_code
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy at {self.health_url} after {timeout}s ({last!r}); "
                           f"log:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive or self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no shutdown: a crash, as the tests of recovery need one."""
        if self.alive and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def service(name: str, port: int, data_dir: Path, **env: str) -> ManagedProcess:
    """One shop service as a real uvicorn process on 127.0.0.1:port."""
    full_env = {"SHOP_HOST": "127.0.0.1", "SHOP_PORT": str(port),
                "SHOP_DB_PATH": str(data_dir / f"{name}.db"), **env}
    return ManagedProcess(name, [sys.executable, "-m", f"shop.{name}"], data_dir / "logs" / f"{name}.log",
                          full_env, f"http://127.0.0.1:{port}/health")


def gateway(port: int, work_dir: Path, *, order: str, product: str) -> ManagedProcess:
    """NGINX (Debian's binary) with the rendered gateway config, on 127.0.0.1:port."""
    work_dir.mkdir(parents=True, exist_ok=True)
    conf = work_dir / "nginx.conf"
    conf.write_text(
        render_config(
            listen=f"127.0.0.1:{port}",
            run_dir=str(work_dir),
            order=order,
            product=product,
            access_log=str(work_dir / "access.json"),
        )
    )
    argv = [NGINX, "-e", "/dev/stderr", "-p", str(work_dir), "-c", str(conf), "-g", "daemon off;"]
    return ManagedProcess("gateway", argv, work_dir / "nginx.log", None, f"http://127.0.0.1:{port}/nginx-health")


JAEGER_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
extensions:
  healthcheckv2: {use_v2: true, http: {endpoint: "127.0.0.1:@HEALTH@"}}
  jaeger_query:
    storage: {traces: memstore}
    http: {endpoint: "127.0.0.1:@QUERY@"}
    grpc: {endpoint: "127.0.0.1:@GRPC@"}
  jaeger_storage:
    backends:
      memstore: {memory: {max_traces: 100000}}
receivers:
  otlp:
    protocols:
      http: {endpoint: "127.0.0.1:@OTLP@"}
processors:
  batch: {timeout: 200ms}
exporters:
  jaeger_storage_exporter: {trace_storage: memstore}
"""


def jaeger(binary: str, work_dir: Path) -> tuple[ManagedProcess, str, str]:
    """Jaeger v2 (all in one, in-memory) on free loopback ports: (process, query URL, OTLP/HTTP URL)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    ports = {k: free_port() for k in ("HEALTH", "QUERY", "GRPC", "OTLP")}
    conf = JAEGER_CONFIG
    for k, v in ports.items():
        conf = conf.replace(f"@{k}@", str(v))
    (work_dir / "jaeger.yaml").write_text(conf)
    proc = ManagedProcess("jaeger", [binary, "--config", str(work_dir / "jaeger.yaml")], work_dir / "jaeger.log",
                          None, f"http://127.0.0.1:{ports['HEALTH']}/status")
    return proc, f"http://127.0.0.1:{ports['QUERY']}", f"http://127.0.0.1:{ports['OTLP']}"
