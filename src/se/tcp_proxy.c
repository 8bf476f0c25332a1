/* tcp_proxy.c: the TCP byte-stream proxy (see tcp_proxy.h).
 *
 * Connection states (tp__set_state is the only writer):
 *   CONNECTING  client accepted, connecting to a server (connect timeout, retries)
 *   STREAMING   bytes flow both ways; each direction ends with an EOF passed on as a
 *               shutdown; when both have ended the connection closes
 *   CLOSING     handles closing; freed in the last close callback */
#include "se/tcp_proxy.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/vlog.h"
#include "se/engine.h"
#include "se/listener.h"
#include "se/stream_write.h"

#define TP__READ_BUF (64 * 1024)
#define TP__MAX_RETRIES 2

enum tp_state { TP_CONNECTING = 0, TP_STREAMING, TP_CLOSING };

/* One direction: bytes read from FROM are written to TO. */
struct tp_side {
    uv_tcp_t tcp;
    int pending_writes;   /* writes towards this side */
    bool reading;
    bool eof;             /* this side sent EOF */
    bool shut;            /* we shut down our writing towards this side */
    uv_shutdown_t shutdown;
};

struct tp_conn {
    struct se_conn conn;         /* listed by the engine while open (drain at a stop) */
    struct tp_side client;
    struct tp_side server;
    uv_connect_t connect;
    uv_timer_t timer;
    struct se_engine *engine;
    struct se_listener *listener;
    struct se_vs *vs;
    struct se_server *srv;       /* one reference while connected or connecting */
    struct se_server *avoid;
    uint8_t state;
    uint8_t retries;
    uint8_t closing_handles;
    bool server_open;            /* server handle initialised */
    bool server_closing;         /* a failed attempt's handle is closing */
    bool counted;
    char peer_ip[16];
    uint16_t peer_port;
    uint32_t peer_addr;
    int64_t start_wall_ms;
    uint64_t start_ns;
    uint64_t connect_ns;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t deadline;
};

static char tp__read_buf[TP__READ_BUF];

static void tp__close(struct tp_conn *t);
static void tp__update_reading(struct tp_conn *t);
static void tp__connect(struct tp_conn *t);

static bool tp__legal(int from, int to)
{
    return (from == TP_CONNECTING && (to == TP_STREAMING || to == TP_CLOSING)) ||
           (from == TP_STREAMING && to == TP_CLOSING);
}

static bool tp__set_state(struct tp_conn *t, int to)
{
    if (!tp__legal(t->state, to)) {
        vlog_error("tcp_proxy: refused illegal move %d -> %d", t->state, to);
        return false;
    }
    t->state = (uint8_t)to;
    return true;
}

static void tp__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = tp__read_buf;
    buf->len = sizeof tp__read_buf;
}

static void tp__on_closed(uv_handle_t *h)
{
    struct tp_conn *t = h->data;
    if (--t->closing_handles > 0)
        return;
    listener_unref(t->listener);
    free(t);
}

static void tp__log(struct tp_conn *t)
{
    struct log_record r;
    uint64_t now = uv_hrtime();

    memset(&r, 0, sizeof r);
    r.kind = LOG_RECORD_TCP;
    r.timestamp_ms = t->start_wall_ms;
    r.vs_name = t->vs->cfg->name;
    r.vs_uuid = t->vs->cfg->uuid;
    memcpy(r.client_ip, t->peer_ip, sizeof r.client_ip);
    r.client_port = t->peer_port;
    if (t->srv != NULL && t->connect_ns) {
        memcpy(r.server_ip, t->srv->cfg.ip, sizeof r.server_ip);
        r.server_port = t->srv->cfg.port;
    }
    r.method = "";
    r.uri = "";
    r.bytes_in = t->bytes_in;
    r.bytes_out = t->bytes_out;
    r.total_ms = (double)(now - t->start_ns) / 1e6;
    r.server_ms = t->connect_ns ? (double)(t->connect_ns - t->start_ns) / 1e6 : -1;
    engine_log(t->engine, &r);
    metrics_vs_record(t->vs->metrics, 0, r.total_ms, t->bytes_in, t->bytes_out);
}

