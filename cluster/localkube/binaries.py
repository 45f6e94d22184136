"""Where the cluster's binaries live: one cache dir per component and version under
`~/.cache/sre-operator/` (override with `SRE_OPERATOR_CACHE`), or `KUBEBUILDER_ASSETS` for etcd,
kube-apiserver and kubectl (envtest's convention). A dir counts only once its `.complete` marker,
written last by provisioning, lists the binary."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import versions

ENVTEST_BINARIES = ("etcd", "kube-apiserver", "kubectl")


def cache_root() -> Path:
    return Path(os.environ.get("SRE_OPERATOR_CACHE", Path.home() / ".cache" / "sre-operator"))


@dataclass(frozen=True)
class Component:
    """A cache dir of executables (`binaries`) and plain files (`data`, e.g. a model), all listed in its marker."""
    name: str
    version: str
    binaries: tuple[str, ...]
    data: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    def complete(self) -> bool:
        marker = self.dir / ".complete"
        if not marker.is_file():
            return False
        listed = set(marker.read_text().split())
        return (all(b in listed and os.access(self.dir / b, os.X_OK) for b in self.binaries)
                and all(d in listed and (self.dir / d).is_file() for d in self.data))


KUBERNETES = Component("kubernetes", f"{versions.KUBERNETES}-etcd-{versions.ETCD}",
                       (*versions.KUBE_BINARIES, "etcd"))
HELM = Component("helm", versions.HELM, ("helm",))
COREDNS = Component("coredns", versions.COREDNS, ("coredns",))
KWOK = Component("kwok", versions.KWOK, ("kwok",))
JAEGER = Component("jaeger", versions.JAEGER_MODULE, ("jaeger",))
PROMETHEUS = Component("prometheus", versions.PROMETHEUS_MODULE, ("prometheus",))
LLAMA_SERVER = Component("llama-server", versions.LLAMA_CPP, ("llama-server",))
MODEL_FILE = "model.gguf"
MODEL_1_5B = Component("qwen2.5-coder-1.5b", versions.QWEN_CODER_1_5B.version, (), (MODEL_FILE,))
MODEL_0_5B = Component("qwen2.5-coder-0.5b", versions.QWEN_CODER_0_5B.version, (), (MODEL_FILE,))
COMPONENTS = (KUBERNETES, HELM, COREDNS, KWOK, JAEGER, PROMETHEUS, LLAMA_SERVER, MODEL_1_5B, MODEL_0_5B)
_BY_BINARY = {b: c for c in COMPONENTS for b in c.binaries}


class MissingBinary(FileNotFoundError):
    pass


def find_binary(name: str) -> Path:
    """The path of a provisioned binary, or a clear error saying how to get it."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and name in ENVTEST_BINARIES and os.access(Path(assets) / name, os.X_OK):
        return Path(assets) / name
    comp = _BY_BINARY.get(name)
    if comp is None:
        raise MissingBinary(f"{name!r} is not one of the cluster's binaries ({', '.join(sorted(_BY_BINARY))})")
    if not comp.complete():
        raise MissingBinary(f"{name} {comp.version} is not provisioned in {comp.dir}: run `make cluster-bin`")
    return comp.dir / name


def find_model(comp: Component) -> Path:
    """The provisioned GGUF of a model component, or a clear error saying how to get it."""
    if not comp.complete():
        raise MissingBinary(f"model {comp.name} {comp.version} is not provisioned in {comp.dir}: "
                            "run `make cluster-bin`")
    return comp.dir / MODEL_FILE
