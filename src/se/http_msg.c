/* http_msg.c: HTTP/1.x parsing with head rebuilding and raw body spans. */
#include "se/http_msg.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "se/http_hop.h"

#define HTTP_MSG__BUF_SMALL 4096
#define HTTP_MSG__CACHE_MAX 256
#define HTTP_MSG__AUTHORITY_MAX 512

static char *http_msg__cache[HTTP_MSG__CACHE_MAX];
static size_t http_msg__cache_len;

enum { HTTP_MSG__CB_NONE = 0, HTTP_MSG__CB_START, HTTP_MSG__CB_FIELD, HTTP_MSG__CB_VALUE };

static int http_msg__reserve(struct http_msg *m, size_t extra)
{
    size_t need = (size_t)m->head_len + extra + 1;
    char *p;
    size_t cap;

    if (need <= m->head_cap)
        return 0;
    if (m->head == NULL && need <= HTTP_MSG__BUF_SMALL && http_msg__cache_len > 0) {
        m->head = http_msg__cache[--http_msg__cache_len];
        m->head_cap = HTTP_MSG__BUF_SMALL;
        return 0;
    }
    cap = m->head_cap ? m->head_cap : HTTP_MSG__BUF_SMALL;
    while (cap < need)
        cap *= 2;
    p = realloc(m->head, cap);
    if (p == NULL)
        return VIGIL_ENOMEM;
    m->head = p;
    m->head_cap = (uint32_t)cap;
    return 0;
}

static int http_msg__put(struct http_msg *m, const char *s, size_t len)
{
    if (http_msg__reserve(m, len) != 0) {
        m->error = HTTP_MSG_ERR_NOMEM;
        return -1;
    }
    memcpy(m->head + m->head_len, s, len);
    m->head_len += (uint32_t)len;
    m->head[m->head_len] = '\0';
    return 0;
}

void http_msg_release(struct http_msg *m)
{
    if (m->head != NULL) {
        if (m->head_cap == HTTP_MSG__BUF_SMALL && http_msg__cache_len < HTTP_MSG__CACHE_MAX)
            http_msg__cache[http_msg__cache_len++] = m->head;
        else
            free(m->head);
    }
    m->head = NULL;
    m->head_cap = 0;
    m->head_len = 0;
}

void http_msg_free_cache(void)
{
    while (http_msg__cache_len > 0)
        free(http_msg__cache[--http_msg__cache_len]);
}

static void http_msg__reset(struct http_msg *m)
{
    m->head_len = 0;
    if (m->head)
        m->head[0] = '\0';
    m->raw_head_len = 0;
    m->field_start = 0;
    m->url_off = m->url_len = 0;
    m->method_len = 0;
    m->key_off = m->key_len = 0;
    m->last_cb = HTTP_MSG__CB_NONE;
    m->fields_off = 0;
    m->key_match = 0;
    m->hosts = 0;
    m->host_match = 0;
    m->body_announced = 0;
    m->host_off = m->host_len = 0;
    m->phase = HTTP_MSG_PHASE_HEAD;
    m->skip_lf = 0;
    m->error = HTTP_MSG_ERR_NONE;
    m->started = 0;
    m->chunked_check = 0;
    m->te_lines = 0;
    m->te_match = 0;
    m->te_off = m->te_len = 0;
}

void http_msg_init(struct http_msg *m, enum http_parser_type type, uint32_t head_limit)
{
    memset(m, 0, sizeof *m);
    http_parser_init(&m->parser, type);
    m->parser.data = m;
    m->head_limit = head_limit;
    http_msg__reset(m);
}

void http_msg_next(struct http_msg *m)
{
    uint8_t no_body = m->no_body;
    http_msg__reset(m);
    m->no_body = no_body;
}

/* Writes the start line's opening part on the first url / status piece. */
static int http_msg__start_line(struct http_msg *m)
{
    char tmp[32];
    int n;

    if (m->last_cb != HTTP_MSG__CB_NONE)
        return 0;
    if (m->parser.type == HTTP_REQUEST) {
        const char *method = http_method_str((enum http_method)m->parser.method);
        m->method_len = (uint32_t)strlen(method);
        if (http_msg__put(m, method, m->method_len) != 0 || http_msg__put(m, " ", 1) != 0)
            return -1;
        m->url_off = m->head_len;
    } else {
        n = snprintf(tmp, sizeof tmp, "HTTP/1.1 %03u ", m->parser.status_code % 1000);
        if (http_msg__put(m, tmp, (size_t)n) != 0)
            return -1;
    }
    m->last_cb = HTTP_MSG__CB_START;
    return 0;
}

