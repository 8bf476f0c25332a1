/* http_ref.c: the reference reading of an HTTP/1.x stream (see http_ref.h).
 *
 * The subset it judges (anything else is OUTSIDE):
 *   request-line = method SP target SP "HTTP/1." ("0" / "1") CRLF
 *                  method: GET HEAD POST PUT DELETE OPTIONS PATCH
 *                  target: "/" *( ALPHA / DIGIT / one of -._~!$&'()*+,;=:@/?% )
 *   status-line  = "HTTP/1." ("0" / "1") SP 3DIGIT SP *( ALPHA / DIGIT / SP ) CRLF
 *                  status 100-599, not 101
 *   field-line   = token ":" *( SP / HTAB ) value CRLF, at most 100 of them, the head at
 *                  most 3,000 bytes; no obs-fold, no bare CR or LF. A value byte that is
 *                  a control (other than HTAB) or DEL: REFUSE.
 *   framing      = at most one Transfer-Encoding, exactly "chunked" (any case); at most one
 *                  Content-Length (two: REFUSE), 1-18 digits (other text: REFUSE; digits
 *                  then spaces: OUTSIDE); both: REFUSE. No "upgrade" in Connection.
 *   chunked body = strict RFC 9112 7.1, judged to the byte: chunk-size (1-8 HEXDIG)
 *                  *(SP / HTAB) [";" ext] CRLF, data, CRLF; the last chunk's trailer lines
 *                  token ":" value CRLF (no control bytes, at most 2,048 bytes, none named
 *                  Connection, Content-Length, Transfer-Encoding, Upgrade, Keep-Alive or
 *                  TE), then CRLF. Anything else in the framing: REFUSE.
 *   a message starts right after the previous one (no empty lines between).
 *
 * What the proxy must make of it (src/se/http_msg.h, http_hop.h; RFC 9110 7.6.1, 9112):
 * the start line with "HTTP/1.1"; each field line as "name: value" (leading whitespace of
 * the value dropped, trailing kept), without Connection, Keep-Alive, Proxy-Connection, TE,
 * Upgrade and the names a Connection line lists (except Host, Content-Length,
 * Transfer-Encoding and "close"; over 32 such names or 512 bytes of them: REFUSE); a 1xx or
 * 204 also without Content-Length and Transfer-Encoding. Requests: HTTP/1.1 needs exactly
 * one Host, HTTP/1.0 at most one, its value (trailing whitespace dropped) of
 * ALPHA / DIGIT / -._~%!$&'()*+,;=:[] (else REFUSE). The body goes as the raw bytes. */
#include "http_ref.h"

#include <string.h>
#include <strings.h>

#define REF__HEAD_RAW_MAX 3000
#define REF__LINES_MAX 100
#define REF__TRAILERS_MAX 2048
#define REF__NAMES_MAX 32
#define REF__NAMES_BYTES 512

enum ref__status { REF__OK = 0, REF__REFUSE, REF__OUTSIDE, REF__SHORT, REF__REFUSE_BODY };

struct ref__line {
    size_t name, name_len, value, value_len; /* input offsets; value without leading OWS */
};

struct ref__head {
    size_t start_end;  /* offset just after the start line's CRLF */
    size_t method_len; /* requests: method at the start; target follows */
    size_t target, target_len;
    int minor;   /* HTTP/1.minor */
    int status;  /* responses */
    size_t reason, reason_len;
    struct ref__line lines[REF__LINES_MAX];
    size_t n;
    size_t end; /* just after the empty line */
};

struct ref__reader {
    const uint8_t *in;
    size_t len;
    const char *why;
};

static bool ref__tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A field value byte RFC 9110 5.5 allows (HTAB, SP, VCHAR, obs-text). */
static bool ref__value_byte(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ref__is(const uint8_t *s, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp((const char *)s, lit, len) == 0;
}

static int ref__fail(struct ref__reader *r, int status, const char *why)
{
    r->why = why;
    return status;
}

/* The request line at AT into H. */
static int ref__request_line(struct ref__reader *r, size_t at, struct ref__head *h)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                          "PATCH", NULL};
    const uint8_t *in = r->in;
    size_t i = at, m;

    while (i < r->len && in[i] >= 'A' && in[i] <= 'Z')
        i++;
    for (m = 0; methods[m] != NULL && !(i - at == strlen(methods[m]) &&
                                        memcmp(in + at, methods[m], i - at) == 0); m++)
        ;
    if (methods[m] == NULL || i >= r->len || in[i] != ' ')
        return ref__fail(r, REF__OUTSIDE, "method");
    h->method_len = i - at;
    h->target = ++i;
    if (i >= r->len || in[i] != '/')
        return ref__fail(r, REF__OUTSIDE, "target form");
    while (i < r->len && in[i] != ' ') {
        uint8_t c = in[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr("-._~!$&'()*+,;=:@/?%", c) != NULL)))
            return ref__fail(r, REF__OUTSIDE, "target byte");
        i++;
    }
    h->target_len = i - h->target;
    if (r->len - i < 11 || memcmp(in + i, " HTTP/1.", 8) != 0 || (in[i + 8] != '0' && in[i + 8] != '1') ||
        in[i + 9] != '\r' || in[i + 10] != '\n')
        return ref__fail(r, REF__OUTSIDE, "request line end");
    h->minor = in[i + 8] - '0';
    h->start_end = i + 11;
    return REF__OK;
}

