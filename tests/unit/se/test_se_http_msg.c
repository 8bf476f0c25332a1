/* Unit tests of http_msg.c: head rebuilding, raw body spans, any split of the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "se/http_hop.h"
#include "se/http_msg.h"

struct result {
    char head[4096];
    char head_at_end[4096]; /* the head when the message completed */
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
                snprintf(r->head_at_end, sizeof r->head_at_end, "%s", m.head ? m.head : "");
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
    const char *req = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
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

/* Trailer fields are body bytes: they pass raw and leave the head as it was sent
 * (issue 17: they were added to the rebuilt head). */
static void trailers_pass_raw_and_leave_the_head_alone(void **state)
{
    const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "2\r\nok\r\n0\r\nX-Trailer: value\r\nConnection: x\r\n\r\n";
    const char *raw = "2\r\nok\r\n0\r\nX-Trailer: value\r\nConnection: x\r\n\r\n";
    struct result r;
    (void)state;
    for (size_t step = 1; step <= strlen(resp); step++) {
        run(resp, step, HTTP_RESPONSE, &r);
        assert_int_equal(r.completes, 1);
        assert_string_equal(r.head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                    "X-Test: 1\r\n\r\n");
        assert_string_equal(r.head_at_end, r.head);
        assert_int_equal(r.body_len, strlen(raw));
        assert_memory_equal(r.body, raw, strlen(raw));
    }
}

/* A chunked body's framing is read strictly (http_chunked.h): what http-parser 2.9 lets
 * through (a chunk-size byte over 0x7f read as a digit, any two bytes after the data taken
 * as CRLF, bare CR or LF in chunk lines and trailers) is refused in every split, in both
 * directions; valid framing (leading zeros, whitespace, extensions, trailers) passes. */
