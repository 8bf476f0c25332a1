#include "controller/net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/buf.h"
#include "common/loop_timer.h"
#include "common/vlog.h"

/* MHD's per-connection pool (request line, headers, read buffer; bodies are copied out
 * into our own buffer). MHD zeroes the pool between requests on a kept-alive connection,
 * so its size is paid on every request: 64 KiB cost 5% of the leader's CPU under a write
 * load, 16 KiB still holds 8 KiB of headers (see docs/benchmarks.md). */
#define HTTP__CONNECTION_MEMORY ((size_t)(16 * 1024))

/* How MHD's "call me again at once" (timeout 0) is honoured. libmicrohttpd 0.9.75 in
 * epoll mode keeps a TLS connection whose handshake waits for the client's next flight
 * in its ready list (gnutls' EAGAIN never clears MHD's read-ready mark), so it reports
 * timeout 0 until that client answers: a client that sends a ClientHello and stalls kept
 * a node at 100 % CPU for the 120 s connection timeout. Real pending work shows: a run
 * that calls one of our callbacks (a request, a piece of a body, a finished request) made
 * progress, and everything new arrives as an edge on MHD's epoll descriptor. After
 * HTTP__IMMEDIATE_RUNS immediate runs with neither, the runs back off, doubling from 1 ms
 * up to HTTP__IDLE_RETRY_MAX_MS; progress or an edge makes them immediate again. */
#define HTTP__IMMEDIATE_RUNS 4u
#define HTTP__BACKLOG 1024
#define HTTP__IDLE_RETRY_MAX_MS 50u

enum http__req_state {
    HTTP__READING = 0,  /* collecting the body */
    HTTP__DISPATCHED,   /* handler called, no answer yet (connection suspended) */
    HTTP__ANSWERED,     /* answer ready, waiting for MHD to take it */
    HTTP__QUEUED,       /* answer handed to MHD */
};

struct http_stream;

struct http_request {
    struct http_server *server;
    struct MHD_Connection *conn;
    enum http__req_state state;
    int suspended;
    char method[16];
    char *path;
    struct buf body; /* NUL-terminated (buf_append_text) */
    int too_big;
    void *user;
    void (*user_free)(void *user);
    unsigned status;
    struct MHD_Response *response;
    char peer[INET6_ADDRSTRLEN];
    char extra_headers[1536]; /* "Name\0Value\0..." added to the answer */
    size_t extra_len;
    struct http_stream *stream; /* a streamed answer's state, or NULL */
};

/* A streamed answer (http_request_respond_stream). It lives as long as its MHD response:
 * the request holds one reference and MHD another while the answer is queued, and the
 * response's free callback frees it, so MHD's content reader never sees it freed. */
struct http_stream {
    struct http_server *server;
    struct http_request *req;        /* NULL once the request was freed */
    struct http_stream *prev, *next; /* the server's open streams (while REQ is set) */
    struct buf out;                  /* bytes not yet taken by MHD, from OFF on */
    size_t off;
    size_t cap;                      /* the most OUT may hold unsent */
    int suspended; /* our content reader suspended the connection (not resumed since) */
    int held;      /* the caller holds the handle (neither GONE nor http_stream_end yet) */
    int ending;    /* http_stream_end: finish once OUT is sent */
    int dropped;   /* over CAP: the connection closes without the rest */
    http_stream_gone_fn gone;
    void *gone_data;
};

/* A certificate and key as gnutls serves them. The newest heads the server's list; older
 * ones stay until the server is freed, since a handshake in progress may still use them
 * (renewals are rare: one per node whose host the cluster certificate lacked). */
#define HTTP__TLS_CHAIN_MAX 4

struct http__tls_cred {
    struct http__tls_cred *older;
    gnutls_pcert_st pcert[HTTP__TLS_CHAIN_MAX]; /* the server's certificate first */
    unsigned n_pcert;
    gnutls_privkey_t key;
};