static int ref__status_line(struct ref__reader *r, size_t at, struct ref__head *h)
{
    const uint8_t *in = r->in;
    size_t i;

    if (r->len - at < 13 || memcmp(in + at, "HTTP/1.", 7) != 0 ||
        (in[at + 7] != '0' && in[at + 7] != '1') || in[at + 8] != ' ' || in[at + 12] != ' ')
        return ref__fail(r, REF__OUTSIDE, "status line");
    h->minor = in[at + 7] - '0';
    h->status = 0;
    for (i = at + 9; i < at + 12; i++) {
        if (in[i] < '0' || in[i] > '9')
            return ref__fail(r, REF__OUTSIDE, "status digits");
        h->status = h->status * 10 + (in[i] - '0');
    }
    if (h->status < 100 || h->status > 599 || h->status == 101)
        return ref__fail(r, REF__OUTSIDE, "status value");
    h->reason = at + 13;
    for (i = h->reason; i < r->len && in[i] != '\r'; i++)
        if (!((in[i] >= 'a' && in[i] <= 'z') || (in[i] >= 'A' && in[i] <= 'Z') ||
              (in[i] >= '0' && in[i] <= '9') || in[i] == ' '))
            return ref__fail(r, REF__OUTSIDE, "reason byte");
    if (r->len - i < 2 || in[i + 1] != '\n')
        return ref__fail(r, REF__OUTSIDE, "status line end");
    h->reason_len = i - h->reason;
    h->start_end = i + 2;
    return REF__OK;
}

/* The field lines from H->start_end to the empty line. */
static int ref__fields(struct ref__reader *r, struct ref__head *h)
{
    const uint8_t *in = r->in;
    size_t i = h->start_end;
    bool refuse = false;

    h->n = 0;
    for (;;) {
        struct ref__line *l;
        if (i - h->start_end > REF__HEAD_RAW_MAX || r->len - i < 2)
            return ref__fail(r, REF__OUTSIDE, "head cut short or large");
        if (in[i] == '\r' && in[i + 1] == '\n')
            break;
        if (h->n == REF__LINES_MAX)
            return ref__fail(r, REF__OUTSIDE, "many lines");
        l = &h->lines[h->n++];
        l->name = i;
        while (i < r->len && ref__tchar(in[i]))
            i++;
        l->name_len = i - l->name;
        if (l->name_len == 0 || l->name_len > 64 || i >= r->len || in[i] != ':')
            return ref__fail(r, REF__OUTSIDE, "field name");
        i++;
        while (i < r->len && (in[i] == ' ' || in[i] == '\t'))
            i++;
        l->value = i;
        while (i < r->len && in[i] != '\r') {
            if (in[i] == '\n')
                return ref__fail(r, REF__OUTSIDE, "bare LF in the head");
            if (!ref__value_byte(in[i]))
                refuse = true;
            i++;
        }
        if (r->len - i < 3 || in[i + 1] != '\n')
            return ref__fail(r, REF__OUTSIDE, "field line end");
        if (in[i + 2] == ' ' || in[i + 2] == '\t')
            return ref__fail(r, REF__OUTSIDE, "obs-fold");
        l->value_len = i - l->value;
        i += 2;
    }
    h->end = i + 2;
    if (h->end - h->start_end > REF__HEAD_RAW_MAX)
        return ref__fail(r, REF__OUTSIDE, "head large");
    return refuse ? ref__fail(r, REF__REFUSE, "control byte in a field value") : REF__OK;
}

/* What a message's head says, judged. */
struct ref__meaning {
    bool chunked, close, keep_alive;
    bool has_length;
    unsigned long long length;
    size_t hosts, host; /* Host lines; the last one's index */
    /* the names the Connection lines list that take other lines away */
    size_t names[REF__NAMES_MAX + 1], names_len[REF__NAMES_MAX + 1], n_names, names_bytes;
};

