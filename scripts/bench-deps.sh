#!/usr/bin/env bash
# Installs what `wasmkube bench` needs beyond the Rust build: containerd and runc (the `ctr run`
# reference of `bench pod-start`), busybox-static (the image that reference runs) and etcd
# (etcd-server: `bench datastore`, `bench failover`, `bench scheduler --datastores etcd`).
# Idempotent: installs only what is missing, so it is cheap to run before every benchmark.
#
# The benchmark starts its own containerd with a private config, root, state and socket, so
# the packaged system service is stopped here when Debian starts it on install: it is not
# needed, and would only take memory from the measurement.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "bench-deps.sh: need root to run: $*" >&2
    exit 1
  fi
}

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in containerd runc busybox-static etcd-server; do
  installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when one of the packages has no candidate yet.
  for pkg in "${missing[@]}"; do
    policy="$(apt-cache policy "$pkg" 2>/dev/null || true)"
    if [[ ! "$policy" =~ Candidate:\ [^\(] ]]; then
      as_root apt-get update -qq
      break
    fi
  done
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for service in containerd etcd; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
      as_root systemctl stop "$service" || true
    fi
  done
fi

for tool in containerd ctr runc etcd; do
  command -v "$tool" >/dev/null || { echo "bench-deps.sh: $tool did not install" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "bench-deps.sh: /bin/busybox (busybox-static) is missing" >&2; exit 1; }
echo "bench-deps.sh: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), busybox-static, etcd $(etcd --version | awk 'NR==1{print $3}') ready"
