/*
 * memhog — grows its linear memory until told to stop, then idles.
 *
 * Demonstrates: memory limits. It allocates 1 MiB at a time, writing to every
 * page so the memory is really used, up to env MEGABYTES (default 1024), then
 * sleeps forever. Under `resources.limits.memory` smaller than that, the
 * runtime's ResourceLimiter refuses a `memory.grow`; malloc then returns NULL
 * and memhog says so and aborts (a trap) — a runtime that traps on a refused
 * grow ends it a step earlier. Either way the runtime knows its limiter
 * refused memory, so the kubelet should report the container as OOMKilled
 * (exitCode 137). WASI cannot exit with 137 itself: wasmtime rejects exit
 * codes of 126 and above.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024 * 1024)

/* Every block is chained into this list so the compiler cannot prove the
 * memory unused and elide the malloc (clang does that to dead allocations). */
static void *volatile held = NULL;

int main(void) {
    const char *mb_env = getenv("MEGABYTES");
    long target = (mb_env && *mb_env) ? atol(mb_env) : 1024;
    if (target < 0) {
        target = 0;
    }

    printf("memhog: allocating %ld MiB in 1 MiB steps\n", target);
    fflush(stdout);
    for (long i = 1; i <= target; i++) {
        char *block = malloc(MIB);
        if (block == NULL) {
            printf("memhog: allocation failed after %ld MiB (out of memory)\n", i - 1);
            fflush(stdout);
            abort();
        }
        /* touch every 4 KiB so each page is really written */
        volatile char *touch = block;
        for (size_t off = sizeof(void *); off < MIB; off += 4096) {
            touch[off] = (char)i;
        }
        *(void **)block = held;
        held = block;
        if (i % 16 == 0 || i == target) {
            printf("memhog: %ld MiB allocated\n", i);
            fflush(stdout);
        }
    }

    printf("memhog: done, holding %ld MiB and sleeping forever\n", target);
    fflush(stdout);
    for (;;) {
        sleep(3600);
    }
}