static bool ref__always_hop(const uint8_t *name, size_t len)
{
    return ref__is(name, len, "connection") || ref__is(name, len, "keep-alive") ||
           ref__is(name, len, "proxy-connection") || ref__is(name, len, "te") ||
           ref__is(name, len, "upgrade");
}

static bool ref__protected(const uint8_t *name, size_t len)
{
    return ref__is(name, len, "host") || ref__is(name, len, "content-length") ||
           ref__is(name, len, "transfer-encoding") || ref__is(name, len, "close");
}

/* One Connection value's tokens into M. */
static int ref__connection(struct ref__reader *r, const struct ref__line *l, struct ref__meaning *m)
{
    const uint8_t *v = r->in + l->value;
    size_t i = 0;

    while (i < l->value_len) {
        size_t s, e;
        while (i < l->value_len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < l->value_len && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        if (ref__is(v + s, e - s, "upgrade"))
            return ref__fail(r, REF__OUTSIDE, "Connection: upgrade");
        if (ref__is(v + s, e - s, "close"))
            m->close = true;
        if (ref__is(v + s, e - s, "keep-alive"))
            m->keep_alive = true;
        if (ref__always_hop(v + s, e - s) || ref__protected(v + s, e - s))
            continue;
        if (m->n_names == REF__NAMES_MAX || m->names_bytes + (e - s) > REF__NAMES_BYTES)
            return ref__fail(r, REF__REFUSE, "Connection names too many names");
        m->names[m->n_names] = l->value + s;
        m->names_len[m->n_names++] = e - s;
        m->names_bytes += e - s;
    }
    return REF__OK;
}

static int ref__framing(struct ref__reader *r, const struct ref__line *l, struct ref__meaning *m,
                        bool *seen_te)
{
    const uint8_t *v = r->in + l->value;
    const uint8_t *name = r->in + l->name;
    size_t i;

    if (ref__is(name, l->name_len, "transfer-encoding")) {
        if (*seen_te || !ref__is(v, l->value_len, "chunked"))
            return ref__fail(r, REF__OUTSIDE, "transfer coding");
        *seen_te = true;
        m->chunked = true;
    } else if (ref__is(name, l->name_len, "content-length")) {
        if (m->has_length)
            return ref__fail(r, REF__REFUSE, "two Content-Length lines");
        m->has_length = true;
        m->length = 0;
        for (i = 0; i < l->value_len && v[i] >= '0' && v[i] <= '9'; i++)
            m->length = m->length * 10 + (unsigned)(v[i] - '0');
        if (i == 0 || i > 18) {
            if (i > 18)
                return ref__fail(r, REF__OUTSIDE, "long Content-Length");
            return ref__fail(r, REF__REFUSE, "Content-Length not a number");
        }
        if (i < l->value_len) {
            size_t j = i;
            while (j < l->value_len && v[j] == ' ')
                j++;
            return j == l->value_len ? ref__fail(r, REF__OUTSIDE, "Content-Length then spaces")
                                     : ref__fail(r, REF__REFUSE, "Content-Length not a number");
        }
    }
    return REF__OK;
}

static bool ref__host_valid(const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || (v[i] != 0 && strchr("-._~%!$&'()*+,;=:[]", v[i]))))
            return false;
    return true;
}

static int ref__meaning(struct ref__reader *r, const struct ref__head *h, bool response,
                        struct ref__meaning *m)
{
    bool seen_te = false;
    int rv;

    memset(m, 0, sizeof *m);
    for (size_t k = 0; k < h->n; k++) {
        const struct ref__line *l = &h->lines[k];
        const uint8_t *name = r->in + l->name;
        if (ref__is(name, l->name_len, "connection") && (rv = ref__connection(r, l, m)) != REF__OK)
            return rv;
        if ((rv = ref__framing(r, l, m, &seen_te)) != REF__OK)
            return rv;
        if (ref__is(name, l->name_len, "host")) {
            m->hosts++;
            m->host = k;
        }
    }
    if (m->chunked && m->has_length)
        return ref__fail(r, REF__REFUSE, "Content-Length and chunked");
    if (!response) {
        if (m->hosts > 1 || (m->hosts == 0 && h->minor == 1))
            return ref__fail(r, REF__REFUSE, "Host count");
        if (m->hosts == 1) {
            const struct ref__line *l = &h->lines[m->host];
            size_t n = l->value_len;
            while (n > 0 && (r->in[l->value + n - 1] == ' ' || r->in[l->value + n - 1] == '\t'))
                n--;
            if (!ref__host_valid(r->in + l->value, n))
                return ref__fail(r, REF__REFUSE, "Host value");
        }
    }
    return REF__OK;
}