struct http_server {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    struct loop_timer timer; /* MHD's timeout; 0 ms runs on the next iteration */
    int listen_fd;
    int tls;
    struct http__tls_cred *cred; /* TLS: what the next handshake serves */
    size_t max_body;
    http_handler_fn handler;
    void *data;
    http_answered_fn answered; /* told each answer (http_server_set_answered_cb), or NULL */
    void *answered_data;
    unsigned immediate_runs; /* timeout-0 runs since the last socket event or progress */
    int progressed;          /* one of our MHD callbacks ran during this MHD_run */
    int closing;
    int handles_open;
    struct http_stream *streams; /* every stream whose request lives */
    void (*done)(void *data);
    void *done_data;
};

static void http__schedule(struct http_server *s);

static void http__run(struct http_server *s)
{
    if (s->closing)
        return;
    s->progressed = 0;
    MHD_run(s->mhd);
    if (s->progressed)
        s->immediate_runs = 0;
    http__schedule(s);
}

static void http__on_timer(struct loop_timer *t)
{
    http__run(t->data);
}

static void http__on_poll(uv_poll_t *p, int status, int events)
{
    struct http_server *s = p->data;
    s->immediate_runs = 0;
    http__run(s);
}

/* Re-arms the timer from MHD's own timeout (at most 1 s). Timeout 0 runs on the next loop
 * iteration, after raft's and everyone else's I/O (a uv_timer re-armed with 0 ms from its
 * own callback starved the whole loop: loop_timer.h), and backs off when MHD keeps asking
 * for it without any socket event (see HTTP__IMMEDIATE_RUNS). */
static void http__schedule(struct http_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = 1000;
    if (s->closing)
        return;
    if (MHD_get_timeout(s->mhd, &ms) != MHD_YES || ms > 1000)
        ms = 1000;
    if (ms > 0) {
        s->immediate_runs = 0;
    } else if (++s->immediate_runs > HTTP__IMMEDIATE_RUNS) {
        unsigned shift = s->immediate_runs - HTTP__IMMEDIATE_RUNS - 1;
        ms = shift >= 6 ? HTTP__IDLE_RETRY_MAX_MS : 1u << shift;
        if (ms > HTTP__IDLE_RETRY_MAX_MS)
            ms = HTTP__IDLE_RETRY_MAX_MS;
    }
    loop_timer_start(&s->timer, ms);
}

static void http__stream_detach(struct http_stream *st);

static void http__request_free(struct http_request *req)
{
    if (req->stream != NULL)
        http__stream_detach(req->stream); /* before the response (and maybe it) goes */
    if (req->user_free != NULL)
        req->user_free(req->user);
    if (req->response != NULL)
        MHD_destroy_response(req->response);
    free(req->path);
    buf_free(&req->body);
    free(req);
}

static void http__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    struct http_request *req = *con_cls;
    ((struct http_server *)cls)->progressed = 1;
    if (req == NULL)
        return;
    if (req->state == HTTP__DISPATCHED) {
        /* The connection died while its handler still owns the request: leave it to
         * the handler's answer, which frees it (see http__finish). */
        req->conn = NULL;
        return;
    }
    http__request_free(req);
    *con_cls = NULL;
}

static enum MHD_Result http__queue(struct http_request *req)
{
    enum MHD_Result rv = MHD_queue_response(req->conn, req->status, req->response);
    req->state = HTTP__QUEUED;
    return rv;
}

/* What a request head says of its body's framing (http__framing_check). */
struct http__framing {
    unsigned content_lengths, transfer_encodings;
    int lengths_differ, length_bad, coding_bad, name_bad;
    char first_length[32], coding[48], name[48];
};

