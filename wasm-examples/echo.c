/*
 * echo — shows exactly what the container was given.
 *
 * Demonstrates: what a guest can see — and only that: its args, its env
 * (from `env`, `envFrom`, the downward API …), and the directories its volumes
 * grant (a ConfigMap at /config, an emptyDir at /data). Output, in order:
 *
 *   args: every argv entry
 *   env:  every variable, sorted by name
 *   files: for each path in env ECHO_FILES (colon-separated), or else /config
 *          and /data when they exist: a file's name and contents, or a
 *          directory's entries (sorted) with the contents of each regular
 *          file in it (one level deep, skipping dot-files such as the
 *          `..data` links a kubelet may create).
 * Exits 0, or 1 when a path named in ECHO_FILES cannot be opened.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        printf("  %s: cannot open: %s\n", path, strerror(errno));
        return;
    }
    printf("--- %s\n", path);
    char buf[4096];
    size_t n;
    int last = '\n';
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        fwrite(buf, 1, n, stdout);
        last = buf[n - 1];
    }
    if (last != '\n') {
        putchar('\n');
    }
    fclose(f);
}

static void print_dir(const char *path) {
    DIR *d = opendir(path);
    if (d == NULL) {
        printf("%s/: cannot open: %s\n", path, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        names = realloc(names, (count + 1) * sizeof *names);
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, compare_strings);

    printf("%s/: %zu entries\n", path, count);
    for (size_t i = 0; i < count; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        struct stat st;
        const char *kind = "?";
        if (stat(full, &st) == 0) {
            kind = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : "other";
        }
        printf("  %s (%s)\n", names[i], kind);
    }
    for (size_t i = 0; i < count; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        struct stat st;
        if (names[i][0] != '.' && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            print_file(full);
        }
        free(names[i]);
    }
    free(names);
}

/* Returns 0 when the path could be shown, -1 when it does not exist. */
static int show_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        print_dir(path);
    } else {
        print_file(path);
    }
    return 0;
}

int main(int argc, char **argv) {
    printf("args: %d\n", argc);
    for (int i = 0; i < argc; i++) {
        printf("  argv[%d]=%s\n", i, argv[i]);
    }

    size_t nenv = 0;
    while (environ != NULL && environ[nenv] != NULL) {
        nenv++;
    }
    char **sorted = malloc((nenv + 1) * sizeof *sorted);
    memcpy(sorted, environ, nenv * sizeof *sorted);
    qsort(sorted, nenv, sizeof *sorted, compare_strings);
    printf("env: %zu\n", nenv);
    for (size_t i = 0; i < nenv; i++) {
        printf("  %s\n", sorted[i]);
    }
    free(sorted);

    int status = 0;
    const char *files = getenv("ECHO_FILES");
    if (files != NULL && *files != '\0') {
        printf("files (ECHO_FILES):\n");
        char *list = strdup(files);
        for (char *p = strtok(list, ":"); p != NULL; p = strtok(NULL, ":")) {
            if (show_path(p) != 0) {
                printf("%s: cannot open: %s\n", p, strerror(errno));
                status = 1;
            }
        }
        free(list);
    } else {
        printf("files (/config, /data):\n");
        const char *defaults[] = {"/config", "/data"};
        for (size_t i = 0; i < 2; i++) {
            if (show_path(defaults[i]) != 0) {
                printf("%s: not mounted\n", defaults[i]);
            }
        }
    }
    return status;
}
