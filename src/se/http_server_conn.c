/* http_server_conn.c: the HTTP proxy's server connections (see http_server_conn.h). */
#include "se/http_server_conn.h"

#include <stddef.h>
#include <stdlib.h>

#include "common/vlog.h"
#include "se/conn_pool.h"
#include "se/engine.h"
#include "se/stream_write.h"

#define HTTP_SERVER_CONN__READ_BUF (64 * 1024)

static char http_server_conn__read_buf[HTTP_SERVER_CONN__READ_BUF];

static const char *http_server_conn__state_name(enum http_server_conn_state s)
{
    static const char *const names[] = {"CONNECTING", "BUSY", "IDLE", "CLOSING"};
    return (unsigned)s <= HTTP_SERVER_CONN_CLOSING ? names[s] : "?";
}

/* The legal moves: a connect ends BUSY; BUSY <-> IDLE through the pool; anything closes. */
static bool http_server_conn__legal(enum http_server_conn_state from, enum http_server_conn_state to)
{
    if (to == HTTP_SERVER_CONN_CLOSING)
        return from != HTTP_SERVER_CONN_CLOSING;
    return (from == HTTP_SERVER_CONN_CONNECTING && to == HTTP_SERVER_CONN_BUSY) ||
           (from == HTTP_SERVER_CONN_BUSY && to == HTTP_SERVER_CONN_IDLE) ||
           (from == HTTP_SERVER_CONN_IDLE && to == HTTP_SERVER_CONN_BUSY);
}

static bool http_server_conn__set_state(struct http_server_conn *s, enum http_server_conn_state to)
{
    if (!http_server_conn__legal(s->state, to)) {
        vlog_error("http_server_conn: refused illegal move %s -> %s",
                   http_server_conn__state_name(s->state), http_server_conn__state_name(to));
        return false;
    }
    s->state = to;
    return true;
}

static void http_server_conn__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = http_server_conn__read_buf;
    buf->len = sizeof http_server_conn__read_buf;
}

/* S leaves its owner: the owner's pointer to it is cleared. */
static void http_server_conn__detach(struct http_server_conn *s)
{
    if (s->back != NULL && *s->back == s)
        *s->back = NULL;
    s->back = NULL;
    s->owner = NULL;
    if (s->counted) {
        s->srv->active--;
        s->counted = false;
    }
}

static void http_server_conn__attach(struct http_server_conn *s, struct se_server *srv,
                                     const struct http_server_conn_events *ev, void *owner,
                                     struct http_server_conn **back)
{
    s->ev = ev;
    s->owner = owner;
    s->back = back;
    *back = s;
    s->counted = true;
    srv->active++;
}

static void http_server_conn__on_closed(uv_handle_t *h)
{
    struct http_server_conn *s = h->data;
    se_server_unref(s->srv);
    free(s);
}

void http_server_conn_close(struct http_server_conn *s)
{
    if (s->state == HTTP_SERVER_CONN_CLOSING)
        return;
    if (s->state == HTTP_SERVER_CONN_IDLE)
        conn_pool_remove(&s->idle);
    http_server_conn__detach(s);
    http_server_conn__set_state(s, HTTP_SERVER_CONN_CLOSING);
    engine_count_socket(s->engine, -1);
    uv_close((uv_handle_t *)&s->tcp, http_server_conn__on_closed);
}

static void http_server_conn__close_pooled(struct conn_pool_entry *e)
{
    http_server_conn_close(
        (struct http_server_conn *)((char *)e - offsetof(struct http_server_conn, idle)));
}

void http_server_conn_release(struct http_server_conn *s, bool reusable)
{
    struct se_server *srv = s->srv;

    http_server_conn__detach(s);
    if (!reusable || s->dirty || srv->retired || s->pending_writes > 0 ||
        srv->idle.n >= engine_limits(s->engine)->idle_per_server ||
        !http_server_conn__set_state(s, HTTP_SERVER_CONN_IDLE)) {
        http_server_conn_close(s);
        return;
    }
    s->reused = true;
    conn_pool_push(&srv->idle, &s->idle, http_server_conn__close_pooled);
    http_server_conn_update_reading(s); /* an idle connection reads to notice the server closing */
}

