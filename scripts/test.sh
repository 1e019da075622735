#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, checks formatting and
# lints, then runs every unit, integration and end-to-end test (one debug build, shared by the
# end-to-end tests through CARGO_BIN_EXE_wasmkube).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
# The example guests the node tests run (clang + wasi-libc from Debian; installs them if missing).
./wasm-examples/build.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