static void tp__close(struct tp_conn *t)
{
    if (t->state == TP_CLOSING)
        return;
    tp__log(t);
    tp__set_state(t, TP_CLOSING);
    engine_conn_remove(t->engine, &t->conn);
    if (t->counted) {
        t->srv->active--;
        t->counted = false;
    }
    t->vs->metrics->active--;
    se_server_unref(t->srv);
    t->srv = NULL;
    se_vs_unref(t->vs);
    t->vs = NULL;
    t->closing_handles = 2;
    engine_count_socket(t->engine, -1);
    uv_close((uv_handle_t *)&t->client.tcp, tp__on_closed);
    uv_close((uv_handle_t *)&t->timer, tp__on_closed);
    if (t->server_closing)
        t->closing_handles++; /* tp__on_attempt_closed finishes it */
    if (t->server_open) {
        t->closing_handles++;
        engine_count_socket(t->engine, -1);
        uv_close((uv_handle_t *)&t->server.tcp, tp__on_closed);
    }
}

static void tp__on_timer(uv_timer_t *h)
{
    struct tp_conn *t = h->data;
    uint64_t now = uv_now(engine_loop(t->engine));

    if (t->state == TP_CLOSING)
        return;
    if (now < t->deadline) {
        uv_timer_start(&t->timer, tp__on_timer, t->deadline - now, 0);
        return;
    }
    if (t->state == TP_CONNECTING)
        t->vs->metrics->errors[METRICS_ERR_TIMEOUT]++;
    tp__close(t);
}

static void tp__on_shutdown(uv_shutdown_t *req, int status)
{
    struct tp_conn *t = req->data;
    if (t->state == TP_CLOSING)
        return;
    if (status < 0) {
        tp__close(t);
        return;
    }
    if (t->client.eof && t->server.eof && t->client.shut && t->server.shut)
        tp__close(t);
}

/* FROM sent EOF: pass it on as a shutdown of our writing towards the other side. */
static void tp__half_close(struct tp_conn *t, struct tp_side *from, struct tp_side *to)
{
    from->eof = true;
    if (!to->shut) {
        to->shut = true;
        to->shutdown.data = t;
        if (uv_shutdown(&to->shutdown, (uv_stream_t *)&to->tcp, tp__on_shutdown) != 0) {
            tp__close(t);
            return;
        }
    }
    tp__update_reading(t);
}

static void tp__on_written(uv_write_t *req, int status)
{
    struct tp_conn *t = stream_write_done(req);
    struct tp_side *to = req->handle == (uv_stream_t *)&t->client.tcp ? &t->client : &t->server;

    to->pending_writes--;
    if (t->state == TP_CLOSING)
        return;
    if (status < 0) {
        tp__close(t);
        return;
    }
    tp__update_reading(t);
}

static int tp__write(struct tp_conn *t, struct tp_side *to, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return stream_write((uv_stream_t *)&to->tcp, &b, 1, &to->pending_writes, tp__on_written, t);
}

static void tp__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct tp_conn *t = st->data;
    bool from_client = st == (uv_stream_t *)&t->client.tcp;
    struct tp_side *from = from_client ? &t->client : &t->server;
    struct tp_side *to = from_client ? &t->server : &t->client;

    if (t->state != TP_STREAMING)
        return;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            tp__half_close(t, from, to);
        else
            tp__close(t);
        return;
    }
    if (from_client)
        t->bytes_in += (uint64_t)nread;
    else
        t->bytes_out += (uint64_t)nread;
    t->deadline = uv_now(engine_loop(t->engine)) + engine_limits(t->engine)->tcp_idle_ms;
    if (tp__write(t, to, buf->base, (size_t)nread) != 0) {
        tp__close(t);
        return;
    }
    tp__update_reading(t);
}

static void tp__side_reading(struct tp_conn *t, struct tp_side *side, bool want)
{
    if (want == side->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&side->tcp, tp__alloc, tp__on_read) != 0)
            return;
    } else {
        uv_read_stop((uv_stream_t *)&side->tcp);
    }
    side->reading = want;
}

static void tp__update_reading(struct tp_conn *t)
{
    if (t->state != TP_STREAMING)
        return;
    tp__side_reading(t, &t->client, !t->client.eof && t->server.pending_writes == 0);
    tp__side_reading(t, &t->server, !t->server.eof && t->client.pending_writes == 0);
    if (t->client.eof && t->server.eof && t->client.pending_writes == 0 &&
        t->server.pending_writes == 0 && t->client.shut && t->server.shut)
        tp__close(t);
}

static void tp__on_attempt_closed(uv_handle_t *h)
{
    struct tp_conn *t = h->data;

    t->server_closing = false;
    if (t->state == TP_CLOSING) {
        tp__on_closed(h);
        return;
    }
    if (t->retries < TP__MAX_RETRIES) {
        t->retries++;
        tp__connect(t);
        return;
    }
    t->vs->metrics->errors[METRICS_ERR_CONNECT]++;
    tp__close(t);
}

