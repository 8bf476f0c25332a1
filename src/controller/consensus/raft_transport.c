#include "controller/consensus/raft_transport.h"

#include <stddef.h>
#include <stdlib.h>

#include "common/vlog.h"

/* One outgoing connection attempt: the request handed to raft_uv_tcp is ours, so that its
 * callback finds libraft's request (whose data field belongs to libraft) and the stream. */
struct raft_transport__connect {
    struct raft_uv_connect req;      /* handed to raft_uv_tcp */
    struct raft_uv_connect *outer;   /* libraft's request */
    raft_uv_connect_cb outer_cb;
};

static void raft_transport__nodelay(struct uv_stream_s *stream)
{
    int rc;
    if (stream == NULL || stream->type != UV_TCP)
        return;
    rc = uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    if (rc != 0)
        vlog_warn("raft transport: TCP_NODELAY: %s (messages may wait for ACKs)",
                  uv_strerror(rc));
}

static int raft_transport__init(struct raft_uv_transport *uv, raft_id id, const char *address)
{
    struct raft_transport *t = uv->impl;
    int rv = t->tcp.init(&t->tcp, id, address);
    if (rv != 0)
        snprintf(uv->errmsg, sizeof uv->errmsg, "%s", t->tcp.errmsg);
    return rv;
}

static void raft_transport__on_accept(struct raft_uv_transport *tcp, raft_id id,
                                      const char *address, struct uv_stream_s *stream)
{
    struct raft_transport *t = tcp->data;
    raft_transport__nodelay(stream);
    t->accept_cb(&t->uv, id, address, stream);
}

static int raft_transport__listen(struct raft_uv_transport *uv, raft_uv_accept_cb cb)
{
    struct raft_transport *t = uv->impl;
    int rv;
    t->accept_cb = cb;
    rv = t->tcp.listen(&t->tcp, raft_transport__on_accept);
    if (rv != 0)
        snprintf(uv->errmsg, sizeof uv->errmsg, "%s", t->tcp.errmsg);
    return rv;
}

static void raft_transport__on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream,
                                       int status)
{
    struct raft_transport__connect *c = req->data;
    struct raft_uv_connect *outer = c->outer;
    raft_uv_connect_cb cb = c->outer_cb;

    free(c);
    if (status == 0)
        raft_transport__nodelay(stream);
    outer->cb = cb;
    cb(outer, stream, status);
}

static int raft_transport__connect(struct raft_uv_transport *uv, struct raft_uv_connect *req,
                                   raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct raft_transport *t = uv->impl;
    struct raft_transport__connect *c = calloc(1, sizeof *c);
    int rv;

    if (c == NULL)
        return RAFT_NOMEM;
    c->req.data = c;
    c->outer = req;
    c->outer_cb = cb;
    rv = t->tcp.connect(&t->tcp, &c->req, id, address, raft_transport__on_connect);
    if (rv != 0) {
        snprintf(uv->errmsg, sizeof uv->errmsg, "%s", t->tcp.errmsg);
        free(c);
    }
    return rv;
}

static void raft_transport__on_closed(struct raft_uv_transport *tcp)
{
    struct raft_transport *t = tcp->data;
    if (t->close_cb != NULL)
        t->close_cb(&t->uv);
}

static void raft_transport__close(struct raft_uv_transport *uv, raft_uv_transport_close_cb cb)
{
    struct raft_transport *t = uv->impl;
    t->close_cb = cb;
    t->tcp.close(&t->tcp, raft_transport__on_closed);
}

int raft_transport_init(struct raft_transport *t, uv_loop_t *loop)
{
    int rv;

    *t = (struct raft_transport){0};
    rv = raft_uv_tcp_init(&t->tcp, loop);
    if (rv != 0)
        return rv;
    t->tcp.data = t;
    t->uv.impl = t;
    t->uv.init = raft_transport__init;
    t->uv.listen = raft_transport__listen;
    t->uv.connect = raft_transport__connect;
    t->uv.close = raft_transport__close;
    return 0;
}

struct raft_uv_transport *raft_transport_uv(struct raft_transport *t)
{
    return &t->uv;
}

void raft_transport_close(struct raft_transport *t)
{
    raft_uv_tcp_close(&t->tcp);
}
