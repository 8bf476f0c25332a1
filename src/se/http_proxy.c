/* http_proxy.c: the HTTP reverse proxy (see http_proxy.h).
 *
 * Client connection states (hp__client_set_state is the only writer, with the legal moves
 * in hp__client_legal):
 *   IDLE        waiting for the first byte of a request (keep-alive timeout)
 *   HEAD        reading a request head (head timeout, slow clients cut off)
 *   CONNECTING  head read, waiting for a server connection (connect timeout)
 *   FORWARD     request going to the server, response coming back (server timeout)
 *   LINGER      last answer sent, shutting down, discarding input until EOF
 *   CLOSING     handles closing; freed in the last close callback
 *
 * Input is read into one shared buffer and handled inside the read callback: body bytes
 * are written straight from it with uv_try_write, and only what the kernel does not take
 * is copied (then the reading side stops until the copy is written). */
#include "se/http_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "se/engine.h"
#include "se/http_msg.h"
#include "se/http_server_conn.h"
#include "se/listener.h"
#include "se/stream_write.h"

#define HP__READ_BUF (64 * 1024)
#define HP__MAX_RETRIES 2
#define HP__PIPELINE_MAX (32 * 1024)

enum hp_client_state {
    HPC_IDLE = 0,
    HPC_HEAD,
    HPC_CONNECTING,
    HPC_FORWARD,
    HPC_LINGER,
    HPC_CLOSING
};

struct hp_client;

struct hp_client {
    struct se_conn conn;          /* listed by the engine while open (drain at a stop) */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct se_engine *engine;
    struct se_listener *listener; /* one reference */
    struct se_vs *vs;             /* the current request's service (one reference) */
    struct http_server_conn *server;
    struct se_server *avoid;      /* borrowed: the server that just failed (retries) */
    struct http_msg req;
    struct http_msg resp;
    struct buf in;                /* input not parsed yet (pipelined, or waiting) */
    uint64_t deadline;
    uint64_t timer_due;
    uint8_t state;
    uint8_t closing_handles;
    uint8_t retries;
    bool reading;
    bool req_done;
    bool resp_head_sent;
    bool close_after;
    bool keep_alive;
    bool req_has_body;
    bool client_http10;
    bool logged;
    bool client_eof;              /* the client half-closed after its request */
    bool resp_head_pending;       /* the rebuilt response head waits to go with the body */
    char failure[128];            /* why this exchange failed, for its log record ("": none) */
    int pending_writes;
    int status;
    char peer_ip[16];
    uint16_t peer_port;
    uint32_t peer_addr;           /* network order */
    int64_t start_wall_ms;
    uint64_t start_ns;
    uint64_t server_start_ns;
    uint64_t server_head_ns;
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct se_server *log_server; /* borrowed while the request runs (held by vs's pool) */
    struct metrics_vs *conn_metrics; /* one reference: the service that accepted us */
};

static char hp__read_buf[HP__READ_BUF];

static void hp__client_close(struct hp_client *c);
static void hp__client_error(struct hp_client *c, int status, enum metrics_error kind);
static void hp__client_update_reading(struct hp_client *c);
static size_t hp__client_input(struct hp_client *c, const char *data, size_t len);
static void hp__client_process_buffered(struct hp_client *c);
static int hp__client_get_server(struct hp_client *c);
static void hp__on_server_read(void *owner, struct http_server_conn *s, ssize_t nread,
                               const uv_buf_t *buf);
static void hp__on_server_connected(void *owner, struct se_server *srv, int status);
static void hp__on_server_written(void *owner, int status);
static bool hp__wants_server_input(void *owner);

static const struct http_server_conn_events hp__server_events = {
    .connected = hp__on_server_connected,
    .read = hp__on_server_read,
    .written = hp__on_server_written,
    .wants_input = hp__wants_server_input,
};

/* ---- state machine ------------------------------------------------------------------ */

static const char *hp__state_name(int s)
{
    static const char *const names[] = {"IDLE", "HEAD", "CONNECTING", "FORWARD", "LINGER",
                                        "CLOSING"};
    return s >= 0 && s <= HPC_CLOSING ? names[s] : "?";
}

