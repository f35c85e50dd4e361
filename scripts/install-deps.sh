#!/usr/bin/env bash
# Installs the Debian packages dnsdoc needs to build and test, idempotently.
# Usage: scripts/install-deps.sh [build|test|all]   (default: all)
set -euo pipefail

build_pkgs=(pkg-config libelf-dev zlib1g-dev clang make)
# Real DNS peers for the integration tests, the demo and the benchmark (unbound and
# tcpdump: the saturation benchmark's second server and its capture comparison).
# prometheus (promtool and the server) and prometheus-node-exporter: the exporter
# tests (`serve`, `--textfile`, `rules export`); tmux: `dnsdoc top` in a real terminal;
# valgrind: `make bench`'s analysis_cost (callgrind).
test_pkgs=(dnsmasq-base dnsutils dnsperf iproute2 procps python3 unbound tcpdump
  prometheus prometheus-node-exporter tmux python3-venv valgrind)

# From PyPI, in a venv of its own: the schema validator tests/deploy.rs runs on the
# DaemonSet manifest (Debian does not package it).
TOOLS_VENV=${DNSDOC_TOOLS_VENV:-/opt/dnsdoc-tools}
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
install_python_tools() {
  [ -x "$TOOLS_VENV/bin/kubernetes-validate" ] && return 0
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$(dirname "$TOOLS_VENV")" ]; then
    echo "install-deps: $TOOLS_VENV missing; run as root or set DNSDOC_TOOLS_VENV" >&2
    return 1
  fi
  echo "install-deps: installing $KUBERNETES_VALIDATE into $TOOLS_VENV" >&2
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q "$KUBERNETES_VALIDATE"
}

case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 64 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  case "${1:-all}" in test|all) install_python_tools ;; esac
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root or install them yourself" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
case "${1:-all}" in test|all) install_python_tools ;; esac