static bool ref__named(const struct ref__reader *r, const struct ref__meaning *m,
                       const uint8_t *name, size_t len)
{
    for (size_t k = 0; k < m->n_names; k++)
        if (m->names_len[k] == len && strncasecmp((const char *)r->in + m->names[k],
                                                  (const char *)name, len) == 0)
            return true;
    return false;
}

static void ref__put(struct http_ref_msg *out, const void *s, size_t len)
{
    if (out->head_len + len <= sizeof out->head) {
        memcpy(out->head + out->head_len, s, len);
        out->head_len += len;
    }
}

/* The head the proxy must send, and the key value, into OUT. */
static void ref__rebuild(const struct ref__reader *r, const struct ref__head *h, bool response,
                         const struct ref__meaning *m, struct http_ref_msg *out)
{
    bool framing = response && (h->status / 100 == 1 || h->status == 204);

    out->head_len = 0;
    out->key_len = 0;
    if (response) {
        char line[16] = "HTTP/1.1 000 ";
        line[9] = (char)('0' + h->status / 100);
        line[10] = (char)('0' + h->status / 10 % 10);
        line[11] = (char)('0' + h->status % 10);
        ref__put(out, line, 13);
        ref__put(out, r->in + h->reason, h->reason_len);
    } else {
        ref__put(out, r->in + h->target - h->method_len - 1, h->method_len + 1 + h->target_len);
        ref__put(out, " HTTP/1.1", 9);
    }
    ref__put(out, "\r\n", 2);
    for (size_t k = 0; k < h->n; k++) {
        const struct ref__line *l = &h->lines[k];
        const uint8_t *name = r->in + l->name;
        if (ref__always_hop(name, l->name_len) ||
            (framing && (ref__is(name, l->name_len, "content-length") ||
                         ref__is(name, l->name_len, "transfer-encoding"))) ||
            (!ref__protected(name, l->name_len) && ref__named(r, m, name, l->name_len)))
            continue;
        ref__put(out, name, l->name_len);
        ref__put(out, ": ", 2);
        ref__put(out, r->in + l->value, l->value_len);
        ref__put(out, "\r\n", 2);
        if (ref__is(name, l->name_len, "x-hash")) {
            const uint8_t *v = r->in + l->value;
            size_t n = l->value_len;
            while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
                v++;
                n--;
            }
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            memcpy(out->key, v, n);
            out->key_len = n;
        }
    }
}

/* A CRLF at *AT: REF__OK (moved past it), REF__SHORT, or REFUSE. */
static int ref__crlf(struct ref__reader *r, size_t *at, const char *why)
{
    if (*at >= r->len || (r->in[*at] == '\r' && *at + 1 >= r->len))
        return REF__SHORT;
    if (r->in[*at] != '\r' || r->in[*at + 1] != '\n')
        return ref__fail(r, REF__REFUSE, why);
    *at += 2;
    return REF__OK;
}

/* The trailer section from *AT (after the last chunk's line) through its empty line. */
static int ref__trailers(struct ref__reader *r, size_t *at)
{
    const uint8_t *in = r->in;
    size_t i = *at, from = *at;
    int rv;

    for (;;) {
        size_t name;
        if (i - from > REF__TRAILERS_MAX)
            return ref__fail(r, REF__OUTSIDE, "large trailers");
        if (i >= r->len)
            return REF__SHORT;
        if (in[i] == '\r') {
            if ((rv = ref__crlf(r, &i, "trailer section end")) != REF__OK)
                return rv;
            *at = i;
            return REF__OK;
        }
        name = i;
        while (i < r->len && ref__tchar(in[i]))
            i++;
        if (i >= r->len)
            return REF__SHORT;
        if (i == name || in[i] != ':')
            return ref__fail(r, REF__REFUSE, "trailer field name");
        if (ref__is(in + name, i - name, "connection") || ref__is(in + name, i - name, "content-length") ||
            ref__is(in + name, i - name, "transfer-encoding") || ref__is(in + name, i - name, "upgrade") ||
            ref__is(in + name, i - name, "keep-alive") || ref__is(in + name, i - name, "te"))
            return ref__fail(r, REF__OUTSIDE, "framing trailer");
        for (i++; i < r->len && in[i] != '\r'; i++)
            if (!ref__value_byte(in[i]))
                return ref__fail(r, REF__REFUSE, "trailer value byte");
        if ((rv = ref__crlf(r, &i, "trailer line end")) != REF__OK)
            return rv;
    }
}