static bool hp__client_legal(int from, int to)
{
    if (to == HPC_CLOSING)
        return from != HPC_CLOSING;
    switch (from) {
    case HPC_IDLE: return to == HPC_HEAD;
    case HPC_HEAD: return to == HPC_CONNECTING || to == HPC_FORWARD || to == HPC_LINGER;
    case HPC_CONNECTING: return to == HPC_FORWARD || to == HPC_CONNECTING || to == HPC_LINGER;
    case HPC_FORWARD: return to == HPC_IDLE || to == HPC_LINGER || to == HPC_CONNECTING;
    case HPC_LINGER: return false;
    default: return false;
    }
}

static bool hp__client_set_state(struct hp_client *c, int to)
{
    if (!hp__client_legal(c->state, to)) {
        vlog_error("http_proxy: refused illegal move %s -> %s", hp__state_name(c->state),
                   hp__state_name(to));
        return false;
    }
    c->state = (uint8_t)to;
    return true;
}

/* ---- timers ------------------------------------------------------------------------- */

static void hp__on_timer(uv_timer_t *t);

/* Sets the deadline MS from now; the timer is restarted only when it would fire late. */
static void hp__arm(struct hp_client *c, uint32_t ms)
{
    uint64_t now = uv_now(engine_loop(c->engine));
    c->deadline = now + ms;
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_due > c->deadline) {
        uv_timer_start(&c->timer, hp__on_timer, ms, 0);
        c->timer_due = c->deadline;
    }
}

/* Pushes the deadline on (activity) without touching the timer. */
static void hp__touch(struct hp_client *c, uint32_t ms)
{
    c->deadline = uv_now(engine_loop(c->engine)) + ms;
}

/* ---- writing ------------------------------------------------------------------------ */

static void hp__buf_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = hp__read_buf;
    buf->len = sizeof hp__read_buf;
}

static void hp__on_client_written(uv_write_t *req, int status)
{
    struct hp_client *c = stream_write_done(req);

    c->pending_writes--;
    if (c->state == HPC_CLOSING)
        return;
    if (status < 0) {
        hp__client_close(c);
        return;
    }
    if (c->pending_writes == 0) {
        if (c->server)
            http_server_conn_update_reading(c->server);
        hp__client_update_reading(c);
    }
}

static int hp__client_write(struct hp_client *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    c->bytes_out += len;
    return stream_write((uv_stream_t *)&c->tcp, &b, 1, &c->pending_writes, hp__on_client_written,
                     c);
}

/* Writes the pending response head (if any) together with BODY, in one system call. */
static int hp__client_write_body(struct hp_client *c, const char *body, size_t blen)
{
    uv_buf_t b[2];
    unsigned n = 0;

    if (c->resp_head_pending) {
        c->resp_head_pending = false;
        b[n++] = uv_buf_init(c->resp.head, c->resp.head_len);
        c->bytes_out += c->resp.head_len;
    }
    if (blen > 0)
        b[n++] = uv_buf_init((char *)body, (unsigned)blen);
    c->bytes_out += blen;
    if (n == 0)
        return 0;
    return stream_write((uv_stream_t *)&c->tcp, b, n, &c->pending_writes, hp__on_client_written, c);
}

/* ---- client connection -------------------------------------------------------------- */

static void hp__on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void hp__client_update_reading(struct hp_client *c)
{
    bool want = false;

    switch (c->state) {
    case HPC_IDLE:
    case HPC_HEAD:
        want = c->in.len == 0 && c->pending_writes == 0;
        break;
    case HPC_FORWARD:
        if (c->req_done) /* keep reading (no epoll change per request); pipelined input is
                          * kept, up to a bound */
            want = !c->client_eof && c->in.len < HP__PIPELINE_MAX && c->pending_writes == 0;
        else
            want = c->in.len == 0 && c->server != NULL && c->server->state == HTTP_SERVER_CONN_BUSY &&
                   c->server->pending_writes == 0;
        break;
    case HPC_LINGER:
        want = true;
        break;
    default:
        want = false;
    }
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, hp__buf_alloc, hp__on_client_read) != 0)
            return;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

static void hp__on_client_closed(uv_handle_t *h)
{
    struct hp_client *c = h->data;

    if (--c->closing_handles > 0)
        return;
    http_msg_release(&c->req);
    http_msg_release(&c->resp);
    buf_free(&c->in);
    listener_unref(c->listener);
    free(c);
}

