/*
 * hello — the smallest useful command module (WASI preview1, `_start`).
 *
 * Demonstrates: a Wasm container that runs to completion. Its stdout becomes
 * the container log, its exit status (0) the container's exit code, and the
 * container's `args` arrive as argv[1..] (argv[0] is the program name the
 * runtime chooses).
 *
 * The same source, put through the command adapter, is `hello-component`
 * (a WASI 0.2 `wasi:cli/command` component); see build.sh.
 */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from WebAssembly on wasmkube!\n");
    printf("argc: %d\n", argc);
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]: %s\n", i, argv[i]);
    }
    return 0;
}
