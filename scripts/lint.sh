#!/usr/bin/env bash
# The quality gate (`make lint`, and the first step of `make test`). Runs every tool, even after one
# fails, then names the ones that failed. Their configuration is in pyproject.toml: [tool.ruff],
# [tool.mypy], [tool.importlinter].
#   ruff           every package: services cluster operator dashboard scenarios bench scripts tests
#   mypy           --strict over the operator and the dashboard
#   import-linter  the operator's layers and which of them may use kubernetes, openai, requests, kopf, ...
#   hadolint, helm lint (the unit tests named *lint*)
# Extra arguments go to pytest (make lint PYTEST_ARGS=...).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

VENV=${VENV:-.venv}
PY=${PY:-$VENV/bin/python}
PACKAGES=(services cluster operator dashboard scenarios bench scripts tests)

failed=()
step() {
  local name=$1
  shift
  echo "== lint: ${name}: $*"
  if "$@"; then
    echo "== lint: ${name}: passed"
  else
    echo "== lint: ${name}: FAILED" >&2
    failed+=("$name")
  fi
}

step ruff "$PY" -m ruff check "${PACKAGES[@]}"
step mypy "$PY" -m mypy
step import-linter "$VENV/bin/lint-imports"
step "hadolint+helm-lint" "$PY" -m pytest tests/unit -q -k lint "$@"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all passed"