/* Writes the log record and the metrics of the request that ends now. */
static void hp__client_log(struct hp_client *c)
{
    struct log_record r;
    uint64_t now = uv_hrtime();
    struct se_vs *vs = c->vs;
    char method[24];

    if (c->logged || vs == NULL)
        return;
    c->logged = true;
    memset(&r, 0, sizeof r);
    r.kind = LOG_RECORD_HTTP;
    r.timestamp_ms = c->start_wall_ms;
    r.vs_name = vs->cfg->name;
    r.vs_uuid = vs->cfg->uuid;
    memcpy(r.client_ip, c->peer_ip, sizeof r.client_ip);
    r.client_port = c->peer_port;
    if (c->log_server != NULL) {
        memcpy(r.server_ip, c->log_server->cfg.ip, sizeof r.server_ip);
        r.server_port = c->log_server->cfg.port;
    }
    if (c->req.head != NULL && c->req.method_len > 0 && c->req.method_len < sizeof method) {
        memcpy(method, c->req.head, c->req.method_len);
        method[c->req.method_len] = '\0';
        r.method = method;
        r.uri = c->req.head + c->req.url_off;
        r.uri_len = c->req.url_len;
    } else {
        r.method = "";
        r.uri = "";
    }
    r.status = c->status;
    r.bytes_in = c->bytes_in;
    r.bytes_out = c->bytes_out;
    r.total_ms = (double)(now - c->start_ns) / 1e6;
    r.server_ms = c->server_head_ns ? (double)(c->server_head_ns - c->server_start_ns) / 1e6 : -1;
    r.error = c->failure;
    engine_log(c->engine, &r);
    metrics_vs_record(vs->metrics, c->status, r.total_ms, c->bytes_in, c->bytes_out);
}

/* Ends the current request's bookkeeping (after its log record). */
static void hp__client_end_request(struct hp_client *c)
{
    se_vs_unref(c->vs);
    c->vs = NULL;
    c->log_server = NULL;
    c->avoid = NULL;
}

static void hp__client_close(struct hp_client *c)
{
    if (c->state == HPC_CLOSING)
        return;
    if ((c->state == HPC_CONNECTING || c->state == HPC_FORWARD) && !c->logged) {
        hp__client_log(c); /* cut off: status 0 */
    }
    if (c->server != NULL) {
        struct http_server_conn *s = c->server;
        s->dirty = true;
        http_server_conn_close(s);
    }
    if (c->conn_metrics != NULL) {
        c->conn_metrics->active--;
        metrics_vs_put(c->conn_metrics);
        c->conn_metrics = NULL;
    }
    hp__client_end_request(c);
    hp__client_set_state(c, HPC_CLOSING);
    engine_conn_remove(c->engine, &c->conn);
    engine_count_socket(c->engine, -1);
    c->closing_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, hp__on_client_closed);
    uv_close((uv_handle_t *)&c->timer, hp__on_client_closed);
}

static void hp__on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* After the last answer: half-close, discard input until EOF or the linger timeout. */
static void hp__client_linger(struct hp_client *c)
{
    if (c->state == HPC_CLOSING || c->state == HPC_LINGER)
        return;
    if (c->server != NULL)
        http_server_conn_close(c->server);
    if (!hp__client_set_state(c, HPC_LINGER)) {
        hp__client_close(c);
        return;
    }
    c->in.len = 0;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, hp__on_shutdown) != 0) {
        hp__client_close(c);
        return;
    }
    hp__arm(c, engine_limits(c->engine)->linger_ms);
    hp__client_update_reading(c);
}

