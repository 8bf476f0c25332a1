/* http_drive.c: http_msg against the reference reading, as the proxy uses it (http_drive.h). */
#include "http_drive.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_ref.h"
#include "se/http_msg.h"
#include "se/log_record.h"

#define DRIVE__XFF "X-Forwarded-For: 127.0.0.1\r\n"

static struct http_ref_result drive__ref;

/* One pass of the input through one http_msg: what went out, per message. */
struct drive__run {
    const uint8_t *data;
    size_t size;
    bool response, head_request;
    const char *mode;
    struct http_msg m;
    char *out;                 /* every byte sent on, in order */
    size_t out_len, out_cap;
    size_t msg_out[HTTP_REF_MSGS_MAX + 1]; /* where each message's bytes start in out */
    size_t done;               /* messages complete */
    bool in_body;              /* the current message's head is done */
    bool head_pending;         /* its head waits for body bytes or the read's end */
    char head_closed[8192];    /* its head as closed at HEAD_DONE */
    size_t head_closed_len;
    bool errored;              /* http_msg refused (before the end of input) */
    size_t error_msg;          /* in which message */
    bool claims_over;          /* past what the reference judged: invariants only */
};

static void drive__escape(const char *what, const void *p, size_t len)
{
    const unsigned char *s = p;
    fprintf(stderr, "  %s (%zu bytes): \"", what, len);
    for (size_t i = 0; i < len && i < 600; i++)
        fprintf(stderr, s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? "%c" : "\\x%02x",
                s[i]);
    fprintf(stderr, "%s\"\n", len > 600 ? "..." : "");
}

static void drive__fail(const struct drive__run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void drive__fail(const struct drive__run *r, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "http_drive: %s, %s%s: ", r->response ? "responses" : "requests", r->mode,
            r->head_request ? " (answers to HEAD)" : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  reference: verdict %d after %zu message(s)%s%s\n", drive__ref.verdict,
            drive__ref.n, drive__ref.why ? ", " : "", drive__ref.why ? drive__ref.why : "");
    abort();
}

static void drive__emit(struct drive__run *r, const void *p, size_t len)
{
    if (r->out_len + len > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + len)
            cap *= 2;
        r->out = realloc(r->out, cap);
        if (r->out == NULL)
            abort();
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, len);
    r->out_len += len;
}

/* The head is sent as the proxy sends it: the buffer's bytes at that moment. */
static void drive__emit_head(struct drive__run *r)
{
    if (!r->head_pending)
        return;
    r->head_pending = false;
    drive__emit(r, r->m.head, r->m.head_len);
}

/* The reference's message K, or NULL (and no more claims) past what it judged. */
static const struct http_ref_msg *drive__claim(struct drive__run *r, size_t k, bool head_only)
{
    if (r->claims_over)
        return NULL;
    if (k < drive__ref.n)
        return &drive__ref.msgs[k];
    if (drive__ref.verdict == HTTP_REF_ACCEPT)
        drive__fail(r, "message %zu read, but the reference ends the stream before it", k);
    if (drive__ref.verdict == HTTP_REF_REFUSE && !(head_only && drive__ref.refused_in_body))
        drive__fail(r, "message %zu accepted (%s), the reference refuses it: %s", k,
                    head_only ? "its head" : "whole", drive__ref.why);
    if (drive__ref.verdict == HTTP_REF_REFUSE)
        return &drive__ref.msgs[k];
    r->claims_over = true;
    return NULL;
}

