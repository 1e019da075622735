/*
 * hello-http-component — a `wasi:http/proxy` component written in C.
 *
 * Demonstrates: the component-model way to serve HTTP (WASI 0.2). Instead of
 * WAGI's env + stdin/stdout, the host calls the exported
 * `wasi:http/incoming-handler.handle` once per request with an
 * `incoming-request` resource and a `response-outparam` to answer through.
 * The proxy world gives no environment, no files and no exit: only HTTP,
 * streams, clocks, random and stdout/stderr.
 *
 * Routes:
 *   /healthz      200 "ok" (for probes)
 *   /missing...   404 "not found: PATH"
 *   /fetch/HOST[:PORT]/PATH
 *                 GET http://HOST[:PORT]/PATH from the guest (wasi:http
 *                 outgoing-handler; the host must be in the pod's allowed
 *                 outbound hosts) and answer "upstream STATUS" and its body,
 *                 or 502 with the error: how a guest calls a Service by name.
 *   anything else 200 "Hello from a wasi:http component on wasmkube!" plus the
 *                 request's method, path (with query) and authority.
 *
 * Built as a reactor core module against bindings/ (generated once by
 * `wit-bindgen c` 0.60.0 from ./wit, see `build.sh bindings`), then made a
 * component with the proxy adapter by tools/componentize.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/hello_http.h"

static const char *method_name(const wasi_http_types_method_t *m, char *buf, size_t buflen) {
    static const char *const names[] = {
        [WASI_HTTP_TYPES_METHOD_GET] = "GET",         [WASI_HTTP_TYPES_METHOD_HEAD] = "HEAD",
        [WASI_HTTP_TYPES_METHOD_POST] = "POST",       [WASI_HTTP_TYPES_METHOD_PUT] = "PUT",
        [WASI_HTTP_TYPES_METHOD_DELETE] = "DELETE",   [WASI_HTTP_TYPES_METHOD_CONNECT] = "CONNECT",
        [WASI_HTTP_TYPES_METHOD_OPTIONS] = "OPTIONS", [WASI_HTTP_TYPES_METHOD_TRACE] = "TRACE",
        [WASI_HTTP_TYPES_METHOD_PATCH] = "PATCH",
    };
    if (m->tag == WASI_HTTP_TYPES_METHOD_OTHER) {
        snprintf(buf, buflen, "%.*s", (int)m->val.other.len, (const char *)m->val.other.ptr);
        return buf;
    }
    return m->tag < sizeof names / sizeof names[0] ? names[m->tag] : "?";
}

/* Copies an optional WIT string into a NUL-terminated buffer and frees it. */
static void take_string(bool present, hello_http_string_t *s, char *buf, size_t buflen,
                        const char *fallback) {
    if (present) {
        snprintf(buf, buflen, "%.*s", (int)s->len, (const char *)s->ptr);
        hello_http_string_free(s);
    } else {
        snprintf(buf, buflen, "%s", fallback);
    }
}

/* Sends status + text/plain body through the response-outparam. */
static void respond(exports_wasi_http_incoming_handler_own_response_outparam_t out,
                    uint16_t status, const char *body, size_t body_len) {
    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    wasi_http_types_field_name_t name;
    hello_http_string_set(&name, "content-type");
    wasi_http_types_field_value_t value = {(uint8_t *)"text/plain", strlen("text/plain")};
    wasi_http_types_header_error_t header_err;
    wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value,
                                         &header_err);

    /* outgoing-response takes ownership of the headers */
    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_borrow_outgoing_response_t response_ref =
        wasi_http_types_borrow_outgoing_response(response);
    wasi_http_types_method_outgoing_response_set_status_code(response_ref, status);

    wasi_http_types_own_outgoing_body_t body_handle;
    if (!wasi_http_types_method_outgoing_response_body(response_ref, &body_handle)) {
        abort(); /* only fails when called twice */
    }

    /* Hand the response to the host first: it then streams the body out. */
    wasi_http_types_result_own_outgoing_response_error_code_t result = {
        .is_err = false, .val = {.ok = response}};
    wasi_http_types_static_response_outparam_set(out, &result);

    wasi_http_types_own_output_stream_t stream;
    if (wasi_http_types_method_outgoing_body_write(
            wasi_http_types_borrow_outgoing_body(body_handle), &stream)) {
        wasi_io_streams_borrow_output_stream_t stream_ref =
            wasi_io_streams_borrow_output_stream(stream);
        /* blocking-write-and-flush takes at most 4096 bytes per call */
        for (size_t off = 0; off < body_len;) {
            size_t n = body_len - off < 4096 ? body_len - off : 4096;
            hello_http_list_u8_t chunk = {(uint8_t *)body + off, n};
            wasi_io_streams_stream_error_t stream_err;
            if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(stream_ref, &chunk,
                                                                               &stream_err)) {
                break; /* the client went away */
            }
            off += n;
        }
        /* the stream is a child of the body: drop it before finishing */
        wasi_io_streams_output_stream_drop_own(stream);
    }

    wasi_http_types_error_code_t finish_err;
    if (!wasi_http_types_static_outgoing_body_finish(body_handle, NULL, &finish_err)) {
        wasi_http_types_error_code_free(&finish_err);
    }
}

/* GETs http://AUTHORITY/PATH through the host's outgoing handler into buf;
 * returns the upstream status, or 0 with a message in buf. */
