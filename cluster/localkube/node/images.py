"""Images → programs on this machine, from `images.yaml` (the one documented map)."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..binaries import MissingBinary, find_binary

MAP_FILE = Path(__file__).with_name("images.yaml")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BIN_DIR = "/opt/localkube/bin"


class ImageError(LookupError):
    """The image cannot be 'pulled': no program is mapped to it."""


@dataclass
class Image:
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    working_dir: str = ""
    stop_signal: str = "SIGTERM"
    binaries: dict[str, str] = field(default_factory=dict)  # path in the container → host path


def repository(image: str) -> str:
    """`docker.io/library/nginx:1.27@sha256:…` → `nginx`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, rest = parts[0], parts[1:]
        if registry in ("docker.io", "index.docker.io"):
            if rest[0] == "library":
                rest = rest[1:]
            return "/".join(rest)
        return "/".join(parts)
    return name


def load_map(path: Path = MAP_FILE) -> dict[str, dict]:
    return yaml.safe_load(path.read_text()) or {}


def resolve(image: str, table: dict[str, dict] | None = None, python: str = sys.executable) -> Image:
    table = load_map() if table is None else table
    repo = repository(image)
    entry = table.get(repo)
    if entry is None:
        # registry-qualified names of mapped images, e.g. ghcr.io/… is not docker.io: only the bare name counts
        raise ImageError(f'Failed to pull image "{image}": no program is mapped to "{repo}" '
                         f"in {MAP_FILE.name} (the process node pulls nothing)")
    bins: dict[str, str] = {}

    def sub(arg: str) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key == "python":
                return python
            if key.startswith("bin:"):
                name = key[4:]
                try:
                    host = str(find_binary(name))
                except MissingBinary as exc:
                    raise ImageError(f'Failed to pull image "{image}": {exc}') from exc
                bins[f"{BIN_DIR}/{name}"] = host
                return f"{BIN_DIR}/{name}"
            return m.group(0)
        return re.sub(r"\{(python|bin:[a-z0-9_-]+)\}", one, arg)

    env = {"PATH": DEFAULT_PATH, **{k: sub(str(v)) for k, v in (entry.get("env") or {}).items()}}
    return Image(entrypoint=[sub(a) for a in entry.get("entrypoint") or []],
                 cmd=[sub(a) for a in entry.get("cmd") or []], env=env,
                 working_dir=entry.get("workingDir", ""), binaries=bins,
                 stop_signal=entry.get("stopSignal", "SIGTERM"))


def argv(img: Image, command: list[str] | None, args: list[str] | None) -> list[str]:
    """Docker's rule: command replaces the entrypoint (and drops the image's cmd); args replace cmd."""
    if command:
        return list(command) + list(args or [])
    return img.entrypoint + (list(args) if args else img.cmd)