/* http_msg's own invariants on a complete head, then the proxy's lines and the empty one. */
static bool drive__head_done(struct drive__run *r)
{
    static char line[LOG_RECORD_LINE_MAX];
    struct http_msg *m = &r->m;
    const struct http_ref_msg *want = drive__claim(r, r->done, true);
    size_t key_len;
    const char *key = http_msg_key_value(m, &key_len);

    if (m->head == NULL || m->head_len > m->head_limit + 64 || strlen(m->head) != m->head_len ||
        m->url_off + m->url_len > m->head_len || m->key_off + m->key_len > m->head_len)
        drive__fail(r, "head bookkeeping out of range");
    if (key == NULL ? key_len != 0
                    : !(key_len > 0 && key >= m->head && key + key_len <= m->head + m->head_len &&
                        key[0] != ' ' && key[key_len - 1] != ' '))
        drive__fail(r, "key span out of range");
    if (want != NULL) {
        if (m->head_len != want->head_len || memcmp(m->head, want->head, want->head_len) != 0) {
            drive__escape("rebuilt head", m->head, m->head_len);
            drive__escape("reference's", want->head, want->head_len);
            drive__fail(r, "message %zu: the rebuilt head differs", r->done);
        }
        if (key_len != want->key_len || (key_len > 0 && memcmp(key, want->key, key_len) != 0)) {
            drive__escape("key", key, key_len);
            drive__escape("reference's", want->key, want->key_len);
            drive__fail(r, "message %zu: the key value differs", r->done);
        }
        if (r->response && http_msg_needs_eof(m) != want->until_eof)
            drive__fail(r, "message %zu: needs_eof %d, the reference says %d", r->done,
                        http_msg_needs_eof(m), want->until_eof);
    }
    if (http_msg_head_append(m, DRIVE__XFF, strlen(DRIVE__XFF)) != 0 || http_msg_head_end(m) != 0)
        return false;
    if (m->head_len < 4 || memcmp(m->head + m->head_len - 4, "\r\n\r\n", 4) != 0)
        drive__fail(r, "the closed head does not end with an empty line");
    if (!r->response) {
        struct log_record rec;
        memset(&rec, 0, sizeof rec);
        rec.method = "GET";
        rec.uri = m->head + m->url_off;
        rec.uri_len = m->url_len;
        size_t len = log_record_encode(&rec, line, sizeof line);
        if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) != NULL)
            drive__fail(r, "log record not one line");
    }
    if (m->head_len > sizeof r->head_closed)
        drive__fail(r, "head over %zu bytes", sizeof r->head_closed);
    memcpy(r->head_closed, m->head, m->head_len);
    r->head_closed_len = m->head_len;
    r->head_pending = true;
    r->in_body = true;
    return true;
}

/* Message r->done ended at input offset AT: what went out must be the reference's. */
static void drive__complete(struct drive__run *r, size_t at)
{
    const struct http_ref_msg *want = drive__claim(r, r->done, false);
    const char *got = r->out + r->msg_out[r->done];
    size_t got_len = r->out_len - r->msg_out[r->done];

    if (r->m.head_len != r->head_closed_len || memcmp(r->m.head, r->head_closed, r->head_closed_len) != 0) {
        drive__escape("head at HEAD_DONE", r->head_closed, r->head_closed_len);
        drive__escape("head at COMPLETE", r->m.head, r->m.head_len);
        drive__fail(r, "message %zu: the head changed after it was closed", r->done);
    }
    if (want != NULL) {
        size_t body_len = want->end - want->head_end, head_len = want->head_len + strlen(DRIVE__XFF) + 2;
        if (!want->complete)
            drive__fail(r, "message %zu complete at %zu, the reference needs more input", r->done, at);
        if (at != want->end)
            drive__fail(r, "message %zu ends at %zu, the reference says %zu", r->done, at, want->end);
        if (got_len != head_len + body_len ||
            memcmp(got + head_len, r->data + want->head_end, body_len) != 0) {
            drive__escape("sent", got, got_len);
            drive__escape("reference's body", r->data + want->head_end, body_len);
            drive__fail(r, "message %zu: the bytes sent differ", r->done);
        }
    }
    r->done++;
    r->in_body = false;
    r->msg_out[r->done] = r->out_len;
    http_msg_next(&r->m);
}

/* The end of the input: a cut message must be cut cleanly, then the verdicts must agree. */
static void drive__finish(struct drive__run *r)
{
    const struct http_ref_result *ref = &drive__ref;

    if (r->claims_over)
        return;
    if (ref->verdict == HTTP_REF_REFUSE) {
        if (!r->errored || r->error_msg != ref->n)
            drive__fail(r, "%s, the reference refuses message %zu: %s",
                        r->errored ? "refused at another message" : "not refused", ref->n, ref->why);
        return;
    }
    if (r->errored && (ref->verdict == HTTP_REF_ACCEPT || r->error_msg < ref->n))
        drive__fail(r, "message %zu refused, the reference accepts it", r->error_msg);
    if (ref->verdict == HTTP_REF_OUTSIDE) {
        if (r->done < ref->n)
            drive__fail(r, "%zu messages complete, the reference reads %zu before one outside "
                        "its subset", r->done, ref->n);
        return;
    }
    if (ref->verdict == HTTP_REF_ACCEPT && ref->n > 0 && !ref->msgs[ref->n - 1].complete) {
        const struct http_ref_msg *want = &ref->msgs[ref->n - 1];
        size_t head_len = want->head_len + strlen(DRIVE__XFF) + 2;
        const char *got = r->out + r->msg_out[r->done];
        size_t got_len = r->out_len - r->msg_out[r->done];
        if (r->done != ref->n - 1 || !r->in_body)
            drive__fail(r, "the cut message %zu: %zu complete, head %s", ref->n - 1, r->done,
                        r->in_body ? "done" : "not done");
        if (got_len != head_len + (r->size - want->head_end) ||
            memcmp(got + head_len, r->data + want->head_end, r->size - want->head_end) != 0)
            drive__fail(r, "the cut message %zu: the bytes sent differ", ref->n - 1);
    } else if (ref->verdict == HTTP_REF_ACCEPT && r->done != ref->n) {
        drive__fail(r, "%zu messages complete, the reference reads %zu", r->done, ref->n);
    }
}