static enum MHD_Result http__framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    struct http__framing *f = cls;
    (void)kind;
    if (key == NULL)
        return MHD_YES;
    if (key[strcspn(key, " \t")] != '\0' && !f->name_bad) {
        f->name_bad = 1;
        snprintf(f->name, sizeof f->name, "%s", key);
    }
    value = value != NULL ? value : "";
    if (strcasecmp(key, "Content-Length") == 0) {
        if (value[0] == '\0' || value[strspn(value, "0123456789")] != '\0')
            f->length_bad = 1;
        if (f->content_lengths++ == 0)
            snprintf(f->first_length, sizeof f->first_length, "%s", value);
        else if (strcmp(f->first_length, value) != 0)
            f->lengths_differ = 1;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->transfer_encodings++;
        if (strcasecmp(value, "chunked") != 0 && !f->coding_bad) {
            f->coding_bad = 1;
            snprintf(f->coding, sizeof f->coding, "%s", value);
        }
    }
    return MHD_YES;
}

/* Checks the framing CONN's request head gives its body, before any of it is read (RFC
 * 9112 6.3: a message whose length cannot be told must be refused, and the connection
 * closed): a header name holding a space ("Content-Length : 12", which libmicrohttpd keeps
 * as another name, leaving the body on the connection), two different Content-Length
 * values or one that is no number, a Transfer-Encoding other than exactly "chunked"
 * (e.g. "xchunked", "chunked, identity": 501), or both headers. Returns 0, or the status
 * to refuse with and the reason in WHY. */
static unsigned http__framing_check(struct MHD_Connection *conn, char *why, size_t len)
{
    struct http__framing f = {0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, http__framing_header, &f);
    if (f.name_bad)
        return snprintf(why, len, "header name \"%.40s\": a header name holds no space", f.name),
               400;
    if (f.lengths_differ || f.length_bad)
        return snprintf(why, len, "Content-Length: %s", f.lengths_differ
                                                            ? "given twice with different values"
                                                            : "not a whole number"),
               400;
    if (f.coding_bad)
        return snprintf(why, len, "Transfer-Encoding: \"%.40s\" is not supported (only "
                                  "\"chunked\")", f.coding),
               501;
    if (f.transfer_encodings > 0 && f.content_lengths > 0)
        return snprintf(why, len, "Transfer-Encoding and Content-Length: give one of them"), 400;
    return 0;
}

static enum MHD_Result http__access(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    struct http_server *s = cls;
    struct http_request *req = *con_cls;
    char why[160];
    unsigned refusal;

    s->progressed = 1;
    if (req == NULL) {
        const union MHD_ConnectionInfo *ci;
        req = calloc(1, sizeof *req);
        if (req == NULL)
            return MHD_NO;
        req->server = s;
        req->conn = conn;
        snprintf(req->method, sizeof req->method, "%s", method);
        req->path = strdup(url);
        if (req->path == NULL) {
            free(req);
            return MHD_NO;
        }
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
                      req->peer, sizeof req->peer);
        *con_cls = req;
        if ((refusal = http__framing_check(conn, why, sizeof why)) != 0) {
            /* answered before the body: the connection closes after the answer */
            req->state = HTTP__DISPATCHED;
            http_request_add_header(req, "Connection", "close");
            http_request_respond_error(req, refusal, "%s", why);
            return http__queue(req);
        }
        return MHD_YES;
    }

    if (req->state == HTTP__READING && *upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (!req->too_big && req->body.len + n > s->max_body) {
            req->too_big = 1;
            buf_free(&req->body);
        }
        if (!req->too_big && buf_append_text(&req->body, upload_data, n) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }

    switch (req->state) {
    case HTTP__READING:
        req->state = HTTP__DISPATCHED;
        if (req->too_big) {
            http_request_respond_error(req, 413, "request body larger than %zu bytes",
                                       s->max_body);
        } else {
            s->handler(req, s->data);
        }
        if (req->state == HTTP__ANSWERED)
            return http__queue(req);
        /* Answer comes later: park the connection. */
        req->suspended = 1;
        MHD_suspend_connection(conn);
        return MHD_YES;
    case HTTP__ANSWERED:
        return http__queue(req);
    default:
        return MHD_YES;
    }
}

