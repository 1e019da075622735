#!/usr/bin/env bash
# Builds wasmkube and starts a whole cluster on this machine on the embedded default (redb
# store, everything in one process). The admin kubeconfig is written to
# $WASMKUBE_DATA_DIR/kubeconfig.yaml (default ./.wasmkube/kubeconfig.yaml), usable by kubectl and
# `wasmkube` alike. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cc >/dev/null || { apt-get update -qq && apt-get install -y -qq build-essential; }
cargo build --release --locked -p wasmkube
export WASMKUBE_DATA_DIR="${WASMKUBE_DATA_DIR:-$PWD/.wasmkube}"
echo "data dir: $WASMKUBE_DATA_DIR"
echo "then, in another shell: export KUBECONFIG=$WASMKUBE_DATA_DIR/kubeconfig.yaml; target/release/wasmkube get nodes"
exec target/release/wasmkube server --data-dir "$WASMKUBE_DATA_DIR" "$@"
