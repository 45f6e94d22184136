"""Liveness, readiness and startup probes: HTTP GET, TCP connect and exec, with the kubelet's
period, timeout and success/failure thresholds."""
from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass


def resolve_port(port: int | str, container: dict) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} is not a port of container {container['name']!r}")


def run_in_container(enter: list[str], cmd: list[str], timeout: float) -> tuple[int, bytes]:
    """Run `cmd` through `enter` (the nsexec prefix of a running container); returns its exit code
    and output. On timeout the whole process group goes, the part inside the container too."""
    proc = subprocess.Popen([*enter, *cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out


def run_probe(probe: dict, container: dict, pod_ip: str, enter: list[str] | None) -> tuple[bool, str]:
    """One attempt; returns (success, message). `enter` runs a command inside the container."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            h = probe["httpGet"]
            port = resolve_port(h["port"], container)
            host = h.get("host") or pod_ip
            if h.get("scheme", "HTTP").upper() == "HTTPS":
                import ssl
                # Like the kubelet, an HTTPS probe does not verify the container's certificate.
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=ctx)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {"User-Agent": "kube-probe/1.36", **{x["name"]: x["value"] for x in h.get("httpHeaders") or []}}
            try:
                conn.request("GET", h.get("path", "/"), headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
            ok = 200 <= status < 400
            return ok, "" if ok else f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in probe:
            t = probe["tcpSocket"]
            port = resolve_port(t["port"], container)
            with socket.create_connection((t.get("host") or pod_ip, port), timeout=timeout):
                return True, ""
        if "exec" in probe:
            if enter is None:
                return False, "container is not running"
            code, output = run_in_container(enter, list(probe["exec"]["command"]), timeout)
            ok = code == 0
            return ok, "" if ok else f"exec probe failed (exit {code}): {output[-200:]!r}"
        if "grpc" in probe:
            return False, "gRPC probes are not supported by the process node"
    except (OSError, subprocess.TimeoutExpired, ValueError, http.client.HTTPException) as exc:
        return False, f"probe failed: {exc}"
    return True, ""


@dataclass
class ProbeState:
    """The kubelet's worker for one probe of one container attempt."""
    kind: str  # liveness | readiness | startup
    probe: dict
    started: float
    result: bool | None = None
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        self.next_at = self.started + float(self.probe.get("initialDelaySeconds", 0))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, message: str, now: float) -> bool | None:
        """Count an attempt; returns the new result when a threshold is crossed, else None."""
        self.next_at = now + float(self.probe.get("periodSeconds", 10))
        self.message = message
        if ok:
            self.successes += 1
            self.failures = 0
            need = int(self.probe.get("successThreshold", 1))
            if self.successes >= need and self.result is not True:
                self.result = True
                return True
        else:
            self.failures += 1
            self.successes = 0
            need = int(self.probe.get("failureThreshold", 3))
            if self.failures >= need and self.result is not False:
                self.result = False
                return False
        return None


def now() -> float:
    return time.monotonic()