/* Ends the start line (when the first header or the end of the head comes). */
static int http_msg__end_start_line(struct http_msg *m)
{
    if (m->last_cb == HTTP_MSG__CB_NONE && http_msg__start_line(m) != 0)
        return -1;
    if (m->parser.type == HTTP_REQUEST) {
        m->url_len = m->head_len - m->url_off;
        if (http_msg__put(m, " HTTP/1.1\r\n", 11) != 0)
            return -1;
    } else if (http_msg__put(m, "\r\n", 2) != 0) {
        return -1;
    }
    m->fields_off = m->head_len;
    return 0;
}

static int http_msg__over_limit(struct http_msg *m, size_t more)
{
    if ((size_t)m->head_len + more > m->head_limit) {
        m->error = HTTP_MSG_ERR_TOO_LARGE;
        return 1;
    }
    return 0;
}

static int http_msg__on_begin(http_parser *p)
{
    struct http_msg *m = p->data;
    m->started = 1;
    return 0;
}

static int http_msg__on_start_data(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = p->data;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            m->error = HTTP_MSG_ERR_SYNTAX;
            return -1;
        }
    }
    if (http_msg__over_limit(m, len) || http_msg__start_line(m) != 0)
        return -1;
    return http_msg__put(m, at, len);
}

/* A response whose status allows no body at all (1xx, 204): RFC 9110 8.6 and RFC 9112 6.1
 * forbid it a Content-Length or Transfer-Encoding. */
static bool http_msg__bodiless_status(const struct http_msg *m)
{
    unsigned status = m->parser.status_code;
    return m->parser.type == HTTP_RESPONSE && (status / 100 == 1 || status == 204);
}


/* Trailer fields (a chunked body's last part) come through the same callbacks in the BODY
 * phase: they are body bytes, forwarded raw in the body span, and never touch the head
 * (which may already be on its way, or waiting to go with these very bytes). */
static int http_msg__on_field(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = p->data;

    if (m->phase != HTTP_MSG_PHASE_HEAD)
        return 0;
    if (http_msg__over_limit(m, len))
        return -1;
    if (m->last_cb != HTTP_MSG__CB_FIELD) {
        if (m->last_cb == HTTP_MSG__CB_VALUE) {
            if (http_msg__put(m, "\r\n", 2) != 0)
                return -1;
        } else if (http_msg__end_start_line(m) != 0) {
            return -1;
        }
        m->field_start = m->head_len;
    }
    m->last_cb = HTTP_MSG__CB_FIELD;
    return http_msg__put(m, at, len);
}

static int http_msg__on_value(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = p->data;

    if (m->phase != HTTP_MSG_PHASE_HEAD)
        return 0; /* a trailer field's value: see http_msg__on_field */
    if (http_msg__over_limit(m, len + 2))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            m->error = HTTP_MSG_ERR_SYNTAX; /* control bytes (NUL, bare CR) in a value */
            return -1;
        }
    }
    if (m->last_cb == HTTP_MSG__CB_FIELD) {
        const char *name = m->head + m->field_start;
        size_t name_len = m->head_len - m->field_start;
        m->key_match = m->key_header != NULL && strlen(m->key_header) == name_len &&
                       strncasecmp(name, m->key_header, name_len) == 0;
        m->host_match = m->parser.type == HTTP_REQUEST && name_len == 4 &&
                        strncasecmp(name, "host", 4) == 0;
        /* http-parser 2.9 marks a message as using Transfer-Encoding as soon as a name
         * starts with it ("Transfer-Encoding-X: 1" too), then refuses such a request and
         * reads such a response until close: the mark is the exact name's alone */
        m->te_match = name_len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0;
        m->te_lines += m->te_match && m->te_lines < UINT8_MAX;
        m->parser.uses_transfer_encoding = m->te_lines > 0;
        /* NAME points into the head, which the put may move */
        if (http_msg__put(m, ": ", 2) != 0)
            return -1;
        if (m->key_match) {
            m->key_off = m->head_len;
            m->key_len = 0;
        }
        if (m->te_match) {
            m->te_off = m->head_len;
            m->te_len = 0;
        }
        if (m->host_match) {
            m->hosts += m->hosts < UINT8_MAX;
            m->host_off = m->head_len;
            m->host_len = 0;
        }
    }
    m->last_cb = HTTP_MSG__CB_VALUE;
    if (m->key_match)
        m->key_len += (uint32_t)len;
    if (m->host_match)
        m->host_len += (uint32_t)len;
    if (m->te_match)
        m->te_len += (uint32_t)len;
    return http_msg__put(m, at, len);
}

