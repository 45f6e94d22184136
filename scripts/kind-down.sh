#!/usr/bin/env bash
# make kind-down: delete the kind cluster made by kind-up.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${KIND:-$PWD/bin/kind}
[ -x "$KIND" ] || KIND=$(command -v kind || true)
[ -n "$KIND" ] || { echo "kind-down: kind is not installed (./bin/kind is fetched by make kind-up)" >&2; exit 1; }
"$KIND" delete cluster --name sre-operator