const char *http_request_method(const struct http_request *req) { return req->method; }
const char *http_request_path(const struct http_request *req) { return req->path; }
const char *http_request_peer(const struct http_request *req) { return req->peer; }
void http_request_set_user(struct http_request *req, void *user, void (*free_fn)(void *user))
{
    req->user = user;
    req->user_free = free_fn;
}

void http_server_set_answered_cb(struct http_server *server, http_answered_fn cb, void *data)
{
    server->answered = cb;
    server->answered_data = data;
}

int http_request_is_tls(const struct http_request *req) { return req->server->tls; }
void *http_request_user(const struct http_request *req) { return req->user; }

const char *http_request_query(const struct http_request *req, const char *key)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data != NULL ? req->body.data : "";
}

/* Takes the prepared answer to MHD, or frees REQ when its connection is gone. */
static void http__finish(struct http_request *req)
{
    req->state = HTTP__ANSWERED;
    if (req->server->answered != NULL)
        req->server->answered(req->server->answered_data, req, req->status);
    if (req->conn == NULL) {
        http__request_free(req);
        return;
    }
    if (req->suspended) {
        req->suspended = 0;
        MHD_resume_connection(req->conn);
        /* MHD picks the resumed connection up on its next run. */
        loop_timer_start(&req->server->timer, 0);
    }
}

/* Adds CONTENT_TYPE (unless NULL) and the headers added to REQ to RESPONSE. */
/* MHD's percent-decoding of the path and the query (MHD_OPTION_UNESCAPE_CALLBACK), with one
 * change: a decoded NUL ("%00") becomes DEL (0x7f). The handlers get C strings, so a NUL
 * would cut the path short ("/ui/app.js%00.html" read as "/ui/app.js"); with DEL it stays a
 * name that matches no route. Returns the new length (VAL decoded in place). */
static size_t http__unescape(void *cls, struct MHD_Connection *c, char *val)
{
    size_t len = MHD_http_unescape(val);
    (void)cls;
    (void)c;
    for (size_t i = 0; i < len; i++)
        if (val[i] == '\0')
            val[i] = 0x7f;
    return len;
}

static void http__add_headers(struct http_request *req, struct MHD_Response *response,
                              const char *content_type)
{
    if (content_type != NULL)
        MHD_add_response_header(response, "Content-Type", content_type);
    for (size_t off = 0; off < req->extra_len;) {
        const char *name = req->extra_headers + off;
        const char *value = name + strlen(name) + 1;
        MHD_add_response_header(response, name, value);
        off = (size_t)(value - req->extra_headers) + strlen(value) + 1;
    }
}

void http_request_respond_raw(struct http_request *req, unsigned status,
                              const char *content_type, const void *data, size_t len)
{
    req->response = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (req->response == NULL) {
        vlog_error("http: out of memory building a response");
        req->response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        status = 500;
        content_type = NULL;
    }
    if (req->response != NULL)
        http__add_headers(req, req->response, content_type);
    req->status = status;
    http__finish(req);
}

void http_request_respond_static(struct http_request *req, unsigned status,
                                 const char *content_type, const void *data, size_t len)
{
    req->response = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (req->response == NULL) {
        http_request_respond_raw(req, 500, NULL, "", 0);
        return;
    }
    http__add_headers(req, req->response, content_type);
    req->status = status;
    http__finish(req);
}

void http_request_add_header(struct http_request *req, const char *name, const char *value)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1;
    if (req->extra_len + n + v > sizeof req->extra_headers)
        return;
    memcpy(req->extra_headers + req->extra_len, name, n);
    memcpy(req->extra_headers + req->extra_len + n, value, v);
    req->extra_len += n + v;
}

