#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine:
#  - Debian packages (real NGINX, Prometheus, nftables, iproute2, Chromium for the dashboard's browser
#    tests, cmake, ninja and g++ to build llama-server, ...), with apt-get install -y;
#  - a virtualenv in .venv with the project and its test extras (pip, from PyPI).
# Idempotent: packages already present and an up-to-date venv are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(nginx-light prometheus nftables iproute2 openssl socat dnsutils util-linux procps curl chromium cmake ninja-build g++)
# Which binary proves each package is installed (same order as DEBS).
PROBES=(/usr/sbin/nginx /usr/bin/prometheus /usr/sbin/nft /usr/sbin/ip /usr/bin/openssl /usr/bin/socat /usr/bin/dig /usr/bin/unshare /usr/bin/pgrep /usr/bin/curl /usr/bin/chromium /usr/bin/cmake /usr/bin/ninja /usr/bin/g++)

missing=()
for i in "${!DEBS[@]}"; do
  [ -x "${PROBES[$i]}" ] || missing+=("${DEBS[$i]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run 'sudo make setup' once, or install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The Debian packages start system services; the project runs its own copies.
  for svc in nginx prometheus prometheus-node-exporter; do
    (command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
  done
fi

PY=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "setup: python environment ready in .venv"
fi