static const char *hp__reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Answers the current request with STATUS from the proxy itself and closes. */
static void hp__client_error(struct hp_client *c, int status, enum metrics_error kind)
{
    char text[320];
    char body[64];
    int blen, n;

    if (c->state == HPC_CLOSING || c->state == HPC_LINGER)
        return;
    if (c->vs != NULL)
        c->vs->metrics->errors[kind]++;
    if (c->resp_head_sent) {
        hp__client_close(c);
        return;
    }
    if (c->server != NULL) {
        c->server->dirty = true;
        http_server_conn_close(c->server);
    }
    blen = snprintf(body, sizeof body, "%d %s\n", status, hp__reason(status));
    n = snprintf(text, sizeof text,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                 "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
                 status, hp__reason(status), blen, body);
    c->status = status;
    c->resp_head_sent = true;
    if (hp__client_write(c, text, (size_t)n) != 0) {
        hp__client_close(c);
        return;
    }
    if (c->vs != NULL && c->state != HPC_IDLE)
        hp__client_log(c);
    hp__client_end_request(c);
    hp__client_linger(c);
}

static void hp__client_keep_input(struct hp_client *c, const char *data, size_t len)
{
    if (buf_append(&c->in, data, len) != 0)
        hp__client_close(c);
}

/* The server connection is ready: send the request head, then what is buffered. */
static void hp__client_server_ready(struct hp_client *c)
{
    struct http_server_conn *s = c->server;

    if (!hp__client_set_state(c, HPC_FORWARD)) {
        hp__client_close(c);
        return;
    }
    c->server_start_ns = uv_hrtime();
    if (http_server_conn_write(s, c->req.head, c->req.head_len) != 0) {
        hp__client_error(c, 502, METRICS_ERR_SERVER);
        return;
    }
    hp__arm(c, engine_limits(c->engine)->server_ms);
    http_server_conn_update_reading(s);
}

/* The server's written callback: a failed write, or every write done. */
static void hp__on_server_written(void *owner, int status)
{
    struct hp_client *c = owner;

    if (status < 0) {
        if (!c->resp_head_sent)
            hp__client_error(c, 502, METRICS_ERR_SERVER);
        else
            hp__client_close(c);
        return;
    }
    hp__client_update_reading(c);
}

/* The server connection may read the response while it is not complete and the client
 * takes bytes. */
static bool hp__wants_server_input(void *owner)
{
    struct hp_client *c = owner;
    return c->resp.phase != HTTP_MSG_PHASE_DONE && c->pending_writes == 0;
}

static void hp__on_server_connected(void *owner, struct se_server *failed, int status)
{
    struct hp_client *c = owner;

    if (status < 0) {
        if (c->state != HPC_CONNECTING)
            return;
        vlog_debug("http_proxy: connect to %s: %s", failed->label, uv_strerror(status));
        c->avoid = failed;
        if (c->retries < HP__MAX_RETRIES) {
            c->retries++;
            if (hp__client_get_server(c) == 0 && c->state == HPC_FORWARD)
                hp__client_process_buffered(c);
            return;
        }
        hp__client_error(c, 502, METRICS_ERR_CONNECT);
        return;
    }
    if (c->state != HPC_CONNECTING) {
        http_server_conn_release(c->server, true);
        return;
    }
    hp__client_server_ready(c);
    if (c->state == HPC_FORWARD)
        hp__client_process_buffered(c);
}

/* Finds a server and a connection for the current request. Returns 0 when the request can
 * go on (state FORWARD: pooled connection; CONNECTING: connecting), -1 when an answer was
 * sent instead. */
static int hp__client_get_server(struct hp_client *c)
{
    struct se_engine *e = c->engine;
    struct se_server *srv;
    struct http_server_conn *s;
    uint64_t hash = 0;

    if (c->vs->pool->cfg->lb == SE_LB_CONSISTENT_HASH) {
        /* The key: the value of the pool's consistent_hash_header (captured while the head
         * was parsed, under the name the listener had then), else the client IP. */
        size_t key_len = 0;
        const char *key = c->vs->pool->cfg->hash_header ? http_msg_key_value(&c->req, &key_len)
                                                        : NULL;
        if (key != NULL)
            hash = balance_hash(key, key_len);
        else
            hash = balance_hash(&c->peer_addr, sizeof c->peer_addr);
    }
    srv = engine_pick_server(c->vs, hash, c->avoid);
    if (srv == NULL) {
        hp__client_error(c, c->avoid ? 502 : 503,
                         c->avoid ? METRICS_ERR_CONNECT : METRICS_ERR_NO_SERVER);
        return -1;
    }
    c->log_server = srv;
    s = http_server_conn_take_idle(srv, &hp__server_events, c, &c->server);
    if (s != NULL) {
        hp__client_server_ready(c);
        return c->state == HPC_FORWARD ? 0 : -1;
    }
    if (!hp__client_set_state(c, HPC_CONNECTING)) {
        hp__client_close(c);
        return -1;
    }
    if (http_server_conn_open(e, srv, &hp__server_events, c, &c->server) != 0) {
        hp__client_error(c, 502, METRICS_ERR_CONNECT);
        return -1;
    }
    hp__arm(c, engine_limits(e)->connect_ms);
    return 0;
}