static uint16_t fetch(const char *authority, const char *path, char *buf, size_t buflen) {
    wasi_http_types_own_outgoing_request_t request =
        wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
    wasi_http_types_borrow_outgoing_request_t req = wasi_http_types_borrow_outgoing_request(request);
    wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
    wasi_http_types_method_outgoing_request_set_scheme(req, &scheme);
    hello_http_string_t s;
    hello_http_string_set(&s, authority);
    wasi_http_types_method_outgoing_request_set_authority(req, &s);
    hello_http_string_set(&s, path);
    wasi_http_types_method_outgoing_request_set_path_with_query(req, &s);
    /* A GET has no body, but the body resource must be finished for the request to go. */
    wasi_http_types_own_outgoing_body_t out_body;
    bool have_body = wasi_http_types_method_outgoing_request_body(req, &out_body);

    wasi_http_outgoing_handler_own_future_incoming_response_t future;
    wasi_http_outgoing_handler_error_code_t err;
    if (!wasi_http_outgoing_handler_handle(request, NULL, &future, &err)) {
        wasi_http_types_error_code_free(&err);
        if (have_body) wasi_http_types_outgoing_body_drop_own(out_body);
        snprintf(buf, buflen, "the host refused the request (error code %u)", (unsigned)err.tag);
        return 0;
    }
    if (have_body) {
        wasi_http_types_error_code_t finish_err;
        if (!wasi_http_types_static_outgoing_body_finish(out_body, NULL, &finish_err)) {
            wasi_http_types_error_code_free(&finish_err);
        }
    }
    wasi_http_types_borrow_future_incoming_response_t fut =
        wasi_http_types_borrow_future_incoming_response(future);
    wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(fut);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
    wasi_io_poll_pollable_drop_own(ready);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t got;
    if (!wasi_http_types_method_future_incoming_response_get(fut, &got) || got.is_err) {
        wasi_http_types_future_incoming_response_drop_own(future);
        snprintf(buf, buflen, "no response");
        return 0;
    }
    wasi_http_types_future_incoming_response_drop_own(future);
    if (got.val.ok.is_err) {
        unsigned code = got.val.ok.val.err.tag;
        wasi_http_types_error_code_free(&got.val.ok.val.err);
        snprintf(buf, buflen, "the request failed (error code %u)", code);
        return 0;
    }
    wasi_http_types_own_incoming_response_t response = got.val.ok.val.ok;
    wasi_http_types_borrow_incoming_response_t resp = wasi_http_types_borrow_incoming_response(response);
    uint16_t status = wasi_http_types_method_incoming_response_status(resp);
    size_t used = 0;
    wasi_http_types_own_incoming_body_t in_body;
    if (wasi_http_types_method_incoming_response_consume(resp, &in_body)) {
        wasi_http_types_own_input_stream_t stream;
        if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(in_body), &stream)) {
            for (;;) {
                hello_http_list_u8_t chunk;
                wasi_io_streams_stream_error_t stream_err;
                if (!wasi_io_streams_method_input_stream_blocking_read(
                        wasi_io_streams_borrow_input_stream(stream), 4096, &chunk, &stream_err)) {
                    wasi_io_streams_stream_error_free(&stream_err);
                    break; /* closed: the whole body is in */
                }
                size_t room = buflen - 1 - used;
                size_t n = chunk.len < room ? chunk.len : room;
                memcpy(buf + used, chunk.ptr, n);
                used += n;
                hello_http_list_u8_free(&chunk);
            }
            wasi_io_streams_input_stream_drop_own(stream);
        }
        wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(in_body));
    }
    buf[used] = '\0';
    wasi_http_types_incoming_response_drop_own(response);
    return status;
}

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);

    wasi_http_types_method_t method;
    wasi_http_types_method_incoming_request_method(req, &method);
    char method_buf[64];
    char method_str[64];
    snprintf(method_str, sizeof method_str, "%s", method_name(&method, method_buf, sizeof method_buf));
    wasi_http_types_method_free(&method);

    hello_http_string_t s;
    char path[2048];
    bool has_path = wasi_http_types_method_incoming_request_path_with_query(req, &s);
    take_string(has_path, &s, path, sizeof path, "/");
    char authority[256];
    bool has_authority = wasi_http_types_method_incoming_request_authority(req, &s);
    take_string(has_authority, &s, authority, sizeof authority, "");

    wasi_http_types_incoming_request_drop_own(request);

    char body[4096];
    int len;
    uint16_t status = 200;
    size_t path_len = strcspn(path, "?");
    if (path_len == strlen("/healthz") && strncmp(path, "/healthz", path_len) == 0) {
        len = snprintf(body, sizeof body, "ok\n");
    } else if (strncmp(path, "/fetch/", strlen("/fetch/")) == 0) {
        /* /fetch/HOST[:PORT]/PATH: the authority up to the next slash, the rest the path. */
        const char *target = path + strlen("/fetch/");
        const char *slash = strchr(target, '/');
        char upstream_authority[256];
        size_t alen = slash ? (size_t)(slash - target) : strlen(target);
        snprintf(upstream_authority, sizeof upstream_authority, "%.*s", (int)alen, target);
        char upstream[3072];
        uint16_t got = fetch(upstream_authority, slash ? slash : "/", upstream, sizeof upstream);
        if (got == 0) {
            status = 502;
            len = snprintf(body, sizeof body, "fetching http://%s: %s\n", upstream_authority, upstream);
        } else {
            len = snprintf(body, sizeof body, "upstream %u\n%s", (unsigned)got, upstream);
        }
    } else if (strncmp(path, "/missing", strlen("/missing")) == 0) {
        status = 404;
        len = snprintf(body, sizeof body, "not found: %s\n", path);
    } else {
        len = snprintf(body, sizeof body,
                       "Hello from a wasi:http component on wasmkube!\n"
                       "method: %s\n"
                       "path: %s\n"
                       "authority: %s\n",
                       method_str, path, authority);
    }
    if (len < 0) {
        len = 0;
    } else if ((size_t)len >= sizeof body) {
        len = sizeof body - 1;
    }
    respond(response_out, status, body, (size_t)len);
}