void http_request_respond(struct http_request *req, unsigned status, json_t *body)
{
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(body);
    }
    if (text == NULL) {
        http_request_respond_raw(req, status, NULL, "", 0);
        return;
    }
    http_request_respond_raw(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_request_respond_error(struct http_request *req, unsigned status, const char *fmt,
                                ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_request_respond(req, status, json_pack("{s:s}", "error", msg));
}

/* --- streamed answers ----------------------------------------------------------------- */

/* Lets MHD take the connection of ST up again (it was suspended by the reader for want of
 * data); MHD runs on the next loop iteration. */
static void http__stream_wake(struct http_stream *st)
{
    if (!st->suspended || st->req == NULL || st->req->conn == NULL)
        return;
    st->suspended = 0;
    MHD_resume_connection(st->req->conn);
    if (!st->server->closing)
        loop_timer_start(&st->server->timer, 0);
}

/* MHD's content reader: hands over what is pending; with nothing pending, ends the answer
 * (http_stream_end) or suspends the connection until the next write (returning 0 with the
 * connection suspended is how the MHD 0.9.75 docs want a reader with nothing yet to say
 * to avoid busy waiting: MHD_suspend_connection may be called from the reader). */
static ssize_t http__stream_read(void *cls, uint64_t pos, char *to, size_t max)
{
    struct http_stream *st = cls;
    size_t pending = st->out.len - st->off;

    (void)pos;
    if (st->dropped || st->req == NULL || st->req->conn == NULL)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (pending > 0) {
        size_t n = pending < max ? pending : max;
        memcpy(to, st->out.data + st->off, n);
        st->off += n;
        if (st->off == st->out.len) {
            st->out.len = 0;
            st->off = 0;
            buf_trim(&st->out, 64 * 1024);
        } else if (st->off >= 64 * 1024) {
            buf_consume(&st->out, st->off);
            st->off = 0;
        }
        st->server->progressed = 1;
        return (ssize_t)n;
    }
    if (st->ending)
        return MHD_CONTENT_READER_END_OF_STREAM;
    st->suspended = 1;
    MHD_suspend_connection(st->req->conn);
    return 0;
}

/* MHD's free callback of the stream's response: the last reference to ST went. */
static void http__stream_free(void *cls)
{
    struct http_stream *st = cls;
    buf_free(&st->out);
    free(st);
}

/* The request of ST is being freed: off the server's list, and the caller told (GONE)
 * unless it let go already. */
static void http__stream_detach(struct http_stream *st)
{
    struct http_server *s = st->server;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else if (s->streams == st)
        s->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    st->req = NULL;
    if (st->held) {
        st->held = 0;
        st->gone(st, st->gone_data);
    }
}

struct http_stream *http_request_respond_stream(struct http_request *req,
                                                const char *content_type, size_t cap_bytes,
                                                http_stream_gone_fn gone, void *data)
{
    struct http_server *s = req->server;
    struct http_stream *st = calloc(1, sizeof *st);

    if (st != NULL) {
        req->response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
                                                          http__stream_read, st,
                                                          http__stream_free);
        if (req->response == NULL)
            free(st);
    }
    if (st == NULL || req->response == NULL) {
        http_request_respond_error(req, 500, "out of memory");
        return NULL;
    }
    st->server = s;
    st->req = req;
    st->cap = cap_bytes;
    st->gone = gone;
    st->gone_data = data;
    req->stream = st;
    st->next = s->streams;
    if (s->streams != NULL)
        s->streams->prev = st;
    s->streams = st;
    http__add_headers(req, req->response, content_type);
    MHD_add_response_header(req->response, "Cache-Control", "no-store");
    req->status = 200;
    if (req->conn == NULL) { /* the client left while the handler decided */
        http__finish(req);   /* frees REQ, and ST with its response */
        return NULL;
    }
    http__finish(req);
    st->held = 1;
    return st;
}