/* Rewrites the absolute-form target of M's request (AUTH, PATH_OFF: from
 * http_hop_absolute) in origin form (its path and query, "/" when it has no path), and
 * makes its authority the one Host line (RFC 9112 3.2.2: a proxy generates Host from such
 * a target). KEY follows the bytes it covers (the new Host when M's key header is Host).
 * Returns 0, or -1 with M->error set (an authority over HTTP_MSG__AUTHORITY_MAX, memory). */
static int http_msg__origin_form(struct http_msg *m, struct http_hop_span auth, uint32_t path_off,
                                 struct http_hop_span *key)
{
    char authority[HTTP_MSG__AUTHORITY_MAX];
    char *t = m->head + m->url_off;
    bool slash = path_off == m->url_len || t[path_off] != '/';
    uint32_t drop = path_off - (slash ? 1 : 0);

    if (auth.len >= sizeof authority) {
        m->error = HTTP_MSG_ERR_SYNTAX;
        return -1;
    }
    memcpy(authority, t + auth.off, auth.len);
    memmove(t + (slash ? 1 : 0), t + path_off, m->head_len - (m->url_off + path_off) + 1);
    if (slash)
        t[0] = '/';
    m->head_len -= drop;
    m->url_len -= drop;
    m->fields_off -= drop;
    if (key->len > 0)
        key->off -= drop;
    /* cannot fail: the Connection lines, the only source of names, are gone already */
    (void)http_hop_strip(m->head, &m->head_len, m->fields_off, HTTP_HOP_HOST, key);
    if (http_msg__put(m, "Host: ", 6) != 0)
        return -1;
    if (m->key_header != NULL && strcasecmp(m->key_header, "host") == 0) {
        key->off = m->head_len;
        key->len = auth.len;
    }
    if (http_msg__put(m, authority, auth.len) != 0 || http_msg__put(m, "\r\n", 2) != 0)
        return -1;
    return 0;
}

/* The Host rules of RFC 9112 3.2 for M's complete request head, before the hop-by-hop
 * lines go (the Host span is as read): an HTTP/1.1 request without Host, one with more
 * than one, or with an invalid value, or an absolute-form target that is not http(s) with a
 * valid authority, is refused (-1, M->error set: the proxy answers 400). Returns 1 for an
 * absolute-form target (*AUTH and *PATH_OFF from http_hop_absolute, for
 * http_msg__origin_form), 0 for the others. */
static int http_msg__request_host(struct http_msg *m, struct http_hop_span *auth,
                                  uint32_t *path_off)
{
    const char *host = m->head + m->host_off;
    size_t host_len = m->host_len;
    int form = m->parser.method == HTTP_CONNECT
                   ? 0
                   : http_hop_absolute(m->head + m->url_off, m->url_len, auth, path_off);
    bool http11 = m->parser.http_major == 1 && m->parser.http_minor == 1;

    while (host_len > 0 && (host[host_len - 1] == ' ' || host[host_len - 1] == '\t'))
        host_len--;
    if (form < 0 || m->hosts > 1 || (m->hosts == 0 && http11) ||
        (m->hosts == 1 && !http_hop_host_valid(host, host_len))) {
        m->error = HTTP_MSG_ERR_SYNTAX;
        return -1;
    }
    return form;
}

/* Whether the Transfer-Encoding value V (LEN bytes) ends with the chunked coding. */
static bool http_msg__ends_chunked(const char *v, size_t len)
{
    size_t start;

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    start = len;
    while (start > 0 && v[start - 1] != ',')
        start--;
    while (start < len && (v[start] == ' ' || v[start] == '\t'))
        start++; /* the last comma-separated coding, without its whitespace */
    return len - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
}