static void chunked_framing_is_strict(void **state)
{
    static const char *const bad[] = {
        "\xf2\r\n\r\n",                         /* was: the last chunk */
        "5\xf2\r\nhello\r\n0\r\n\r\n",           /* was: a chunk of 0x50 bytes */
        "5\r\nhelloXY0\r\n\r\n",                 /* was: XY taken as CRLF */
        "5\rXhello\r\n0\r\n\r\n",
        "5;\nx\r\nhello\r\n0\r\n\r\n",            /* a bare LF in an extension */
        "5 x\r\nhello\r\n0\r\n\r\n",
        "2\r\nok\r\n0\r\nX-T: v\n\r\n",           /* a bare LF in a trailer */
        "2\r\nok\r\n0\r\nX-T: v\r\n\rX",          /* the final CRLF */
        "2\r\nok\r\n0\r\nX T: v\r\n\r\n",
        NULL};
    static const char *const good[] = {"0003 ;a=b;c\r\nabc\r\n000A\r\n0123456789\r\n0\r\n\r\n",
                                       "2\r\nok\r\n0;x\r\nX-T: v\r\nY:\r\n\r\n", NULL};
    static const char *const heads[] = {
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"};
    char text[512];
    struct result r;
    (void)state;
    for (int dir = 0; dir < 2; dir++) {
        for (int k = 0; bad[k] != NULL; k++) {
            snprintf(text, sizeof text, "%s%s", heads[dir], bad[k]);
            for (size_t step = 1; step <= strlen(text); step++) {
                run(text, step, dir ? HTTP_RESPONSE : HTTP_REQUEST, &r);
                assert_int_equal(r.completes, 0);
                assert_int_equal(r.errors, 1);
            }
        }
        for (int k = 0; good[k] != NULL; k++) {
            snprintf(text, sizeof text, "%s%s", heads[dir], good[k]);
            for (size_t step = 1; step <= strlen(text); step++) {
                run(text, step, dir ? HTTP_RESPONSE : HTTP_REQUEST, &r);
                assert_int_equal(r.completes, 1);
                assert_int_equal(r.errors, 0);
                assert_int_equal(r.body_len, strlen(good[k]));
                assert_memory_equal(r.body, good[k], r.body_len);
            }
        }
    }
}

/* http-parser 2.9 takes a name that starts with "Transfer-Encoding" for the framing header:
 * a request with "Transfer-Encoding-X" and a Content-Length was refused, and
 * "Transfer-Encodingx" after "Transfer-Encoding: chunked" made a response's body run
 * until close. Only the exact name counts now. */
static void transfer_encoding_is_the_exact_name(void **state)
{
    const char *req = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding-X: 1\r\n"
                      "Content-Length: 2\r\n\r\nokNEXT";
    const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encodingx: y\r\n"
                       "\r\n2\r\nok\r\n0\r\n\r\nNEXT";
    const char *chunks = "2\r\nok\r\n0\r\n\r\n";
    struct result r;
    (void)state;
    for (size_t step = 1; step <= strlen(req); step++) {
        run(req, step, HTTP_REQUEST, &r);
        assert_int_equal(r.errors, 0);
        assert_int_equal(r.completes, 1);
        assert_int_equal(r.body_len, 2);
        assert_memory_equal(r.body, "ok", 2);
    }
    for (size_t step = 1; step <= strlen(resp); step++) {
        run(resp, step, HTTP_RESPONSE, &r);
        assert_int_equal(r.errors, 0);
        assert_int_equal(r.completes, 1);
        assert_int_equal(r.body_len, strlen(chunks));
        assert_memory_equal(r.body, chunks, r.body_len);
    }    /* the final coding is the last comma-separated one: "gzip chunked" is not chunked */
    run("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip chunked\r\n\r\n0\r\n\r\n", 1024,
        HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 1);
    run("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip ,  chunked \r\n\r\n0\r\n\r\n", 1024,
        HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.completes, 1);
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

/* A 1xx, 204 or 304 ends with its head whatever it says about a body; a 1xx or 204 loses
 * its framing headers (issue 17: the proxy passed the bytes after it as its body). */
static void bodiless_statuses_end_with_the_head(void **state)
{
    static const struct {
        const char *resp, *head;
    } cases[] = {
        {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: a\r\n\r\nhello",
         "HTTP/1.1 204 No Content\r\nX-A: a\r\nX-Test: 1\r\n\r\n"},
        {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
         "HTTP/1.1 204 No Content\r\nX-Test: 1\r\n\r\n"},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nX-Test: 1\r\n\r\n"},
        {"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello",
         "HTTP/1.1 100 Continue\r\nX-Test: 1\r\n\r\n"},
    };
    struct result r;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 1; step <= strlen(cases[i].resp); step++) {
            run(cases[i].resp, step, HTTP_RESPONSE, &r);
            assert_int_equal(r.completes, 1);
            assert_string_equal(r.head, cases[i].head);
            assert_int_equal(r.body_len, 0);
            assert_true(r.rest >= 5); /* "hello" (and what follows) is not this message's */
        }
    }
}

/* Hop-by-hop lines leave the head in both directions; framing and Host stay even when
 * Connection names them; too many names refuse the head. */
static void strips_what_connection_names(void **state)
{
    const char *req = "POST / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nConnection: X-A , x-b, host,"
                      " Content-Length\r\nTE: trailers\r\nX-B: 2\r\nUpgrade: h2c\r\n"
                      "Connection: x-c\r\nX-C: 3\r\nX-D: 4\r\nContent-Length: 1\r\n\r\nz";
    const char *resp = "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: s\r\n"
                       "Keep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n";
    char many[1024];
    int n;
    struct result r;
    (void)state;
    for (size_t step = 1; step <= strlen(req); step++) {
        run(req, step, HTTP_REQUEST, &r);
        assert_int_equal(r.completes, 1);
        assert_string_equal(r.head, "POST / HTTP/1.1\r\nHost: h\r\nX-D: 4\r\nContent-Length: 1\r\n"
                                    "X-Test: 1\r\n\r\n");
        assert_int_equal(r.body_len, 1);
    }
    run(resp, 5, HTTP_RESPONSE, &r);
    assert_string_equal(r.head, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Test: 1\r\n\r\n");
    n = snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: h\r\nConnection: ");
    for (int i = 0; i <= HTTP_HOP_NAMES_MAX; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "x%d,", i);
    snprintf(many + n, sizeof many - (size_t)n, "\r\n\r\n");
    run(many, 64, HTTP_REQUEST, &r);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.heads, 0);
}