int http_stream_write(struct http_stream *st, const void *data, size_t len)
{
    if (st->dropped || st->ending || st->req == NULL)
        return VIGIL_ESHUTDOWN;
    if (st->out.len - st->off + len > st->cap) {
        /* The client does not read: it is dropped, never waited for. The reader ends the
         * answer at its next call; a connection MHD waits to write to (a full socket) is
         * closed by MHD's timeout, shortened to its minimum. */
        st->dropped = 1;
        buf_free(&st->out);
        st->off = 0;
        if (st->req->conn != NULL)
            MHD_set_connection_option(st->req->conn, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
        http__stream_wake(st);
        return VIGIL_ETOOBIG;
    }
    if (buf_append(&st->out, data, len) != 0)
        return VIGIL_ENOMEM;
    http__stream_wake(st);
    return 0;
}

size_t http_stream_pending(const struct http_stream *st)
{
    return st->out.len - st->off;
}

void http_stream_end(struct http_stream *st)
{
    st->held = 0;
    st->ending = 1;
    http__stream_wake(st);
}

/* Binds a TCP socket to ADDR, and listens on it when LISTEN_NOW. */
static int http__socket(const struct netaddr *addr, int listen_now, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    if (netaddr_to_sockaddr(addr, &sa) != 0) {
        snprintf(err, errlen, "bad address %s:%u", addr->host, addr->port);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (listen_now && listen(fd, HTTP__BACKLOG) != 0)) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", addr->host, addr->port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int http_server_listen(const struct netaddr *addr, char *err, size_t errlen)
{
    return http__socket(addr, 1, err, errlen);
}

int http_server_bind(const struct netaddr *addr, char *err, size_t errlen)
{
    return http__socket(addr, 0, err, errlen);
}

static void http__log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    vlog_debug("http: %s", line);
}

/* gnutls asks for the certificate at each handshake through a callback that carries no
 * pointer of ours (MHD gives gnutls the socket, not the connection): so one TLS server per
 * process, this one. */
static struct http_server *http__tls_server;

static int http__on_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *pkey)
{
    struct http_server *s = http__tls_server;
    if (s == NULL || s->cred == NULL)
        return -1;
    *pcert = s->cred->pcert;
    *pcert_length = s->cred->n_pcert;
    *pkey = s->cred->key;
    return 0;
}

static void http__tls_creds_free(struct http__tls_cred *c)
{
    while (c != NULL) {
        struct http__tls_cred *older = c->older;
        for (unsigned i = 0; i < c->n_pcert; i++)
            gnutls_pcert_deinit(&c->pcert[i]);
        gnutls_privkey_deinit(c->key);
        free(c);
        c = older;
    }
}

static int http__tls_cred_push(struct http_server *s, const char *cert_pem, const char *key_pem)
{
    struct http__tls_cred *c = calloc(1, sizeof *c);
    gnutls_datum_t cert = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t key = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};

    if (c == NULL)
        return VIGIL_ENOMEM;
    if (gnutls_privkey_init(&c->key) != 0) {
        free(c);
        return VIGIL_ENOMEM;
    }
    if (gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0) != 0) {
        gnutls_privkey_deinit(c->key);
        free(c);
        return VIGIL_EINVAL;
    }
    c->n_pcert = HTTP__TLS_CHAIN_MAX;
    if (gnutls_pcert_list_import_x509_raw(c->pcert, &c->n_pcert, &cert, GNUTLS_X509_FMT_PEM,
                                          0) < 0 || c->n_pcert == 0) {
        gnutls_privkey_deinit(c->key);
        free(c);
        return VIGIL_EINVAL;
    }
    c->older = s->cred;
    s->cred = c;
    return 0;
}

int http_server_set_cert(struct http_server *s, const char *cert_pem, const char *key_pem)
{
    if (!s->tls)
        return VIGIL_EINVAL;
    return http__tls_cred_push(s, cert_pem, key_pem);
}