/* The request head is complete: decide, rewrite and route it. Returns 0 to go on parsing
 * (FORWARD), -1 to stop (CONNECTING, or answered). */
static int hp__client_request_head(struct hp_client *c)
{
    struct se_listener *l = c->listener;
    http_parser *p = &c->req.parser;
    char *chain, *line;
    int n;

    if (l->closed || l->vs == NULL) {
        hp__client_close(c);
        return -1;
    }
    c->vs = se_vs_ref(l->vs);
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->client_http10 = p->http_major == 1 && p->http_minor == 0;
    c->req_has_body = (p->flags & F_CHUNKED) ||
                      (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (p->http_major != 1 || p->http_minor > 1) {
        hp__client_error(c, 505, METRICS_ERR_CLIENT);
        return -1;
    }
    if (p->upgrade) {
        hp__client_error(c, 501, METRICS_ERR_CLIENT);
        return -1;
    }
    /* X-Forwarded-For: the client's own lines go; with "append" (a trusted proxy in front)
     * their chain is kept and the client's address added, else ("replace", the default at
     * the edge) the backend gets the client's address only, which it cannot forge. */
    chain = http_msg_take_header(&c->req, "x-forwarded-for");
    line = chain == NULL ? NULL : malloc(strlen(chain) + sizeof c->peer_ip + 24);
    n = line == NULL ? -1
        : c->vs->cfg->xff_append && chain[0] != '\0'
            ? sprintf(line, "X-Forwarded-For: %s, %s\r\n", chain, c->peer_ip)
            : sprintf(line, "X-Forwarded-For: %s\r\n", c->peer_ip);
    free(chain);
    if (n < 0 || http_msg_head_append(&c->req, line, (size_t)n) != 0 ||
        http_msg_head_end(&c->req) != 0) {
        free(line);
        hp__client_close(c);
        return -1;
    }
    free(line);
    http_msg_release(&c->resp);
    http_msg_init(&c->resp, HTTP_RESPONSE, engine_limits(c->engine)->head_limit);
    c->resp.no_body = p->method == HTTP_HEAD;
    return hp__client_get_server(c) == 0 && c->state == HPC_FORWARD ? 0 : -1;
}

static void hp__client_begin_request(struct hp_client *c)
{
    c->start_ns = uv_hrtime();
    c->start_wall_ms = time_now_ms();
    c->server_start_ns = c->server_head_ns = 0;
    c->bytes_in = c->bytes_out = 0;
    c->status = 0;
    c->failure[0] = '\0';
    c->retries = 0;
    c->req_done = false;
    c->resp_head_sent = false;
    c->resp_head_pending = false;
    c->close_after = false;
    c->logged = false;
    c->avoid = NULL;
    c->log_server = NULL;
    /* The listener outlives us and keeps the name current across reloads. */
    c->req.key_header = c->listener->hash_header[0] ? c->listener->hash_header : NULL;
}

/* Parses client input; returns how much was used (the caller keeps the rest). */
static size_t hp__client_input(struct hp_client *c, const char *data, size_t len)
{
    size_t off = 0, n, blen;
    const char *body;
    enum http_msg_event ev;

    while (off < len) {
        switch (c->state) {
        case HPC_IDLE:
            if (c->listener->closed) {
                hp__client_close(c);
                return len;
            }
            hp__client_set_state(c, HPC_HEAD);
            hp__client_begin_request(c);
            hp__arm(c, engine_limits(c->engine)->client_head_ms);
            /* fall through */
        case HPC_HEAD:
            ev = http_msg_feed(&c->req, data + off, len - off, &n, &body, &blen);
            c->bytes_in += n;
            off += n;
            if (ev == HTTP_MSG_ERROR) {
                if (c->vs == NULL && c->listener->vs != NULL)
                    c->vs = se_vs_ref(c->listener->vs);
                hp__client_error(c, c->req.error == HTTP_MSG_ERR_TOO_LARGE ? 431 : 400,
                                 METRICS_ERR_CLIENT);
                return len;
            }
            if (ev == HTTP_MSG_HEAD_DONE && hp__client_request_head(c) != 0)
                return c->state == HPC_CONNECTING ? off : len;
            break;
        case HPC_FORWARD:
            if (c->req_done)
                return off;
            ev = http_msg_feed(&c->req, data + off, len - off, &n, &body, &blen);
            c->bytes_in += n;
            off += n;
            if (ev == HTTP_MSG_ERROR) {
                hp__client_error(c, 400, METRICS_ERR_CLIENT);
                return len;
            }
            if (blen > 0 && http_server_conn_write(c->server, body, blen) != 0) {
                hp__client_error(c, 502, METRICS_ERR_SERVER);
                return len;
            }
            if (ev == HTTP_MSG_COMPLETE) {
                c->req_done = true;
                return off;
            }
            hp__touch(c, engine_limits(c->engine)->server_ms);
            break;
        case HPC_CONNECTING:
            return off;
        default:
            return len; /* LINGER, CLOSING: discard */
        }
    }
    return off;
}

static void hp__client_process_buffered(struct hp_client *c)
{
    while (c->in.len > 0 && c->state != HPC_CLOSING && c->state != HPC_CONNECTING) {
        size_t used;
        if (c->state == HPC_FORWARD && c->req_done)
            break;
        if (c->state == HPC_LINGER) {
            c->in.len = 0;
            break;
        }
        used = hp__client_input(c, c->in.data, c->in.len);
        if (c->state == HPC_CLOSING)
            return;
        if (c->state == HPC_LINGER) {
            c->in.len = 0;
            break;
        }
        if (used == 0)
            break;
        buf_consume(&c->in, used);
    }
    buf_trim(&c->in, 16384);
    if (c->server)
        http_server_conn_update_reading(c->server);
    hp__client_update_reading(c);
}

static void hp__on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct hp_client *c = st->data;
    size_t used;

    if (c->state == HPC_CLOSING)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && c->state == HPC_FORWARD && c->req_done) {
            /* half-close after a complete request: answer it, then close */
            c->client_eof = true;
            c->close_after = true;
            hp__client_update_reading(c);
            return;
        }
        hp__client_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->state == HPC_LINGER)
        return;
    used = hp__client_input(c, buf->base, (size_t)nread);
    if (c->state == HPC_CLOSING)
        return;
    if (used < (size_t)nread && c->state != HPC_LINGER)
        hp__client_keep_input(c, buf->base + used, (size_t)nread - used);
    if (c->state == HPC_CLOSING)
        return;
    if (c->server)
        http_server_conn_update_reading(c->server);
    hp__client_update_reading(c);
}

