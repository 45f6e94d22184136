"""Packaging (issue 20): every third-party module the installed packages import is declared in
pyproject.toml's dependencies (an undeclared one works here only because something else pulled it
in), and the operator's image copies the operator and the dashboard it also serves, not the shop."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The source folders pyproject installs ([tool.setuptools.packages.find]), and their own packages.
SOURCES = {"operator": "sre_operator", "dashboard": "sre_dashboard", "services": "shop", "cluster": "localkube"}


def imported(package_dir: Path) -> dict[str, str]:
    """Top-level modules imported anywhere under `package_dir` (absolute imports), → a file that does."""
    out: dict[str, str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if path.name == "testing.py":  # pytest fixtures the test tiers share: the `test` extra's
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                out.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return out


def declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}


@pytest.mark.parametrize("folder", sorted(SOURCES))
def test_every_third_party_import_is_a_declared_dependency(folder: str) -> None:
    ours = set(SOURCES.values())
    dists = packages_distributions()
    undeclared = {}
    for module, where in imported(ROOT / folder / SOURCES[folder]).items():
        if module in sys.stdlib_module_names or module in ours or module == "__future__":
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        assert names, f"{module} (imported in {where}) belongs to no installed distribution"
        if not names & declared():
            undeclared[module] = (sorted(names), where)
    assert undeclared == {}, f"add to [project].dependencies: {undeclared}"


def test_the_operator_image_ships_the_operator_and_the_dashboard_not_the_shop() -> None:
    text = (ROOT / "operator/Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", text, re.MULTILINE)
    sources = {s for line in copied for s in line.split()}
    assert {"operator/sre_operator", "dashboard/sre_dashboard"} <= sources  # `sre-operator dashboard` too
    assert not [s for s in sources if s.startswith(("services", "cluster"))], sources
    # What the image ships imports nothing it leaves out.
    for folder in ("operator", "dashboard"):
        mods = imported(ROOT / folder / SOURCES[folder])
        assert not {"shop", "localkube"} & set(mods), folder
