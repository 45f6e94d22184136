"""Checks a new NGINX config before the operator writes it into a ConfigMap (patch-configmap),
whoever wrote it: the known-good copy, or a model's answer.

Three checks, all must pass:
1. an allowlist: only the directives the shop's gateway config uses, in the blocks it uses them in;
   `proxy_pass` only to an `upstream` the config declares; logs only to stdout/stderr or the
   gateway's log volume; pid and temp files only under /tmp. A config that passes `nginx -t` can
   still serve the host's files (`alias /; autoindex on;`) or send requests anywhere
   (`proxy_pass http://<any address>`): a model's answer or a forged "known-good" copy must not;
2. meaning: every `server host:port` of an `upstream` names a Service of the namespace (short
   name or `name.namespace.svc...`) and one of its ports. `nginx -t` cannot see this (it resolves
   names where the operator runs, not in the cluster), and it is what a broken gateway config
   usually gets wrong;
3. syntax: `nginx -t` on a copy whose upstream hosts are 127.0.0.1 and whose files (pid, temp
   dirs, logs) point into a scratch directory. Without an `nginx` binary, a bracket and statement
   check stands in, and the result says so. What `nginx -t` prints is never passed on (it can quote
   a file's contents): only the line it complains about.
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

# Directive → the blocks it may appear in ("" is the top level): exactly what the gateway uses.
ALLOWED: dict[str, frozenset[str]] = {name: frozenset(blocks) for name, blocks in {
    "worker_processes": [""], "pid": [""], "error_log": ["", "http", "server", "location"], "events": [""],
    "worker_connections": ["events"], "http": [""],
    "client_body_temp_path": ["http"], "proxy_temp_path": ["http"], "fastcgi_temp_path": ["http"],
    "uwsgi_temp_path": ["http"], "scgi_temp_path": ["http"],
    "default_type": ["http", "server", "location"], "sendfile": ["http"], "keepalive_timeout": ["http"],
    "server_tokens": ["http"], "log_format": ["http"], "access_log": ["http", "server", "location"],
    "upstream": ["http"], "server": ["http", "upstream"], "keepalive": ["upstream"], "keepalive_time": ["upstream"],
"proxy_http_version": ["http", "server", "location"],
    "proxy_set_header": ["http", "server", "location"], "proxy_connect_timeout": ["http", "server", "location"],
    "proxy_send_timeout": ["http", "server", "location"], "proxy_read_timeout": ["http", "server", "location"],
    "proxy_next_upstream": ["http", "server", "location"], "proxy_next_upstream_tries": ["http", "server", "location"],
    "proxy_intercept_errors": ["http", "server", "location"], "listen": ["server"], "location": ["server"],
    "return": ["server", "location"], "proxy_pass": ["location"], "error_page": ["http", "server", "location"],
    "limit_except": ["location"], "deny": ["limit_except"],
}.items()}
LOG_TARGETS = ("stderr", "off", "/dev/stdout", "/dev/stderr")
LOG_DIR = "/var/log/gateway/"  # the emptyDir the gateway shares with its log exporter
RUN_DIR = "/tmp/"  # noqa: S108 - a path the config may name, never one this process writes
PROXY_PASS = re.compile(r"^http://([A-Za-z0-9_-]+)(/[A-Za-z0-9_./-]*)?$")


@dataclass
class Result:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_with: str = "nginx -t"

    def message(self) -> str:
        return "; ".join(self.problems) if self.problems else f"valid ({self.checked_with})"


def tokens(config: str) -> list[str]:
    """NGINX's lexer, as far as the allowlist needs it: words (quotes kept together), `{`, `}`, `;`;
    comments dropped. Raises ValueError on an unterminated quote."""
    out: list[str] = []
    i, n = 0, len(config)
    while i < n:
        ch = config[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and config[i] != "\n":
                i += 1
        elif ch in "{};":
            out.append(ch)
            i += 1
        elif ch in "'\"":
            end = i + 1
            while end < n and config[end] != ch:
                end += 2 if config[end] == "\\" else 1
            if end >= n:
                raise ValueError("a quoted string is not closed")
            out.append(config[i:end + 1])
            i = end + 1
        else:
            start = i
            while i < n and not config[i].isspace() and config[i] not in "{};#":
                i += 1
            out.append(config[start:i])
    return out


def _unquote(word: str) -> str:
    return word[1:-1] if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"" else word


def _directive_problem(name: str, args: list[str], block: str, upstreams: set[str]) -> str | None:
    """Why one directive (in `block`, "" at the top) is outside the allowlist; None when it is not."""
    if name not in ALLOWED:
        return f"directive {name!r} is not allowed in the gateway config"
    if block not in ALLOWED[name]:
        return f"directive {name!r} is not allowed in {block or 'the top level'}"
    if name == "proxy_pass":
        m = PROXY_PASS.match(args[0] if args else "")
        if not m or m.group(1) not in upstreams:
            return f"proxy_pass {' '.join(args)!r}: only http://<an upstream of this config>"
    elif name in ("access_log", "error_log") and args and not (
            args[0] in LOG_TARGETS or (args[0].startswith(LOG_DIR) and ".." not in args[0])):
        return f"{name} {args[0]!r}: only stdout, stderr or {LOG_DIR}"
    elif (name == "pid" or name.endswith("_temp_path")) and (
            not args or not args[0].startswith(RUN_DIR) or ".." in args[0]):
        return f"{name} {' '.join(args)!r}: only under {RUN_DIR}"
    return None


def allowlist_problems(config: str) -> list[str]:
    """Directives outside the allowlist, or allowed ones pointing somewhere they must not."""
    try:
        words = tokens(config)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    stack: list[str] = [""]
    upstreams = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "upstream"}
    statement: list[str] = []
    for word in words:
        if word not in "{};":
            statement.append(word)
            continue
        if word == "}":
            if len(stack) == 1:
                return [*problems, "a '}' closes nothing"]
            stack.pop()
            continue
        if not statement:
            problems.append(f"an empty statement before {word!r}")
            continue
        name, args, block = statement[0], [_unquote(a) for a in statement[1:]], stack[-1]
        statement = []
        problem = _directive_problem(name, args, block, upstreams)
        if problem:
            problems.append(problem)
        if word == "{":
            stack.append(name)
    if statement:
        problems.append(f"a statement is not terminated: {' '.join(statement)[:80]!r}")
    if len(stack) != 1:
        problems.append(f"{len(stack) - 1} block(s) not closed")
    return list(dict.fromkeys(problems))[:5]


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
        # Never pass on what nginx printed (it can quote a file's contents): only where it complained.
        where = sorted({int(m) for m in re.findall(r"nginx\.conf:(\d+)", proc.stderr + proc.stdout)})
        at = f" at line {', '.join(map(str, where[:3]))}" if where else ""
        return Result(False, [f"nginx -t rejected the config{at}"])


def check_nginx_config(config: str, namespace: str, services: dict[str, set[int]],
                       nginx: str | None = None) -> Result:
    if len(config.encode()) > MAX_CONFIG_BYTES:
        return Result(False, [f"config larger than {MAX_CONFIG_BYTES} bytes"])
    problems = allowlist_problems(config)
    if problems:  # nothing outside the allowlist is ever handed to nginx, not even to test it
        return Result(False, problems, "allowlist")
    problems = upstream_problems(config, namespace, services)
    syntax = nginx_syntax(config, nginx)
    return Result(not problems and syntax.ok, problems + syntax.problems, syntax.checked_with)