/* The response is complete: log, recycle the server connection, next request. */
static void hp__client_finish(struct hp_client *c, bool server_reusable)
{
    struct http_server_conn *s = c->server;

    hp__client_log(c);
    if (s != NULL)
        http_server_conn_release(s, server_reusable && c->req_done &&
                                  http_should_keep_alive(&c->resp.parser));
    c->server = NULL;
    hp__client_end_request(c);
    http_msg_release(&c->resp);
    if (c->close_after || c->listener->closed) {
        hp__client_linger(c);
        return;
    }
    http_msg_next(&c->req);
    hp__client_set_state(c, HPC_IDLE);
    if (c->in.len == 0)
        http_msg_release(&c->req);
    hp__arm(c, engine_limits(c->engine)->client_idle_ms);
    hp__client_process_buffered(c);
}

/* Sends the rebuilt response head. Returns 0 or -1 (connection closed). */
static int hp__client_response_head(struct hp_client *c)
{
    http_parser *rp = &c->resp.parser;
    int status = rp->status_code;
    bool interim = status / 100 == 1 && status != 101;

    if (!interim) {
        c->status = status;
        c->close_after = c->close_after || !c->keep_alive || !c->req_done || status == 101 ||
                         http_msg_needs_eof(&c->resp) || c->listener->closed;
        if (c->close_after) {
            if (http_msg_head_append(&c->resp, "Connection: close\r\n", 19) != 0)
                return -1;
        } else if (c->client_http10) {
            if (http_msg_head_append(&c->resp, "Connection: keep-alive\r\n", 24) != 0)
                return -1;
        }
    }
    if (http_msg_head_end(&c->resp) != 0)
        return -1;
    if (c->server_head_ns == 0)
        c->server_head_ns = uv_hrtime();
    c->resp_head_sent = true;
    if (interim && c->client_http10)
        return 0; /* HTTP/1.0 clients get no 1xx */
    c->resp_head_pending = true; /* sent with the first body bytes (or at the end of input) */
    return 0;
}