/* A chunked body from *AT: REF__OK with *AT at its end, REF__SHORT, REFUSE or OUTSIDE. */
static int ref__chunked(struct ref__reader *r, size_t *at)
{
    const uint8_t *in = r->in;
    size_t i = *at;
    int rv;

    for (;;) {
        unsigned long size = 0;
        size_t digits = 0;
        while (i < r->len && digits <= 8) {
            uint8_t c = in[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                break;
            size = size * 16 + (unsigned)d;
            digits++;
            i++;
        }
        if (digits > 8)
            return ref__fail(r, REF__OUTSIDE, "long chunk size");
        if (i >= r->len)
            return REF__SHORT;
        if (digits == 0)
            return ref__fail(r, REF__REFUSE, "chunk size");
        if (in[i] == '\t')
            return ref__fail(r, REF__OUTSIDE, "HTAB after a chunk size (http-parser refuses it)");
        while (i < r->len && (in[i] == ' ' || in[i] == '\t'))
            i++;
        if (i < r->len && in[i] == ';') {
            while (i < r->len && in[i] != '\r') {
                if (!ref__value_byte(in[i]))
                    return ref__fail(r, REF__REFUSE, "chunk extension byte");
                i++;
            }
        }
        if ((rv = ref__crlf(r, &i, "chunk line end")) != REF__OK)
            return rv;
        if (size == 0) {
            if ((rv = ref__trailers(r, &i)) != REF__OK)
                return rv;
            *at = i;
            return REF__OK;
        }
        if (r->len - i < size)
            return REF__SHORT;
        i += size;
        if ((rv = ref__crlf(r, &i, "chunk data end")) != REF__OK)
            return rv;
    }
}

/* One message at AT into OUT. REF__OK (complete or cut in its body: OUT->complete says),
 * REFUSE or OUTSIDE (a head cut short is OUTSIDE). */
static int ref__message(struct ref__reader *r, size_t at, bool response, bool head_request,
                        struct http_ref_msg *out)
{
    static struct ref__head h;
    struct ref__meaning m;
    bool skip;
    int rv;

    out->start = out->head_end = out->end = 0;
    out->head_len = out->key_len = 0;
    out->complete = out->until_eof = out->last = false;
    out->start = at;
    rv = response ? ref__status_line(r, at, &h) : ref__request_line(r, at, &h);
    if (rv == REF__OK)
        rv = ref__fields(r, &h);
    if (rv == REF__OK)
        rv = ref__meaning(r, &h, response, &m);
    if (rv != REF__OK)
        return rv;
    ref__rebuild(r, &h, response, &m, out);
    out->head_end = h.end;
    skip = response && (head_request || h.status / 100 == 1 || h.status == 204 || h.status == 304);
    out->end = h.end;
    out->complete = true;
    if (skip) {
        /* no body */
    } else if (m.chunked) {
        size_t end = h.end;
        rv = ref__chunked(r, &end);
        if (rv == REF__SHORT) {
            out->complete = false;
            end = r->len;
        } else if (rv != REF__OK) {
            return rv == REF__REFUSE ? REF__REFUSE_BODY : rv;
        }
        out->end = end;
    } else if (m.has_length) {
        if (r->len - h.end < m.length) {
            out->complete = false;
            out->end = r->len;
        } else {
            out->end = h.end + m.length;
        }
    } else if (response) {
        out->until_eof = true;
        out->end = r->len;
    }
    out->last = out->until_eof || (h.minor == 1 ? m.close : !m.keep_alive);
    return REF__OK;
}

void http_ref_read(const uint8_t *in, size_t len, bool response, bool head_request,
                   struct http_ref_result *res)
{
    struct ref__reader r = {in, len, NULL};
    size_t at = 0;

    res->verdict = HTTP_REF_ACCEPT;
    res->n = 0;
    res->why = NULL;
    res->refused_in_body = false;
    while (at < len && res->n < HTTP_REF_MSGS_MAX) {
        struct http_ref_msg *msg = &res->msgs[res->n];
        int rv = ref__message(&r, at, response, head_request, msg);
        if (rv != REF__OK) {
            res->verdict = rv == REF__OUTSIDE ? HTTP_REF_OUTSIDE : HTTP_REF_REFUSE;
            res->refused_in_body = rv == REF__REFUSE_BODY;
            res->why = r.why;
            return;
        }
        res->n++;
        if (!msg->complete || msg->last)
            return;
        at = msg->end;
    }
}
