#!/usr/bin/env bash
# Builds wasmkube and the example guests, and starts a whole cluster on this machine on the
# embedded default (redb store, API server, scheduler, controllers and a Wasm node in one
# process). Then runs its main job: deploys the HTTP hello example (manifests/hello-http.yaml)
# and asks one of its pods for a page. The cluster keeps running in the foreground; Ctrl-C
# stops it.
#
# The admin kubeconfig is $WASMKUBE_DATA_DIR/kubeconfig.yaml (default ./.wasmkube), usable by
# kubectl and `wasmkube` alike. Extra arguments go to `wasmkube server`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl)
# containerd-client generates its gRPC bindings with protoc at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
./wasm-examples/build.sh
cargo build --release --locked -p wasmkube
bin=target/release/wasmkube
export WASMKUBE_DATA_DIR="${WASMKUBE_DATA_DIR:-$PWD/.wasmkube}"
export KUBECONFIG="$WASMKUBE_DATA_DIR/kubeconfig.yaml"
echo "data dir: $WASMKUBE_DATA_DIR"

# The examples go into the node's own image store (no registry needed).
for wasm in wasm-examples/build/*.wasm; do
  name=$(basename "$wasm" .wasm)
  case "$name" in *.core) continue ;; esac
  "$bin" image import "$wasm" --name "wasmkube.local/examples/$name:v1" --data-dir "$WASMKUBE_DATA_DIR" >/dev/null
done

"$bin" server --data-dir "$WASMKUBE_DATA_DIR" "$@" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT
for _ in $(seq 100); do
  [ -s "$KUBECONFIG" ] && "$bin" get nodes >/dev/null 2>&1 && break
  sleep 0.2
done

"$bin" apply -f manifests/hello-http.yaml
for _ in $(seq 150); do
  ip=$("$bin" get pods -l app=hello-http -o jsonpath='{.items[0].status.podIP}' 2>/dev/null || true)
  ready=$("$bin" get pods -l app=hello-http -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  [ -n "$ip" ] && [ "$ready" = "True" ] && break
  sleep 0.2
done
echo "--- curl http://$ip:8080/ (a hello-http pod)"
curl -sS --max-time 5 "http://$ip:8080/"
echo "---"
echo "cluster running. In another shell:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  $bin get pods -o wide"
wait $server