struct http_server *http_server_start_fd(uv_loop_t *loop, int fd, const char *cert_pem,
                                         const char *key_pem, size_t max_body,
                                         http_handler_fn handler, void *data, char *err,
                                         size_t errlen)
{
    struct http_server *s = calloc(1, sizeof *s);
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    s->loop = loop;
    s->max_body = max_body;
    s->handler = handler;
    s->data = data;
    s->listen_fd = fd;
    if (listen(fd, HTTP__BACKLOG) != 0) { /* a no-op on a socket that listens already */
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        free(s);
        return NULL;
    }
    if (cert_pem != NULL && key_pem != NULL) {
        if (http__tls_server != NULL || http__tls_cred_push(s, cert_pem, key_pem) != 0) {
            snprintf(err, errlen, http__tls_server != NULL ? "a TLS server runs already"
                                                           : "not a PEM certificate and key");
            close(fd);
            free(s);
            return NULL;
        }
        s->tls = 1;
        flags |= MHD_USE_TLS;
    }
    if (s->tls)
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http__access, s,
                                  MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                                  MHD_OPTION_NOTIFY_COMPLETED, http__on_completed, s,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP__CONNECTION_MEMORY,
                                  MHD_OPTION_EXTERNAL_LOGGER, http__log, NULL,
                                  MHD_OPTION_UNESCAPE_CALLBACK, http__unescape, NULL,
                                  MHD_OPTION_HTTPS_CERT_CALLBACK, http__on_cert,
                                  MHD_OPTION_END);
    else
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http__access, s,
                                  MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                                  MHD_OPTION_NOTIFY_COMPLETED, http__on_completed, s,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP__CONNECTION_MEMORY,
                                  MHD_OPTION_EXTERNAL_LOGGER, http__log, NULL,
                                  MHD_OPTION_UNESCAPE_CALLBACK, http__unescape, NULL,
                                  MHD_OPTION_END);
    if (s->mhd == NULL) {
        snprintf(err, errlen, "cannot start the HTTP%s server", s->tls ? "S" : "");
        close(s->listen_fd);
        http__tls_creds_free(s->cred);
        free(s);
        return NULL;
    }
    if (s->tls)
        http__tls_server = s;
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(loop, &s->poll, info->epoll_fd);
    s->poll.data = s;
    uv_poll_start(&s->poll, UV_READABLE, http__on_poll);
    loop_timer_init(loop, &s->timer, http__on_timer);
    s->timer.data = s;
    s->handles_open = 2;
    http__schedule(s);
    return s;
}

static void http__on_closed(struct http_server *s)
{
    if (--s->handles_open > 0)
        return;
    if (s->done != NULL)
        s->done(s->done_data);
    if (http__tls_server == s)
        http__tls_server = NULL;
    http__tls_creds_free(s->cred);
    free(s);
}

static void http__on_poll_closed(uv_handle_t *h)
{
    http__on_closed(h->data);
}

static void http__on_timer_closed(struct loop_timer *t)
{
    http__on_closed(t->data);
}

void http_server_close(struct http_server *s, void (*done)(void *data), void *data)
{
    /* MHD_stop_daemon panics on a suspended connection (0.9.75 close_all_connections);
     * resumed ones it takes back first (resume_suspended_connections), then closes them
     * all, which frees the streams' requests: their GONE callbacks run from in here. */
    for (struct http_stream *st = s->streams; st != NULL; st = st->next)
        http__stream_wake(st);
    s->closing = 1;
    s->done = done;
    s->done_data = data;
    /* Unwatch MHD's epoll descriptor before MHD closes it. */
    uv_close((uv_handle_t *)&s->poll, http__on_poll_closed);
    loop_timer_close(&s->timer, http__on_timer_closed);
    MHD_stop_daemon(s->mhd); /* closes the listening socket it was given too */
}