/* Every line is in: the hop-by-hop ones (and a bodiless status's framing) leave the head,
 * the key header's value moving with its line; a request's Host is checked (and made from
 * an absolute-form target). */
static int http_msg__on_headers_complete(http_parser *p)
{
    struct http_msg *m = p->data;
    struct http_hop_span key, auth = {0, 0};
    uint32_t path_off = 0;
    int form = 0;

    if (m->last_cb == HTTP_MSG__CB_VALUE) {
        if (http_msg__put(m, "\r\n", 2) != 0)
            return -1;
    } else if (m->last_cb == HTTP_MSG__CB_FIELD) {
        return -1; /* a field without a value: http_parser does not let this through */
    } else if (http_msg__end_start_line(m) != 0) {
        return -1;
    }
    if (m->parser.type == HTTP_REQUEST &&
        (form = http_msg__request_host(m, &auth, &path_off)) < 0)
        return -1;
    /* http-parser 2.9 clears its chunked mark on any name that starts with
     * "Transfer-Encoding" ("Transfer-Encoding-X: 1" after "Transfer-Encoding: chunked"):
     * the body's framing is the last exact Transfer-Encoding line's, decided after this
     * callback returns */
    if (m->te_lines > 0 && http_msg__ends_chunked(m->head + m->te_off, m->te_len))
        m->parser.flags |= F_CHUNKED;
    else
        m->parser.flags &= (unsigned)~F_CHUNKED & 0xff;
    key.off = m->key_off;
    key.len = m->key_len;
    if (http_hop_strip(m->head, &m->head_len, m->fields_off,
                       http_msg__bodiless_status(m) ? HTTP_HOP_FRAMING : 0, &key) != 0) {
        m->error = HTTP_MSG_ERR_SYNTAX; /* too many names in Connection */
        return -1;
    }
    if (form == 1 && http_msg__origin_form(m, auth, path_off, &key) != 0)
        return -1;
    m->key_off = key.off;
    m->key_len = key.len;
    http_parser_pause(p, 1);
    /* 1 skips the body: a response to HEAD, or a 1xx, 204 or 304, ends with its head
     * whatever Content-Length or Transfer-Encoding it carries (RFC 9112 6.3); bytes after
     * it are not its body (the proxy does not reuse a connection that sent some) */
    if (m->parser.type == HTTP_RESPONSE &&
        (m->no_body || http_msg__bodiless_status(m) || m->parser.status_code == 304)) {
        m->body_announced = http_msg__bodiless_status(m) &&
                            (m->parser.uses_transfer_encoding ||
                             (m->parser.content_length != ULLONG_MAX &&
                              m->parser.content_length > 0));
        return 1;
    }
    if (m->parser.flags & F_CHUNKED) {
        m->chunked_check = 1;
        http_chunked_init(&m->chunked);
    }
    return 0;
}

static int http_msg__on_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings http_msg__settings = {
    .on_message_begin = http_msg__on_begin,
    .on_url = http_msg__on_start_data,
    .on_status = http_msg__on_start_data,
    .on_header_field = http_msg__on_field,
    .on_header_value = http_msg__on_value,
    .on_headers_complete = http_msg__on_headers_complete,
    .on_message_complete = http_msg__on_complete,
};

/* Reads a chunked body's next raw span BODY (LEN bytes) strictly: 0 when its framing is
 * valid and ends exactly where http-parser ended the message (or neither ended it yet), -1
 * otherwise (http_chunked.h says why the SE does not trust http-parser's framing alone). */
static int http_msg__chunked_framing(struct http_msg *m, const char *body, size_t len)
{
    size_t used;
    int rv = http_chunked_scan(&m->chunked, body, len, &used);

    if (rv < 0)
        return -1;
    if (m->phase == HTTP_MSG_PHASE_DONE)
        return rv == 1 && used == len ? 0 : -1;
    return rv == 0 ? 0 : -1;
}

