/*
 * spinner — burns CPU forever.
 *
 * Demonstrates: CPU limits. The loop never calls into the host, so only the
 * runtime's epoch interruption (or fuel) can slow or stop it. Every REPORT
 * iterations it prints the running count and how many iterations per second
 * of wall-clock time it managed since the last report, so the effect of
 * `resources.limits.cpu` (e.g. 250m) can be read straight from the logs.
 *
 * Env: REPORT — iterations between lines (default 100000000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
    const char *report_env = getenv("REPORT");
    unsigned long long report = report_env ? strtoull(report_env, NULL, 10) : 0;
    if (report == 0) {
        report = 100000000ULL;
    }

    /* volatile so the compiler can neither drop nor fold the loop */
    volatile unsigned long long counter = 0;
    double last = now_seconds();

    printf("spinner: reporting every %llu iterations\n", report);
    fflush(stdout);
    for (;;) {
        counter = counter + 1;
        if (counter % report == 0) {
            double t = now_seconds();
            double rate = (t > last) ? (double)report / (t - last) : 0.0;
            printf("spinner: count=%llu rate=%.0f/s\n", (unsigned long long)counter, rate);
            fflush(stdout);
            last = t;
        }
    }
}
