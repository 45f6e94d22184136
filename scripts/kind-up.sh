#!/usr/bin/env bash
# make kind-up: a kind cluster with the shop and its observability, on a machine with Docker
# (LLM_MODEL_URL=<a GGUF's URL>: also the local model, charts/llm, which the operator then plans with).
# Pinned kind/helm/kubectl are fetched into ./bin when missing (kubebuilder style), so Docker is the
# only prerequisite. Idempotent: run it again to rebuild images and upgrade the charts.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_VERSION=v0.30.0
HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.36.4
CLUSTER=sre-operator
TAG=0.1.0
SHOP_NS=shop
OBS_NS=observability
BIN=$PWD/bin
OS=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$(uname -m)" in x86_64) ARCH=amd64 ;; aarch64|arm64) ARCH=arm64 ;; *) echo "unsupported arch $(uname -m)" >&2; exit 1 ;; esac

command -v docker >/dev/null || { echo "kind-up: Docker is required (or use 'make cluster-up' as root without Docker)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "kind-up: the Docker engine is not reachable (is it running?)" >&2; exit 1; }

mkdir -p "$BIN"
fetch() { # name version url
  local name=$1 version=$2 url=$3 dest="$BIN/$1-$2"
  if [ ! -x "$dest" ]; then
    echo "kind-up: fetching $name $version"
    curl -fsSL --retry 3 -o "$dest.tmp" "$url"
    chmod +x "$dest.tmp" && mv "$dest.tmp" "$dest"
  fi
  ln -sf "$name-$version" "$BIN/$name"
}
fetch kind "$KIND_VERSION" "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$OS-$ARCH"
fetch kubectl "$KUBECTL_VERSION" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$OS/$ARCH/kubectl"
if [ ! -x "$BIN/helm-$HELM_VERSION" ]; then
  echo "kind-up: fetching helm $HELM_VERSION"
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 "https://get.helm.sh/helm-$HELM_VERSION-$OS-$ARCH.tar.gz" | tar -xz -C "$tmp"
  mv "$tmp/$OS-$ARCH/helm" "$BIN/helm-$HELM_VERSION" && rm -rf "$tmp"
fi
ln -sf "helm-$HELM_VERSION" "$BIN/helm"
KIND=$BIN/kind KUBECTL=$BIN/kubectl HELM=$BIN/helm

if ! "$KIND" get clusters | grep -qx "$CLUSTER"; then
  "$KIND" create cluster --config kind-config.yaml --name "$CLUSTER" --wait 120s
fi
"$KUBECTL" config use-context "kind-$CLUSTER" >/dev/null

for svc in order product payment gateway_exporter traffic; do
  image="sre-operator/shop-${svc//_/-}:$TAG"
  docker build -q -f services/Dockerfile --build-arg "SERVICE=$svc" -t "$image" .
  "$KIND" load docker-image "$image" --name "$CLUSTER"
done

docker build -q -f operator/Dockerfile -t "sre-operator/operator:$TAG" .
"$KIND" load docker-image "sre-operator/operator:$TAG" --name "$CLUSTER"

"$KUBECTL" apply --server-side -f crds/
"$KUBECTL" wait --for=condition=Established crd --all --timeout=60s
"$HELM" upgrade --install observability charts/observability -n "$OBS_NS" --create-namespace --wait --timeout 5m
"$HELM" upgrade --install shop charts/shop -n "$SHOP_NS" --create-namespace --wait --timeout 5m \
  --set otlpEndpoint="http://jaeger.$OBS_NS:4318" --set traffic.enabled=true
"$KUBECTL" -n "$SHOP_NS" rollout status deploy --timeout=180s

# The local model (charts/llm, upstream llama.cpp server image) when LLM_MODEL_URL names a GGUF to download,
# e.g. https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
LLM_VALUES=()
if [ -n "${LLM_MODEL_URL:-}" ]; then
  "$HELM" upgrade --install llm charts/llm -n llm --create-namespace --wait --timeout 15m \
    --set model.url="$LLM_MODEL_URL"
  "$KUBECTL" create namespace sre-operator --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  # The operator's client needs a key; llama-server asks none. Sent on stdin, never on a command line.
  printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"sre-operator-llm","namespace":"sre-operator"},"stringData":{"api-key":"local"}}' \
    | "$KUBECTL" apply -f - >/dev/null
  LLM_VALUES=(--set llm.existingSecret=sre-operator-llm --set llm.baseUrl=http://llm.llm:8080/v1
              --set llm.model=local --set llm.timeoutSeconds=300)
fi

"$HELM" upgrade --install sre-operator charts/sre-operator -n sre-operator --create-namespace --wait --timeout 5m \
  --set "watchNamespaces={$SHOP_NS}" --set prometheusUrl="http://prometheus.$OBS_NS:9090" "${LLM_VALUES[@]}"

cat <<URLS

kind cluster '$CLUSTER' is ready (kubectl context kind-$CLUSTER):
  shop gateway  http://localhost/api/products   (orders: curl -X POST http://localhost/api/orders -H 'Content-Type: application/json' -d '{"product_id":"P001","qty":1,"customer_name":"Demo User"}')
  Prometheus    http://localhost:9090
  Jaeger        http://localhost:16686
  dashboard     http://localhost:8888   (once the dashboard is installed)

Break something and watch the operator fix it:
  kubectl apply -n $SHOP_NS -f scenarios/payment-crash.yaml
  kubectl get incidents -n $SHOP_NS -w
URLS
