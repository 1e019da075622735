/*
 * crasher — a container that fails on purpose.
 *
 * Demonstrates: exit codes and traps becoming container state.
 *   - prints one line to stdout and one to stderr (both must reach the logs);
 *   - then exits with the code in env EXIT_CODE (default 3), which the kubelet
 *     reports as the terminated state's exitCode (and restartPolicy acts on);
 *   - with CRASH=trap it executes `unreachable` instead: the instance traps,
 *     which the runtime reports as a failed container (no clean exit code).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *mode = getenv("CRASH");
    const char *code_env = getenv("EXIT_CODE");
    int code = (code_env && *code_env) ? atoi(code_env) : 3;

    printf("crasher: this line goes to stdout\n");
    fflush(stdout);
    fprintf(stderr, "crasher: this line goes to stderr\n");

    if (mode && strcmp(mode, "trap") == 0) {
        printf("crasher: trapping now (CRASH=trap)\n");
        fflush(stdout);
        __builtin_trap();
    }

    printf("crasher: exiting with code %d\n", code);
    fflush(stdout);
    return code;
}