struct http_server_conn *http_server_conn_take_idle(struct se_server *srv,
                                                    const struct http_server_conn_events *ev,
                                                    void *owner, struct http_server_conn **back)
{
    struct conn_pool_entry *e = conn_pool_pop(&srv->idle);
    struct http_server_conn *s;

    if (e == NULL)
        return NULL;
    s = (struct http_server_conn *)((char *)e - offsetof(struct http_server_conn, idle));
    http_server_conn__set_state(s, HTTP_SERVER_CONN_BUSY);
    http_server_conn__attach(s, srv, ev, owner, back);
    return s;
}

static void http_server_conn__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_server_conn *s = st->data;

    if (s->state == HTTP_SERVER_CONN_IDLE || s->owner == NULL) {
        if (nread != 0)
            http_server_conn_close(s); /* an idle connection must stay silent */
        return;
    }
    if (s->state != HTTP_SERVER_CONN_BUSY || nread == 0)
        return;
    if (nread < 0)
        s->dirty = true;
    s->ev->read(s->owner, s, nread, buf);
    if (nread > 0 && s->state == HTTP_SERVER_CONN_BUSY && s->owner != NULL)
        http_server_conn_update_reading(s);
}

void http_server_conn_update_reading(struct http_server_conn *s)
{
    bool want = false;

    if (s->state == HTTP_SERVER_CONN_IDLE)
        want = true;
    else if (s->state == HTTP_SERVER_CONN_BUSY && s->owner != NULL)
        want = s->ev->wants_input(s->owner);
    if (want == s->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&s->tcp, http_server_conn__alloc,
                          http_server_conn__on_read) != 0)
            return;
    } else {
        uv_read_stop((uv_stream_t *)&s->tcp);
    }
    s->reading = want;
}

static void http_server_conn__on_connect(uv_connect_t *req, int status)
{
    struct http_server_conn *s = req->data;
    const struct http_server_conn_events *ev = s->ev;
    void *owner = s->owner;

    if (s->state == HTTP_SERVER_CONN_CLOSING)
        return;
    if (status < 0) {
        s->dirty = true;
        http_server_conn_close(s);
        if (owner != NULL)
            ev->connected(owner, s->srv, status);
        return;
    }
    http_server_conn__set_state(s, HTTP_SERVER_CONN_BUSY);
    if (owner == NULL) {
        http_server_conn_release(s, true);
        return;
    }
    ev->connected(owner, s->srv, 0);
}

int http_server_conn_open(struct se_engine *e, struct se_server *srv,
                          const struct http_server_conn_events *ev, void *owner,
                          struct http_server_conn **back)
{
    struct http_server_conn *s = calloc(1, sizeof *s);
    int err;

    if (s == NULL)
        return UV_ENOMEM;
    err = uv_tcp_init(engine_loop(e), &s->tcp);
    if (err != 0) {
        free(s);
        return err;
    }
    s->tcp.data = s;
    s->connect.data = s;
    s->engine = e;
    s->srv = se_server_ref(srv);
    s->state = HTTP_SERVER_CONN_CONNECTING;
    http_server_conn__attach(s, srv, ev, owner, back);
    engine_count_socket(e, 1);
    uv_tcp_nodelay(&s->tcp, 1);
    err = uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&srv->cfg.addr,
                         http_server_conn__on_connect);
    if (err != 0) {
        s->dirty = true;
        http_server_conn_close(s);
        return err;
    }
    return 0;
}

static void http_server_conn__on_written(uv_write_t *req, int status)
{
    struct http_server_conn *s = stream_write_done(req);

    s->pending_writes--;
    if (s->state == HTTP_SERVER_CONN_CLOSING)
        return;
    if (status < 0) {
        s->dirty = true;
        if (s->owner == NULL) {
            http_server_conn_close(s);
            return;
        }
    }
    if (s->owner != NULL && (status < 0 || s->pending_writes == 0))
        s->ev->written(s->owner, status);
}

int http_server_conn_write(struct http_server_conn *s, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return stream_write((uv_stream_t *)&s->tcp, &b, 1, &s->pending_writes,
                        http_server_conn__on_written, s);
}