enum http_msg_event http_msg_feed(struct http_msg *m, const char *data, size_t len,
                                  size_t *consumed, const char **body, size_t *body_len)
{
    size_t n;
    enum http_errno err;

    *consumed = 0;
    *body = data;
    *body_len = 0;
    if (m->error != HTTP_MSG_ERR_NONE || m->phase == HTTP_MSG_PHASE_DONE)
        return HTTP_MSG_ERROR;
    n = http_parser_execute(&m->parser, &http_msg__settings, data, len);
    err = HTTP_PARSER_ERRNO(&m->parser);
    if (m->phase == HTTP_MSG_PHASE_HEAD) {
        m->raw_head_len += (uint32_t)n;
        if (err == HPE_PAUSED) {
            /* Paused in on_headers_complete: DATA[n] is the head's final LF, which the
             * parser must see again; it counts as head, not body. */
            http_parser_pause(&m->parser, 0);
            m->phase = HTTP_MSG_PHASE_BODY;
            m->skip_lf = 1;
            m->raw_head_len += 1;
            *consumed = n;
            return HTTP_MSG_HEAD_DONE;
        }
        if (err != HPE_OK) {
            if (m->error == HTTP_MSG_ERR_NONE)
                m->error = HTTP_MSG_ERR_SYNTAX;
            return HTTP_MSG_ERROR;
        }
        *consumed = n;
        if (m->raw_head_len > m->head_limit) {
            m->error = HTTP_MSG_ERR_TOO_LARGE;
            return HTTP_MSG_ERROR;
        }
        return HTTP_MSG_NEED_MORE;
    }
    /* BODY phase */
    if (err == HPE_PAUSED) {
        http_parser_pause(&m->parser, 0);
        m->phase = HTTP_MSG_PHASE_DONE;
    } else if (err != HPE_OK) {
        m->error = HTTP_MSG_ERR_SYNTAX;
        return HTTP_MSG_ERROR;
    } else if (len == 0) {
        /* EOF without completion (a read-until-close body ends with message_complete,
         * which pauses above) */
        m->error = HTTP_MSG_ERR_SYNTAX;
        return HTTP_MSG_ERROR;
    }
    *consumed = n;
    if (m->skip_lf && n > 0) {
        *body = data + 1;
        *body_len = n - 1;
        m->skip_lf = 0;
    } else {
        *body = data;
        *body_len = n;
    }
    if (m->chunked_check && http_msg__chunked_framing(m, *body, *body_len) != 0) {
        *body_len = 0;
        m->error = HTTP_MSG_ERR_SYNTAX;
        return HTTP_MSG_ERROR;
    }
    return m->phase == HTTP_MSG_PHASE_DONE ? HTTP_MSG_COMPLETE : HTTP_MSG_NEED_MORE;
}

char *http_msg_take_header(struct http_msg *m, const char *name)
{
    char *values = malloc((size_t)m->head_len + 1);
    struct http_hop_span key = {m->key_off, m->key_len};

    if (values == NULL)
        return NULL;
    (void)http_hop_take(m->head, &m->head_len, m->fields_off, name, values,
                        (size_t)m->head_len + 1, &key);
    m->key_off = key.off;
    m->key_len = key.len;
    m->host_off = m->host_len = 0; /* read only while the head is checked, before this */
    return values;
}

int http_msg_head_append(struct http_msg *m, const char *text, size_t len)
{
    return http_msg__put(m, text, len) == 0 ? 0 : VIGIL_ENOMEM;
}

int http_msg_head_end(struct http_msg *m)
{
    return http_msg__put(m, "\r\n", 2) == 0 ? 0 : VIGIL_ENOMEM;
}

const char *http_msg_key_value(const struct http_msg *m, size_t *len)
{
    const char *v;
    size_t n;

    *len = 0;
    if (m->key_header == NULL || m->head == NULL || m->key_len == 0 ||
        (uint64_t)m->key_off + m->key_len > m->head_len)
        return NULL;
    v = m->head + m->key_off;
    n = m->key_len;
    while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return v;
}

bool http_msg_needs_eof(const struct http_msg *m)
{
    const http_parser *p = &m->parser;

    if (p->type == HTTP_REQUEST)
        return false;
    if (p->status_code / 100 == 1 || p->status_code == 204 || p->status_code == 304 ||
        (p->flags & F_SKIPBODY) || m->no_body)
        return false;
    if (p->uses_transfer_encoding && !(p->flags & F_CHUNKED))
        return true;
    if ((p->flags & F_CHUNKED) || p->content_length != ULLONG_MAX)
        return false;
    return true;
}