/* The server's response is malformed (http_msg refused it: a bad or huge chunk size, a
 * trailer or head over the limit, bad syntax): the connection is not reused, the log
 * record says why, and the client gets 502 when nothing of the answer has gone to it yet
 * (the head still waits for its first body bytes), else a clean close (a chunked answer
 * then lacks its last chunk, so the client knows it is cut). */
static void hp__server_malformed(struct hp_client *c, struct http_server_conn *s)
{
    const http_parser *p = &c->resp.parser;
    s->dirty = true;
    snprintf(c->failure, sizeof c->failure, "malformed response from the server: %s",
             c->resp.error == HTTP_MSG_ERR_TOO_LARGE ? "head over the size limit"
             : c->resp.error == HTTP_MSG_ERR_NOMEM   ? "out of memory"
             : HTTP_PARSER_ERRNO(p) != HPE_OK        ? http_errno_description(HTTP_PARSER_ERRNO(p))
                                                     : "bad framing");
    if (c->resp_head_pending) {
        c->resp_head_pending = false; /* never sent: this answer replaces it */
        c->resp_head_sent = false;
    }
    if (!c->resp_head_sent) {
        hp__client_error(c, 502, METRICS_ERR_SERVER);
        return;
    }
    if (c->vs != NULL)
        c->vs->metrics->errors[METRICS_ERR_SERVER]++;
    hp__client_close(c);
}

static void hp__server_input(struct http_server_conn *s, const char *data, size_t len)
{
    struct hp_client *c = s->owner;
    size_t off = 0, n, blen;
    const char *body;
    enum http_msg_event ev;

    while (off < len || len == 0) {
        if (c->resp.phase == HTTP_MSG_PHASE_HEAD) {
            if (len == 0)
                break;
            ev = http_msg_feed(&c->resp, data + off, len - off, &n, &body, &blen);
            off += n;
            if (ev == HTTP_MSG_ERROR) {
                hp__server_malformed(c, s);
                return;
            }
            if (ev == HTTP_MSG_HEAD_DONE && hp__client_response_head(c) != 0) {
                hp__client_close(c);
                return;
            }
        } else {
            ev = http_msg_feed(&c->resp, data + off, len - off, &n, &body, &blen);
            off += n;
            if (ev == HTTP_MSG_ERROR) {
                hp__server_malformed(c, s);
                return;
            }
            if ((blen > 0 || c->resp_head_pending) && hp__client_write_body(c, body, blen) != 0) {
                hp__client_close(c);
                return;
            }
            if (ev == HTTP_MSG_COMPLETE) {
                int status = c->resp.parser.status_code;
                if (status / 100 == 1 && status != 101 && len > 0) {
                    http_msg_next(&c->resp); /* interim answer: the final one follows */
                    continue;
                }
                if (off < len || c->resp.body_announced)
                    s->dirty = true; /* bytes after the response, or due: do not reuse */
                hp__client_finish(c, !s->dirty);
                return;
            }
            if (len == 0)
                break;
        }
    }
    if (c->resp_head_pending && hp__client_write_body(c, NULL, 0) != 0) {
        hp__client_close(c);
        return;
    }
    hp__touch(c, engine_limits(c->engine)->server_ms);
}