/* RFC 9112 3.2: Host is required in HTTP/1.1, once, valid; an absolute-form target's
 * authority becomes the Host and the target goes in origin form. NULL: refused. */
static void host_rules_and_absolute_form(void **state)
{
    static const struct {
        const char *req, *head;
    } cases[] = {
        {"GET / HTTP/1.1\r\nX: 1\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", NULL},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", NULL},
        {"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", NULL},
        {"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", NULL},
        {"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", NULL},
        {"GET http://a/x HTTP/1.1\r\n\r\n", NULL}, /* HTTP/1.1: Host even then */
        {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nX-Test: 1\r\n\r\n"},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", "GET / HTTP/1.1\r\nHost: \r\nX-Test: 1\r\n\r\n"},
        {"OPTIONS * HTTP/1.1\r\nHost: a:80\r\n\r\n",
         "OPTIONS * HTTP/1.1\r\nHost: a:80\r\nX-Test: 1\r\n\r\n"},
        {"GET http://real.example:8080/p?q=1 HTTP/1.1\r\nX-A: 1\r\nHost: other\r\nX-B: 2\r\n\r\n",
         "GET /p?q=1 HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\nHost: real.example:8080\r\nX-Test: 1\r\n\r\n"},
        {"GET HTTPS://[::1]:8443?x HTTP/1.1\r\nHost: other\r\n\r\n",
         "GET /?x HTTP/1.1\r\nHost: [::1]:8443\r\nX-Test: 1\r\n\r\n"},
        {"GET http://a HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nX-Test: 1\r\n\r\n"},
    };
    struct result r;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 1; step <= strlen(cases[i].req); step++) {
            run(cases[i].req, step, HTTP_REQUEST, &r);
            if (cases[i].head == NULL) {
                if (r.errors != 1 || r.heads != 0)
                    fail_msg("case %zu, step %zu: not refused", i, step);
            } else if (r.heads != 1 || strcmp(r.head, cases[i].head) != 0) {
                fail_msg("case %zu, step %zu: head \"%s\"", i, step, r.head);
            }
        }
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

/* Feeds TEXT (one or more pipelined requests) in pieces of STEP bytes with KEY_HEADER set
 * and writes each request's http_msg_key_value, or "(none)", into KEYS (up to 4). Returns
 * how many request heads were seen. */
static int keys_of(const char *text, size_t step, const char *key_header, char keys[4][128])
{
    struct http_msg m;
    size_t len = strlen(text), off = 0;
    int heads = 0;

    http_msg_init(&m, HTTP_REQUEST, 1024);
    m.key_header = key_header;
    while (off < len && heads < 4) {
        size_t piece = len - off < step ? len - off : step;
        size_t n, blen, key_len;
        const char *body, *key;
        enum http_msg_event ev = http_msg_feed(&m, text + off, piece, &n, &body, &blen);
        off += n;
        assert_int_not_equal(ev, HTTP_MSG_ERROR);
        if (ev == HTTP_MSG_HEAD_DONE) {
            /* What the proxy does before it picks a server (the head may grow and move). */
            assert_int_equal(http_msg_head_append(&m, "X-Forwarded-For: 127.0.0.1\r\n", 28), 0);
            assert_int_equal(http_msg_head_end(&m), 0);
            key = http_msg_key_value(&m, &key_len);
            if (key == NULL) {
                assert_int_equal(key_len, 0);
                snprintf(keys[heads], 128, "(none)");
            } else {
                assert_true(key >= m.head && key + key_len <= m.head + m.head_len);
                snprintf(keys[heads], 128, "%.*s", (int)key_len, key);
            }
            heads++;
        } else if (ev == HTTP_MSG_COMPLETE) {
            http_msg_next(&m);
        }
    }
    http_msg_release(&m);
    return heads;
}

