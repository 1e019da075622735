#!/usr/bin/env bash
# Builds the example guests into wasm-examples/build/.
#
#   wasm-examples/build.sh            build what is missing or out of date
#   wasm-examples/build.sh clean      remove the built modules (keeps tools-target)
#   wasm-examples/build.sh bindings   regenerate hello-http-component/bindings
#                                     (maintainers only; needs wit-bindgen 0.60.0)
#
# Needs clang/lld with the WASI sysroot from Debian (installed here when
# missing) and, for the two components, cargo to build tools/componentize once.
# Outputs are written to a temporary name and renamed, and skipped when newer
# than all their inputs, so a second run does nothing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$HERE/build"
SCRIPT="$HERE/build.sh"
DEB_PACKAGES=(clang lld wasi-libc libclang-rt-14-dev-wasm32)
WIT_BINDGEN_VERSION=0.60.0
CC_FLAGS=(--target=wasm32-wasi -O2 -s -Wall -Wextra)
# command modules, one C file each
COMMANDS=(hello hello-http echo counter crasher memhog spinner)

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stale OUT INPUT... — true when OUT is missing or older than any INPUT.
stale() {
    local out="$1"; shift
    [[ -e "$out" ]] || return 0
    local input
    for input in "$@"; do
        [[ "$input" -nt "$out" ]] && return 0
    done
    return 1
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

ensure_debian_packages() {
    local missing=() pkg
    for pkg in "${DEB_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != *"install ok installed"* ]]; then
            missing+=("$pkg")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"

    # Refresh the package lists once, and only when they do not know a package.
    # (Output is captured, not piped into `grep -q`: with pipefail an early
    # exit of grep would make the pipeline fail.)
    for pkg in "${missing[@]}"; do
        local policy
        policy="$(apt-cache policy "$pkg" 2>/dev/null || true)"
        if [[ ! "$policy" =~ Candidate:\ [^\(] ]]; then
            log "apt-get update (no candidate for $pkg yet)"
            as_root apt-get update -qq
            break
        fi
    done
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# compile OUT CLANG_ARGS... — always compiles; callers check staleness.
compile() {
    local out="$1"; shift
    log "cc $(basename "$out")"
    clang "${CC_FLAGS[@]}" "$@" -o "$out.tmp"
    mv -f "$out.tmp" "$out"
}

COMPONENTIZE="$BUILD/tools-target/debug/componentize"
TOOL_DIR="$HERE/tools/componentize"

ensure_componentize() {
    stale "$COMPONENTIZE" "$TOOL_DIR/Cargo.toml" "$TOOL_DIR/Cargo.lock" "$TOOL_DIR/src/main.rs" \
        || return 0
    command -v cargo >/dev/null || die "cargo is needed to build tools/componentize"
    log "cargo build tools/componentize (once)"
    # Own target dir: never waits on the main workspace's target/ lock.
    cargo build --quiet --locked --manifest-path "$TOOL_DIR/Cargo.toml" \
        --target-dir "$BUILD/tools-target"
    touch "$COMPONENTIZE"
}

# componentize ADAPTER IN OUT
componentize() {
    local adapter="$1" in="$2" out="$3"
    stale "$out" "$in" "$COMPONENTIZE" || return 0
    log "componentize --adapter $adapter $(basename "$out")"
    "$COMPONENTIZE" --adapter "$adapter" "$in" "$out"
}

build_all() {
    ensure_debian_packages
    mkdir -p "$BUILD"

    local name
    for name in "${COMMANDS[@]}"; do
        if stale "$BUILD/$name.wasm" "$HERE/$name.c" "$SCRIPT"; then
            compile "$BUILD/$name.wasm" "$HERE/$name.c"
        fi
    done

    # wasi:http/proxy component: a reactor core module (exports and the
    # component-type section come from the committed wit-bindgen output),
    # then the proxy adapter below.
    local comp="$HERE/hello-http-component"
    local sources=("$comp/hello_http_component.c" "$comp/bindings/hello_http.c"
        "$comp/bindings/hello_http_component_type.o")
    if stale "$BUILD/hello-http-component.core.wasm" "${sources[@]}" \
        "$comp/bindings/hello_http.h" "$SCRIPT"; then
        compile "$BUILD/hello-http-component.core.wasm" -mexec-model=reactor "${sources[@]}"
    fi

    # .wat needs no compiler: the runtime compiles it; ship it as it is.
    local wat
    for wat in "$HERE"/*.wat; do
        if stale "$BUILD/$(basename "$wat")" "$wat"; then
            log "copy $(basename "$wat")"
            cp -f "$wat" "$BUILD/"
        fi
    done

    if stale "$BUILD/hello-component.wasm" "$BUILD/hello.wasm" "$TOOL_DIR/src/main.rs" \
        || stale "$BUILD/hello-http-component.wasm" "$BUILD/hello-http-component.core.wasm" \
            "$TOOL_DIR/src/main.rs"; then
        ensure_componentize
    fi
    componentize command "$BUILD/hello.wasm" "$BUILD/hello-component.wasm"
    componentize proxy "$BUILD/hello-http-component.core.wasm" "$BUILD/hello-http-component.wasm"

    log "done:"
    local f
    for f in "$BUILD"/*.wasm "$BUILD"/*.wat; do
        printf '  %8d  %s\n' "$(stat -c %s "$f")" "$(basename "$f")" >&2
    done
}

regenerate_bindings() {
    local comp="$HERE/hello-http-component"
    local have=""
    if command -v wit-bindgen >/dev/null; then
        have="$(wit-bindgen --version)"
    fi
    if [[ "$have" != *" $WIT_BINDGEN_VERSION" ]]; then
        die "needs wit-bindgen $WIT_BINDGEN_VERSION (found: ${have:-none}):" \
            "cargo install wit-bindgen-cli@$WIT_BINDGEN_VERSION --locked"
    fi
    wit-bindgen c "$comp/wit" --world hello-http --out-dir "$comp/bindings"
}

case "${1:-all}" in
    all) build_all ;;
    clean) rm -f "$BUILD"/*.wasm "$BUILD"/*.wat "$BUILD"/*.tmp ;;
    bindings) regenerate_bindings ;;
    *) die "unknown command ${1} (expected: all, clean, bindings)" ;;
esac
