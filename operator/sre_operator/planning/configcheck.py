"""Checks a new NGINX config before the operator writes it into a ConfigMap (patch-configmap),
whoever wrote it: the known-good copy, or a model's answer.

Two checks, both must pass:
1. meaning: every `server host:port` of an `upstream` names a Service of the namespace (short
   name or `name.namespace.svc...`) and one of its ports. `nginx -t` cannot see this (it resolves
   names where the operator runs, not in the cluster), and it is what a broken gateway config
   usually gets wrong;
2. syntax: `nginx -t` on a copy whose upstream hosts are 127.0.0.1 and whose files (pid, temp
   dirs, logs) point into a scratch directory. Without an `nginx` binary, a bracket and statement
   check stands in, and the result says so.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

UPSTREAM_SERVER = re.compile(r"\bserver\s+([A-Za-z0-9_.-]+):(\d+)")
UPSTREAM_BLOCK = re.compile(r"upstream\s+[A-Za-z0-9_.-]+\s*\{([^}]*)\}")
PATH_DIRECTIVES = re.compile(
    r"^(\s*(?:pid|client_body_temp_path|proxy_temp_path|fastcgi_temp_path|uwsgi_temp_path|scgi_temp_path))\s+[^;\s]+",
    re.MULTILINE)
LOG_DIRECTIVES = re.compile(r"^(\s*(?:access_log|error_log))\s+(/[^;\s]+)", re.MULTILINE)
MAX_CONFIG_BYTES = 65536


@dataclass
class Result:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_with: str = "nginx -t"

    def message(self) -> str:
        return "; ".join(self.problems) if self.problems else f"valid ({self.checked_with})"


def is_nginx_config(key: str, value: str) -> bool:
    return key.endswith(".conf") and ("server" in value or "http" in value or "events" in value)


def upstream_problems(config: str, namespace: str, services: dict[str, set[int]]) -> list[str]:
    problems = []
    for block in UPSTREAM_BLOCK.findall(config):
        for host, port in UPSTREAM_SERVER.findall(block):
            name = host
            for suffix in (f".{namespace}.svc.cluster.local", f".{namespace}.svc", f".{namespace}"):
                if host.endswith(suffix):
                    name = host[: -len(suffix)]
                    break
            if "." in name:
                problems.append(f"upstream {host}:{port} is outside namespace {namespace}")
            elif name not in services:
                problems.append(f"upstream {host}:{port}: no Service {name!r} in {namespace}")
            elif int(port) not in services[name]:
                problems.append(f"upstream {host}:{port}: Service {name} serves port(s) "
                                f"{', '.join(map(str, sorted(services[name])))}, not {port}")
    return problems


def _structure_problems(config: str) -> list[str]:
    depth = 0
    for ch in config:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return ["a '}' closes nothing"]
    return [] if depth == 0 else [f"{depth} block(s) not closed"]


def nginx_syntax(config: str, nginx: str | None = None) -> Result:
    nginx = nginx or shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if nginx is None:
        problems = _structure_problems(config)
        return Result(not problems, problems, "bracket check (no nginx binary here)")
    with tempfile.TemporaryDirectory(prefix="sre-nginx-t-") as tmp:
        scratch = Path(tmp)
        copy = UPSTREAM_BLOCK.sub(lambda b: UPSTREAM_SERVER.sub(lambda m: f"server 127.0.0.1:{m.group(2)}", b.group(0)),
                                  config)
        copy = PATH_DIRECTIVES.sub(lambda m: f"{m.group(1)} {scratch}/{m.group(1).strip()}", copy)
        copy = LOG_DIRECTIVES.sub(lambda m: m.group(0) if m.group(2).startswith("/dev/")
                                  else f"{m.group(1)} {scratch}/{Path(m.group(2)).name}", copy)
        (scratch / "nginx.conf").write_text(copy)
        try:
            proc = subprocess.run([nginx, "-t", "-q", "-p", str(scratch), "-e", str(scratch / "error.log"),
                                   "-c", str(scratch / "nginx.conf")], capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Result(False, [f"nginx -t could not run: {exc}"])
        if proc.returncode == 0:
            return Result(True)
        out = (proc.stderr + proc.stdout).replace(str(scratch) + "/", "")
        lines = [ln.split("nginx: ", 1)[-1] for ln in out.splitlines() if "emerg" in ln or "error" in ln.lower()]
        return Result(False, lines[:3] or [out.strip()[:300] or f"nginx -t exited {proc.returncode}"])


def check_nginx_config(config: str, namespace: str, services: dict[str, set[int]],
                       nginx: str | None = None) -> Result:
    if len(config.encode()) > MAX_CONFIG_BYTES:
        return Result(False, [f"config larger than {MAX_CONFIG_BYTES} bytes"])
    problems = upstream_problems(config, namespace, services)
    syntax = nginx_syntax(config, nginx)
    return Result(not problems and syntax.ok, problems + syntax.problems, syntax.checked_with)
