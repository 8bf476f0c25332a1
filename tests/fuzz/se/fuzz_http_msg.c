/* libFuzzer target for the request path of vigil-se: bytes from a client (and from a
 * server) through http_msg (parsing, head rebuilding, raw body spans), fed in pieces whose
 * sizes come from the input itself, as reads would split them; then the log record
 * encoding of what was parsed. Checks the invariants the proxy relies on.
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "se/http_msg.h"
#include "se/log_record.h"

static void fuzz__direction(const uint8_t *data, size_t size, enum http_parser_type type,
                            unsigned step_seed)
{
    static char line[LOG_RECORD_LINE_MAX];
    struct http_msg m;
    size_t off = 0;
    unsigned messages = 0;

    http_msg_init(&m, type, 4096);
    m.key_header = "x-hash";
    while (off < size && messages < 64) {
        size_t step = 1 + (step_seed = step_seed * 1103515245u + 12345u) % 700;
        size_t piece = size - off < step ? size - off : step;
        size_t n, blen;
        const char *body;
        enum http_msg_event ev = http_msg_feed(&m, (const char *)data + off, piece, &n, &body,
                                               &blen);
        assert(n <= piece);
        assert(blen <= n);
        assert(body >= (const char *)data + off && body + blen <= (const char *)data + off + n);
        off += n;
        if (ev == HTTP_MSG_ERROR)
            break;
        if (ev == HTTP_MSG_HEAD_DONE) {
            assert(m.head != NULL && m.head_len <= m.head_limit + 64);
            assert(strlen(m.head) == m.head_len);
            assert(m.url_off + m.url_len <= m.head_len);
            assert(m.key_off + m.key_len <= m.head_len);
            {
                size_t key_len;
                const char *key = http_msg_key_value(&m, &key_len);
                assert(key == NULL ? key_len == 0
                                   : key_len > 0 && key >= m.head &&
                                         key + key_len <= m.head + m.head_len &&
                                         key[0] != ' ' && key[key_len - 1] != ' ');
            }
            /* the rebuilt head never carries a bare CR or LF inside a line */
            if (http_msg_head_append(&m, "X-Forwarded-For: 127.0.0.1\r\n", 28) != 0 ||
                http_msg_head_end(&m) != 0)
                break;
            assert(m.head_len >= 4 && memcmp(m.head + m.head_len - 4, "\r\n\r\n", 4) == 0);
            if (type == HTTP_REQUEST) {
                struct log_record r;
                memset(&r, 0, sizeof r);
                r.method = "GET";
                r.uri = m.head + m.url_off;
                r.uri_len = m.url_len;
                size_t len = log_record_encode(&r, line, sizeof line);
                assert(len > 0 && line[len - 1] == '\n');
                assert(memchr(line, '\n', len - 1) == NULL);
            }
            (void)http_msg_needs_eof(&m);
        } else if (ev == HTTP_MSG_COMPLETE) {
            messages++;
            http_msg_next(&m);
        } else if (n == 0) {
            break; /* NEED_MORE consumed nothing: cannot happen, but never spin */
        }
    }
    if (m.phase == HTTP_MSG_PHASE_BODY) {
        size_t n, blen;
        const char *body;
        (void)http_msg_feed(&m, "", 0, &n, &body, &blen); /* the peer closes */
    }
    http_msg_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned seed = size > 0 ? data[0] : 0;
    fuzz__direction(data, size, HTTP_REQUEST, seed);
    fuzz__direction(data, size, HTTP_RESPONSE, seed ^ 0x5a);
    return 0;
}
