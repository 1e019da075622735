/*
 * counter — a long-running process with state on a volume.
 *
 * Demonstrates: volumes and persistence across container restarts. Forever:
 * read the number in /data/count (0 when the file does not exist yet), add
 * one, write it back, print it, sleep INTERVAL seconds (default 1). With
 * /data on an emptyDir, a restarted container continues counting where the
 * previous one stopped; a new pod starts again from 1.
 *
 * Env: INTERVAL   seconds between increments (default 1)
 *      COUNT_FILE path of the counter file (default /data/count)
 * Exits 1 when the file cannot be written (e.g. no volume at /data).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long read_count(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0; /* first run: start at 0 */
    }
    long value = 0;
    if (fscanf(f, "%ld", &value) != 1) {
        value = 0;
    }
    fclose(f);
    return value;
}

static int write_count(const char *path, long value) {
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    int ok = fprintf(f, "%ld\n", value) > 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int main(void) {
    const char *path = getenv("COUNT_FILE");
    if (path == NULL || *path == '\0') {
        path = "/data/count";
    }
    const char *interval_env = getenv("INTERVAL");
    unsigned interval = (interval_env && *interval_env) ? (unsigned)atoi(interval_env) : 1;

    long count = read_count(path);
    printf("counter: starting from %ld (file %s, interval %us)\n", count, path, interval);
    fflush(stdout);
    for (;;) {
        count++;
        if (write_count(path, count) != 0) {
            perror("counter: cannot write the counter file");
            return 1;
        }
        printf("count: %ld\n", count);
        fflush(stdout);
        if (interval > 0) {
            sleep(interval);
        }
    }
}
