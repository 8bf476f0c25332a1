/* Unit tests of http_msg.c: head rebuilding, raw body spans, any split of the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "se/http_msg.h"

struct result {
    char head[4096];
    char body[4096];
    size_t body_len;
    int heads, completes, errors;
    size_t rest; /* input left after COMPLETE */
};

/* Feeds TEXT in pieces of STEP bytes, as a proxy would. */
static void run(const char *text, size_t step, enum http_parser_type type, struct result *r)
{
    struct http_msg m;
    size_t len = strlen(text), off = 0;

    memset(r, 0, sizeof *r);
    http_msg_init(&m, type, 1024);
    while (off < len && !r->completes && !r->errors) {
        size_t piece = len - off < step ? len - off : step;
        size_t used = 0;
        while (used < piece) {
            size_t n, blen;
            const char *body;
            enum http_msg_event ev = http_msg_feed(&m, text + off + used, piece - used, &n,
                                                   &body, &blen);
            memcpy(r->body + r->body_len, body, blen);
            r->body_len += blen;
            used += n;
            if (ev == HTTP_MSG_ERROR) {
                r->errors++;
                break;
            }
            if (ev == HTTP_MSG_HEAD_DONE) {
                r->heads++;
                http_msg_head_append(&m, "X-Test: 1\r\n", 11);
                http_msg_head_end(&m);
                snprintf(r->head, sizeof r->head, "%s", m.head);
            }
            if (ev == HTTP_MSG_COMPLETE) {
                r->completes++;
                r->rest = len - off - used;
                break;
            }
            if (ev == HTTP_MSG_NEED_MORE)
                break;
        }
        off += used;
        if (used < piece && !r->completes && !r->errors && piece == step)
            continue;
    }
    http_msg_release(&m);
}

static void rebuilds_request_head_without_hop_by_hop(void **state)
{
    const char *req = "GET /path?q=1 HTTP/1.0\r\nHost: example\r\nConnection: keep-alive\r\n"
                      "Keep-Alive: timeout=5\r\nX-A:  spaced \r\n\r\nNEXT";
    static const char want[] = "GET /path?q=1 HTTP/1.1\r\nHost: example\r\nX-A: spaced \r\n"
                               "X-Test: 1\r\n\r\n";
    struct result r;
    for (size_t step = 1; step <= strlen(req); step++) {
        run(req, step, HTTP_REQUEST, &r);
        assert_int_equal(r.heads, 1);
        assert_int_equal(r.completes, 1);
        assert_string_equal(r.head, want);
        assert_int_equal(r.body_len, 0);
        assert_int_equal(r.rest, 4);
    }
}

static void chunked_body_passes_raw(void **state)
{
    const char *req = "POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n";
    const char *raw = "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n";
    struct result r;
    for (size_t step = 1; step <= strlen(req); step++) {
        run(req, step, HTTP_REQUEST, &r);
        assert_int_equal(r.completes, 1);
        assert_int_equal(r.body_len, strlen(raw));
        assert_memory_equal(r.body, raw, strlen(raw));
    }
}

static void response_with_length_and_status(void **state)
{
    const char *resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
    struct result r;
    for (size_t step = 1; step <= strlen(resp); step++) {
        run(resp, step, HTTP_RESPONSE, &r);
        assert_int_equal(r.completes, 1);
        assert_string_equal(r.head, "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nX-Test: 1\r\n\r\n");
        assert_int_equal(r.body_len, 3);
    }
}

static void refuses_bad_and_oversized_heads(void **state)
{
    struct result r;
    char big[2048];
    run("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 7, HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 1);
    run("\x01GET / HTTP/1.1\r\n\r\n", 3, HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 1);
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: %01500d\r\n\r\n", 0);
    run(big, 100, HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.heads, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rebuilds_request_head_without_hop_by_hop),
        cmocka_unit_test(chunked_body_passes_raw),
        cmocka_unit_test(response_with_length_and_status),
        cmocka_unit_test(refuses_bad_and_oversized_heads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_msg_free_cache();
    return rc;
}