static void tp__on_connect(uv_connect_t *req, int status)
{
    struct tp_conn *t = req->data;

    if (t->state != TP_CONNECTING)
        return;
    if (status < 0) {
        vlog_debug("tcp_proxy: connect to %s: %s", t->srv->label, uv_strerror(status));
        t->avoid = t->srv;
        if (t->counted) {
            t->srv->active--;
            t->counted = false;
        }
        /* the handle cannot be reused after a failed connect: close it, retry once closed */
        t->server_open = false;
        t->server_closing = true;
        engine_count_socket(t->engine, -1);
        uv_close((uv_handle_t *)&t->server.tcp, tp__on_attempt_closed);
        return;
    }
    t->connect_ns = uv_hrtime();
    tp__set_state(t, TP_STREAMING);
    t->deadline = uv_now(engine_loop(t->engine)) + engine_limits(t->engine)->tcp_idle_ms;
    uv_timer_start(&t->timer, tp__on_timer, engine_limits(t->engine)->tcp_idle_ms, 0);
    tp__update_reading(t);
}

/* Picks a server and starts connecting (or closes when none is eligible). */
static void tp__connect(struct tp_conn *t)
{
    uint64_t hash = 0;
    struct se_server *srv;

    if (t->vs->pool->cfg->lb == SE_LB_CONSISTENT_HASH)
        hash = balance_hash(&t->peer_addr, sizeof t->peer_addr);
    srv = engine_pick_server(t->vs, hash, t->avoid);
    if (srv == NULL) {
        t->vs->metrics->errors[t->avoid ? METRICS_ERR_CONNECT : METRICS_ERR_NO_SERVER]++;
        tp__close(t);
        return;
    }
    se_server_unref(t->srv);
    t->srv = se_server_ref(srv);
    srv->active++;
    t->counted = true;
    if (uv_tcp_init(engine_loop(t->engine), &t->server.tcp) != 0) {
        tp__close(t);
        return;
    }
    t->server.tcp.data = t;
    t->server_open = true;
    engine_count_socket(t->engine, 1);
    uv_tcp_nodelay(&t->server.tcp, 1);
    t->connect.data = t;
    if (uv_tcp_connect(&t->connect, &t->server.tcp, (const struct sockaddr *)&srv->cfg.addr,
                       tp__on_connect) != 0) {
        tp__close(t);
        return;
    }
    t->deadline = uv_now(engine_loop(t->engine)) + engine_limits(t->engine)->connect_ms;
    uv_timer_start(&t->timer, tp__on_timer, engine_limits(t->engine)->connect_ms, 0);
}

/* A stop: a byte stream has no request boundary; it goes on until both sides ended or
 * the drain deadline (abort). */
static void tp__conn_drain(struct se_conn *conn)
{
    (void)conn;
}

static void tp__conn_abort(struct se_conn *conn)
{
    tp__close((struct tp_conn *)((char *)conn - offsetof(struct tp_conn, conn)));
}

static const struct se_conn_ops tp__conn_ops = {.drain = tp__conn_drain, .abort = tp__conn_abort};

void tcp_proxy_accept(void *engine, struct se_listener *l, int fd, const struct sockaddr_in *peer)
{
    struct se_engine *e = engine;
    struct tp_conn *t = calloc(1, sizeof *t);

    if (t == NULL) {
        close(fd);
        return;
    }
    if (uv_tcp_init(engine_loop(e), &t->client.tcp) != 0 || uv_tcp_open(&t->client.tcp, fd) != 0) {
        /* uv_tcp_init cannot fail on Linux; uv_tcp_open only on a bad fd */
        close(fd);
        free(t);
        return;
    }
    uv_timer_init(engine_loop(e), &t->timer);
    t->client.tcp.data = t;
    t->timer.data = t;
    t->engine = e;
    t->listener = listener_ref(l);
    t->vs = se_vs_ref(l->vs);
    t->state = TP_CONNECTING;
    t->peer_addr = peer->sin_addr.s_addr;
    t->peer_port = ntohs(peer->sin_port);
    inet_ntop(AF_INET, &peer->sin_addr, t->peer_ip, sizeof t->peer_ip);
    t->start_ns = uv_hrtime();
    t->start_wall_ms = time_now_ms();
    uv_tcp_nodelay(&t->client.tcp, 1);
    engine_count_socket(e, 1);
    engine_conn_add(e, &t->conn, &tp__conn_ops);
    t->vs->metrics->connections++;
    t->vs->metrics->active++;
    tp__connect(t);
}