static void key_header_value(void **state)
{
    static const struct {
        const char *request, *key_header, *want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nX-User: alice\r\n\r\n", "X-User", "alice"},
        /* names match case-insensitively; the value is taken as it is */
        {"GET / HTTP/1.1\r\nx-uSER: Alice\r\nHost: a\r\n\r\n", "X-User", "Alice"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-USER: bob\r\n\r\n", "x-user", "bob"},
        /* surrounding spaces and tabs are not part of the key; inner ones are */
        {"GET / HTTP/1.1\r\nHost: a\r\nX-User: \t carol  dan \t \r\n\r\n", "X-User", "carol  dan"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-User:eve\r\n\r\n", "X-User", "eve"},
        /* absent, empty or blank: no key (the proxy hashes the client IP) */
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "X-User", "(none)"},
        {"GET / HTTP/1.1\r\nX-User:\r\nHost: a\r\n\r\n", "X-User", "(none)"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-User:   \r\n\r\n", "X-User", "(none)"},
        /* no key header configured */
        {"GET / HTTP/1.1\r\nHost: a\r\nX-User: alice\r\n\r\n", NULL, "(none)"},
        /* only the whole name matches */
        {"GET / HTTP/1.1\r\nHost: a\r\nX-Users: a\r\nX-Use: b\r\nX-User-Id: c\r\n\r\n", "X-User", "(none)"},
        /* repeated: the last one */
        {"GET / HTTP/1.1\r\nX-User: first\r\nHost: a\r\nX-User: last\r\n\r\n", "X-User", "last"},
        /* hop-by-hop headers are dropped from the head, so they are never a key */
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "Connection", "(none)"},
        /* a header named in Connection goes, before or after it: the key moves with its
         * line, or is gone with it */
        {"GET / HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-User: gina\r\nConnection: x-drop\r\n\r\n", "X-User",
         "gina"},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: a, X-User\r\nX-User: hal\r\n\r\n", "X-User", "(none)"},
        /* a dropped header right after the key header does not disturb it */
        {"GET / HTTP/1.1\r\nX-User: frank\r\nConnection: close\r\nHost: a\r\n\r\n", "X-User", "frank"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 1; step <= strlen(cases[i].request); step++) {
            char keys[4][128];
            assert_int_equal(keys_of(cases[i].request, step, cases[i].key_header, keys), 1);
            if (strcmp(keys[0], cases[i].want) != 0)
                fail_msg("case %zu, step %zu: key \"%s\", wanted \"%s\"", i, step, keys[0],
                         cases[i].want);
        }
    }
}

static void key_header_per_pipelined_request(void **state)
{
    const char *text = "GET /1 HTTP/1.1\r\nHost: a\r\nX-User: alice\r\n\r\n"
                       "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nx-user: bob\r\n\r\nhello"
                       "GET /4 HTTP/1.1\r\nHost: a\r\nX-User: carol\r\n\r\n";
    (void)state;
    for (size_t step = 1; step <= strlen(text); step++) {
        char keys[4][128];
        assert_int_equal(keys_of(text, step, "X-User", keys), 4);
        assert_string_equal(keys[0], "alice");
        assert_string_equal(keys[1], "(none)"); /* not the previous request's */
        assert_string_equal(keys[2], "bob");
        assert_string_equal(keys[3], "carol");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rebuilds_request_head_without_hop_by_hop),
        cmocka_unit_test(chunked_body_passes_raw),
        cmocka_unit_test(trailers_pass_raw_and_leave_the_head_alone),
        cmocka_unit_test(chunked_framing_is_strict),
        cmocka_unit_test(transfer_encoding_is_the_exact_name),
        cmocka_unit_test(response_with_length_and_status),
        cmocka_unit_test(bodiless_statuses_end_with_the_head),
        cmocka_unit_test(strips_what_connection_names),
        cmocka_unit_test(host_rules_and_absolute_form),
        cmocka_unit_test(refuses_bad_and_oversized_heads),
        cmocka_unit_test(key_header_value),
        cmocka_unit_test(key_header_per_pipelined_request),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_msg_free_cache();
    return rc;
}