/* One pass: reads of sizes from SEED (0: the whole input in one read). */
static void drive__run(struct drive__run *r, unsigned seed, unsigned max_step)
{
    size_t off = 0;
    bool stop = false;

    http_msg_init(&r->m, r->response ? HTTP_RESPONSE : HTTP_REQUEST, 4096);
    r->m.key_header = "x-hash";
    r->m.no_body = r->head_request;
    while (off < r->size && !stop) {
        size_t piece = r->size - off, used = 0;
        if (max_step > 0) {
            size_t step = 1 + (seed = seed * 1103515245u + 12345u) / 65536 % max_step;
            piece = piece < step ? piece : step;
        }
        while (used < piece && !stop) {
            size_t n, blen;
            const char *body, *at = (const char *)r->data + off + used;
            bool was_body = r->in_body;
            enum http_msg_event ev = http_msg_feed(&r->m, at, piece - used, &n, &body, &blen);
            if (n > piece - used || blen > n || body < at || body + blen > at + n)
                drive__fail(r, "span out of range");
            used += n;
            if (ev == HTTP_MSG_ERROR) {
                r->errored = true;
                r->error_msg = r->done;
                stop = true;
            } else if (ev == HTTP_MSG_HEAD_DONE) {
                if (!drive__head_done(r))
                    stop = true;
            } else if (was_body && (blen > 0 || r->head_pending)) {
                drive__emit_head(r);
                drive__emit(r, body, blen);
            }
            if (ev == HTTP_MSG_COMPLETE) {
                const struct http_ref_msg *want =
                    !r->claims_over && r->done < drive__ref.n ? &drive__ref.msgs[r->done] : NULL;
                drive__complete(r, off + used);
                if ((want != NULL && want->last) || r->done == HTTP_REF_MSGS_MAX)
                    stop = true;
            } else if (ev == HTTP_MSG_NEED_MORE && n == 0) {
                stop = true; /* consumed nothing: cannot happen, but never spin */
            }
        }
        drive__emit_head(r); /* the end of a read sends a waiting head */
        off += used;
    }
    if (!stop && r->m.phase == HTTP_MSG_PHASE_BODY) {
        size_t n, blen;
        const char *body;
        if (http_msg_feed(&r->m, "", 0, &n, &body, &blen) == HTTP_MSG_COMPLETE) /* the peer closes */
            drive__complete(r, r->size);
    }
    drive__finish(r);
    http_msg_release(&r->m);
}

void http_drive_check(const uint8_t *data, size_t size, bool response)
{
    static struct drive__run r;
    unsigned seed = 0;
    struct {
        const char *mode;
        unsigned max_step;
        bool head_request;
    } modes[] = {{"one read", 0, false}, {"reads of 1-700", 700, false},
                 {"reads of 1-8", 8, false}, {"one read", 0, true}};

    for (size_t i = 0; i < size && i < 16; i++)
        seed = seed * 31 + data[i];
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        if (modes[k].head_request && !response)
            continue;
        if (k == 0 || modes[k].head_request != modes[k - 1].head_request)
            http_ref_read(data, size, response, modes[k].head_request, &drive__ref);
        char *out = r.out;
        size_t cap = r.out_cap;
        memset(&r, 0, sizeof r);
        r.out = out;
        r.out_cap = cap;
        r.data = data;
        r.size = size;
        r.response = response;
        r.head_request = modes[k].head_request;
        r.mode = modes[k].mode;
        drive__run(&r, seed ^ (unsigned)k, modes[k].max_step);
    }
}
