/*
 * hello-http — a WAGI-style HTTP handler (a plain WASI preview1 command).
 *
 * Demonstrates: HTTP serving from any preview1 module, CGI-fashion. The
 * kubelet listens on podIP:containerPort and runs `_start` once per request:
 *
 *   in:  env REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_NAME,
 *        SERVER_PORT, CONTENT_TYPE, CONTENT_LENGTH, HTTP_<HEADER> …, plus the
 *        container's own env (POD_NAME, HOSTNAME …); the request body on stdin;
 *        query parameters (`a=1&b`) as argv[1..], as WAGI does.
 *   out: on stdout, CGI response headers (`Content-Type`, optional `Status`),
 *        an empty line, then the body.
 *
 * Routes:
 *   /healthz      200 "ok" (for readiness and liveness probes)
 *   /missing...   404, through a `Status: 404 Not Found` header
 *   anything else 200 "Hello from wasmkube!" and what the request looked like,
 *                 including POD_NAME and HOSTNAME so replicas can be told apart.
 *
 * Run as a command instead (no REQUEST_METHOD: `kubectl exec`, exec probes),
 * `hello-http exit CODE [WORDS...]` prints WORDS on stdout and a note on
 * stderr, and exits with CODE; anything else answers as a GET of `/`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

extern char **environ;

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : fallback;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the request body from stdin, at most CONTENT_LENGTH bytes when set. */
static char *read_body(size_t *len_out) {
    const char *cl = getenv("CONTENT_LENGTH");
    long limit = (cl != NULL && *cl != '\0') ? atol(cl) : -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (limit >= 0 && len >= (size_t)limit) {
            break;
        }
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        size_t want = cap - len;
        if (limit >= 0 && want > (size_t)limit - len) {
            want = (size_t)limit - len;
        }
        size_t n = fread(buf + len, 1, want, stdin);
        if (n == 0) {
            break;
        }
        len += n;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* HTTP_USER_AGENT -> user-agent */
static void print_header_var(const char *var) {
    const char *eq = strchr(var, '=');
    if (eq == NULL) {
        return;
    }
    printf("header: ");
    for (const char *p = var + 5; p < eq; p++) {
        putchar(*p == '_' ? '-' : tolower((unsigned char)*p));
    }
    printf(": %s\n", eq + 1);
}

int main(int argc, char **argv) {
    if (getenv("REQUEST_METHOD") == NULL && argc >= 3 && strcmp(argv[1], "exit") == 0) {
        for (int i = 3; i < argc; i++) {
            printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
        }
        fprintf(stderr, "hello-http: exiting with code %s\n", argv[2]);
        return atoi(argv[2]);
    }
    const char *method = env_or("REQUEST_METHOD", "GET");
    const char *path = env_or("PATH_INFO", "/");

    if (strcmp(path, "/healthz") == 0) {
        printf("Content-Type: text/plain\n\nok\n");
        return 0;
    }
    if (strncmp(path, "/missing", 8) == 0) {
        printf("Content-Type: text/plain\nStatus: 404 Not Found\n\n");
        printf("not found: %s\n", path);
        return 0;
    }

    size_t body_len = 0;
    char *body = read_body(&body_len);

    printf("Content-Type: text/plain\n\n");
    printf("Hello from wasmkube!\n");
    printf("method: %s\n", method);
    printf("path: %s\n", path);
    printf("query: %s\n", env_or("QUERY_STRING", ""));
    printf("pod: %s\n", env_or("POD_NAME", "(unknown)"));
    printf("hostname: %s\n", env_or("HOSTNAME", "(unknown)"));
    printf("server: %s:%s\n", env_or("SERVER_NAME", "?"), env_or("SERVER_PORT", "?"));
    for (int i = 1; i < argc; i++) {
        printf("arg: %s\n", argv[i]);
    }

    size_t n = 0;
    while (environ != NULL && environ[n] != NULL) {
        n++;
    }
    char **vars = malloc((n + 1) * sizeof *vars);
    memcpy(vars, environ, n * sizeof *vars);
    qsort(vars, n, sizeof *vars, compare_strings);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(vars[i], "HTTP_", 5) == 0) {
            print_header_var(vars[i]);
        }
    }
    free(vars);

    printf("body-bytes: %zu\n", body_len);
    if (body_len > 0) {
        printf("body: ");
        fwrite(body, 1, body_len, stdout);
        if (body[body_len - 1] != '\n') {
            putchar('\n');
        }
    }
    free(body);
    return 0;
}
