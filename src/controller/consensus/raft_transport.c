#include "controller/consensus/raft_transport.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/vlog.h"

/* One outgoing connection attempt: the request handed to raft_uv_tcp is ours, so that its
 * callback finds libraft's request (whose data field belongs to libraft) and the stream. */
struct raft_transport__connect {
    struct raft_uv_connect req;      /* handed to raft_uv_tcp */
    struct raft_uv_connect *outer;   /* libraft's request */
    raft_uv_connect_cb outer_cb;
    struct raft_transport *t;
    uint64_t id;
};

/* Remembers STREAM as a connection with peer ID (a free slot, or the oldest). */
static void raft_transport__remember(struct raft_transport *t, uint64_t id,
                                     struct uv_stream_s *stream)
{
    struct raft_transport_stream *s = NULL;
    uv_os_fd_t fd;

    if (stream == NULL || stream->type != UV_TCP || id == 0 ||
        uv_fileno((uv_handle_t *)stream, &fd) != 0)
        return;
    for (unsigned i = 0; i < RAFT_TRANSPORT_STREAMS && s == NULL; i++)
        if (t->streams[i].id == 0 || t->streams[i].fd == fd)
            s = &t->streams[i];
    if (s == NULL) {
        s = &t->streams[t->next_slot];
        t->next_slot = (t->next_slot + 1) % RAFT_TRANSPORT_STREAMS;
    }
    memset(s, 0, sizeof *s);
    s->local_len = sizeof s->local;
    s->peer_len = sizeof s->peer;
    if (getsockname(fd, (struct sockaddr *)&s->local, &s->local_len) != 0 ||
        getpeername(fd, (struct sockaddr *)&s->peer, &s->peer_len) != 0)
        return; /* not connected: nothing to recognise it by */
    s->fd = fd;
    s->id = id;
}

/* True when socket FD is still the connection S recorded (same addresses both ends). */
static int raft_transport__same(const struct raft_transport_stream *s)
{
    struct sockaddr_storage local, peer;
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    return getsockname(s->fd, (struct sockaddr *)&local, &local_len) == 0 &&
           getpeername(s->fd, (struct sockaddr *)&peer, &peer_len) == 0 &&
           local_len == s->local_len && peer_len == s->peer_len &&
           memcmp(&local, &s->local, local_len) == 0 && memcmp(&peer, &s->peer, peer_len) == 0;
}

/* True when the kernel is retransmitting on socket FD (unacknowledged data, backing off). */
static int raft_transport__retransmitting(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return 0;
    return info.tcpi_retransmits > 0 || info.tcpi_backoff > 0;
}

unsigned raft_transport_kick(struct raft_transport *t, uint64_t id)
{
    unsigned ended = 0;
    for (unsigned i = 0; i < RAFT_TRANSPORT_STREAMS; i++) {
        struct raft_transport_stream *s = &t->streams[i];
        if (s->id != id)
            continue;
        if (!raft_transport__same(s)) {
            s->id = 0; /* gone (libraft closed it): forget it */
            continue;
        }
        if (raft_transport__retransmitting(s->fd) && shutdown(s->fd, SHUT_RDWR) == 0) {
            ended++;
            s->id = 0;
        }
    }
    return ended;
}

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
    raft_transport__remember(t, id, stream);
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

    if (status == 0) {
        raft_transport__nodelay(stream);
        raft_transport__remember(c->t, c->id, stream);
    }
    free(c);
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
    c->t = t;
    c->id = id;
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
