/* listener.c: listening sockets with accept under our control. */
#include "se/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/vlog.h"

#define LISTENER__BACKLOG 4096
#define LISTENER__ACCEPT_BATCH 64

static void listener__on_readable(uv_poll_t *p, int status, int events)
{
    struct se_listener *l = p->data;

    if (status < 0 || l->closed)
        return;
    for (int i = 0; i < LISTENER__ACCEPT_BATCH && !l->closed && l->polling; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                vlog_warn("listener %s: accept: %s; accepting pauses", l->label,
                          strerror(errno));
                l->hooks.out_of_fds(l->hooks.arg);
            }
            return;
        }
        if (l->vs == NULL || peer.sin_family != AF_INET) {
            close(fd);
            continue;
        }
        l->hooks.accept(l->hooks.arg, l, fd, &peer);
    }
}

int listener_open(uv_loop_t *loop, const struct sockaddr_in *addr,
                  const struct listener_hooks *hooks, bool paused, struct se_listener **out)
{
    struct se_listener *l;
    int fd, one = 1, err;
    char ip[16];

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 ||
        listen(fd, LISTENER__BACKLOG) != 0) {
        err = -errno;
        close(fd);
        return err;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        close(fd);
        return -ENOMEM;
    }
    l->refs = 1;
    l->hooks = *hooks;
    l->fd = fd;
    l->addr = *addr;
    inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof ip);
    snprintf(l->label, sizeof l->label, "%s:%u", ip, ntohs(addr->sin_port));
    err = uv_poll_init(loop, &l->poll, fd);
    if (err != 0) {
        close(fd);
        free(l);
        return err;
    }
    l->poll.data = l;
    if (!paused)
        listener_resume(l);
    *out = l;
    return 0;
}

struct se_vs *listener_set_vs(struct se_listener *l, struct se_vs *vs)
{
    struct se_vs *old = l->vs;
    const char *header = NULL;

    l->vs = vs;
    if (vs != NULL && vs->cfg->app == SE_APP_HTTP && vs->pool->cfg->lb == SE_LB_CONSISTENT_HASH)
        header = vs->pool->cfg->hash_header;
    snprintf(l->hash_header, sizeof l->hash_header, "%s", header ? header : "");
    return old;
}

void listener_pause(struct se_listener *l)
{
    if (l->polling) {
        uv_poll_stop(&l->poll);
        l->polling = false;
    }
}

void listener_resume(struct se_listener *l)
{
    if (!l->polling && !l->closed) {
        uv_poll_start(&l->poll, UV_READABLE, listener__on_readable);
        l->polling = true;
    }
}

static void listener__on_closed(uv_handle_t *h)
{
    struct se_listener *l = h->data;
    close(l->fd);
    l->fd = -1;
    listener_unref(l);
}

void listener_close(struct se_listener *l)
{
    if (l->closed)
        return;
    listener_pause(l);
    l->closed = true;
    uv_close((uv_handle_t *)&l->poll, listener__on_closed);
}

struct se_listener *listener_ref(struct se_listener *l)
{
    l->refs++;
    return l;
}

void listener_unref(struct se_listener *l)
{
    if (l != NULL && --l->refs == 0)
        free(l);
}