static void hp__on_server_read(void *owner, struct http_server_conn *s, ssize_t nread,
                               const uv_buf_t *buf)
{
    struct hp_client *c = owner;

    if (nread < 0) {
        if (c->resp.phase == HTTP_MSG_PHASE_BODY && nread == UV_EOF) {
            hp__server_input(s, "", 0); /* read-until-close body ends here */
            if (c->state != HPC_CLOSING && c->server == s)
                hp__client_close(c);
            return;
        }
        if (!c->resp.started && !c->resp_head_sent && s->reused && !c->req_has_body &&
            c->retries < HP__MAX_RETRIES) {
            /* a pooled connection the server had closed: try again on a fresh one */
            c->retries++;
            http_server_conn_close(s);
            if (hp__client_set_state(c, HPC_CONNECTING) && hp__client_get_server(c) == 0 &&
                c->state == HPC_FORWARD)
                hp__client_process_buffered(c);
            return;
        }
        if (!c->resp_head_sent)
            hp__client_error(c, 502, METRICS_ERR_SERVER);
        else
            hp__client_close(c);
        return;
    }
    hp__server_input(s, buf->base, (size_t)nread);
}

static void hp__on_timer(uv_timer_t *t)
{
    struct hp_client *c = t->data;
    uint64_t now = uv_now(engine_loop(c->engine));

    if (c->state == HPC_CLOSING)
        return;
    if (now < c->deadline) {
        uv_timer_start(&c->timer, hp__on_timer, c->deadline - now, 0);
        c->timer_due = c->deadline;
        return;
    }
    switch (c->state) {
    case HPC_IDLE:
    case HPC_LINGER:
        hp__client_close(c);
        break;
    case HPC_HEAD:
        if (c->vs == NULL && c->listener->vs != NULL)
            c->vs = se_vs_ref(c->listener->vs);
        hp__client_error(c, 408, METRICS_ERR_CLIENT);
        break;
    case HPC_CONNECTING:
    case HPC_FORWARD:
        if (c->server)
            c->server->dirty = true;
        hp__client_error(c, 504, METRICS_ERR_TIMEOUT);
        break;
    default:
        break;
    }
}

/* A stop: a connection waiting for its next request closes now; one with a request in
 * flight finishes it (its listener is closed, so the answer says "Connection: close"). */
static void hp__conn_drain(struct se_conn *conn)
{
    struct hp_client *c = (struct hp_client *)((char *)conn - offsetof(struct hp_client, conn));
    if (c->state == HPC_IDLE)
        hp__client_close(c);
}

static void hp__conn_abort(struct se_conn *conn)
{
    hp__client_close((struct hp_client *)((char *)conn - offsetof(struct hp_client, conn)));
}

static const struct se_conn_ops hp__conn_ops = {.drain = hp__conn_drain, .abort = hp__conn_abort};

void http_proxy_accept(void *engine, struct se_listener *l, int fd, const struct sockaddr_in *peer)
{
    struct se_engine *e = engine;
    struct hp_client *c = calloc(1, sizeof *c);

    if (c == NULL) {
        close(fd);
        return;
    }
    if (uv_tcp_init(engine_loop(e), &c->tcp) != 0) {
        free(c);
        close(fd);
        return;
    }
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        c->tcp.data = c;
        c->closing_handles = 1;
        c->listener = listener_ref(l);
        uv_close((uv_handle_t *)&c->tcp, hp__on_client_closed);
        return;
    }
    uv_timer_init(engine_loop(e), &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->shutdown.data = c;
    c->engine = e;
    c->listener = listener_ref(l);
    c->state = HPC_IDLE;
    c->peer_addr = peer->sin_addr.s_addr;
    c->peer_port = ntohs(peer->sin_port);
    inet_ntop(AF_INET, &peer->sin_addr, c->peer_ip, sizeof c->peer_ip);
    http_msg_init(&c->req, HTTP_REQUEST, engine_limits(e)->head_limit);
    http_msg_init(&c->resp, HTTP_RESPONSE, engine_limits(e)->head_limit);
    uv_tcp_nodelay(&c->tcp, 1);
    engine_count_socket(e, 1);
    engine_conn_add(e, &c->conn, &hp__conn_ops);
    c->conn_metrics = l->vs->metrics;
    c->conn_metrics->refs++;
    c->conn_metrics->connections++;
    c->conn_metrics->active++;
    hp__arm(c, engine_limits(e)->client_idle_ms);
    hp__client_update_reading(c);
}
