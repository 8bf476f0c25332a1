/* health_probe.c: TCP and HTTP health checks on the loop. */
#include "se/health_probe.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/vlog.h"

struct probe_attempt;

struct probe {
    uv_loop_t *loop;
    const char *label;            /* borrowed: the server's "ip:port" */
    const char *pool_key;         /* borrowed */
    probe_change_fn *on_change;
    void *arg;
    struct se_monitor_config cfg; /* http_request owned */
    char *monitor_name;
    struct health health;
    uv_timer_t timer;
    struct probe_attempt *attempt;
    struct sockaddr_in addr;
    char *request;                /* full HTTP request text */
    size_t request_len;
};

struct probe_attempt {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timeout;
    struct probe *probe;          /* NULL once abandoned */
    int handles;
    bool done;
    size_t got;
    char buf[128];
};

static void probe__attempt_closed(uv_handle_t *h)
{
    struct probe_attempt *a = h->data;
    if (--a->handles == 0)
        free(a);
}

static void probe__attempt_end(struct probe_attempt *a)
{
    if (a->handles > 0)
        return;
    a->handles = 2;
    uv_close((uv_handle_t *)&a->tcp, probe__attempt_closed);
    uv_close((uv_handle_t *)&a->timeout, probe__attempt_closed);
}

static void probe__result(struct probe_attempt *a, bool ok, const char *reason)
{
    struct probe *p = a->probe;
    int changed;

    if (a->done)
        return;
    a->done = true;
    if (p != NULL) {
        p->attempt = NULL;
        changed = health_record(&p->health, ok, p->cfg.rise, p->cfg.fall, reason, time_now_ms());
        if (changed > 0) {
            vlog_info("health: server %s (pool %s) is %s under monitor %s: %s", p->label,
                      p->pool_key, health_state_name(p->health.state), p->monitor_name,
                      reason);
            p->on_change(p->arg);
        }
    }
    probe__attempt_end(a);
}

static void probe__on_timeout(uv_timer_t *t)
{
    probe__result(t->data, false, "no answer within receive_timeout");
}

static void probe__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe_attempt *a = h->data;
    buf->base = a->buf + a->got;
    buf->len = sizeof a->buf - 1 - a->got;
}

static void probe__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct probe_attempt *a = st->data;
    struct probe *p = a->probe;
    char reason[64];
    char *eol;
    int major, minor, code;

    if (a->done || nread == 0)
        return;
    if (nread < 0 && a->got == 0) {
        probe__result(a, false, nread == UV_EOF ? "closed without answering" : uv_strerror((int)nread));
        return;
    }
    if (nread > 0)
        a->got += (size_t)nread;
    a->buf[a->got] = '\0';
    eol = strchr(a->buf, '\n');
    if (eol == NULL && nread > 0 && a->got < sizeof a->buf - 1)
        return; /* the status line goes on */
    if (p == NULL) {
        probe__result(a, false, "abandoned");
        return;
    }
    if (sscanf(a->buf, "HTTP/%d.%d %3d", &major, &minor, &code) != 3 || code < 100 ||
        code > 599) {
        probe__result(a, false, "not an HTTP status line");
        return;
    }
    snprintf(reason, sizeof reason, "HTTP status %d", code);
    probe__result(a, (p->cfg.codes & (1u << (code / 100))) != 0, reason);
}

static void probe__on_written(uv_write_t *req, int status)
{
    struct probe_attempt *a = req->data;
    if (status < 0 && status != UV_ECANCELED)
        probe__result(a, false, uv_strerror(status));
}

static void probe__on_connect(uv_connect_t *req, int status)
{
    struct probe_attempt *a = req->data;
    struct probe *p = a->probe;
    uv_buf_t b;

    if (a->done)
        return;
    if (status < 0) {
        char reason[80];
        snprintf(reason, sizeof reason, "connect: %s", uv_strerror(status));
        probe__result(a, false, reason);
        return;
    }
    if (p == NULL || p->cfg.type == SE_MONITOR_TCP) {
        probe__result(a, p != NULL, "connect succeeded");
        return;
    }
    b = uv_buf_init(p->request, (unsigned)p->request_len);
    a->write.data = a;
    if (uv_write(&a->write, (uv_stream_t *)&a->tcp, &b, 1, probe__on_written) != 0 ||
        uv_read_start((uv_stream_t *)&a->tcp, probe__alloc, probe__on_read) != 0)
        probe__result(a, false, "cannot send the request");
}

static void probe__on_tick(uv_timer_t *t)
{
    struct probe *p = t->data;
    struct probe_attempt *a;

    if (p->attempt != NULL)
        return; /* the previous check is still running (its timeout ends it) */
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return;
    a->probe = p;
    uv_tcp_init(p->loop, &a->tcp);
    uv_timer_init(p->loop, &a->timeout);
    a->tcp.data = a;
    a->timeout.data = a;
    a->connect.data = a;
    p->attempt = a;
    uv_timer_start(&a->timeout, probe__on_timeout, p->cfg.timeout_ms, 0);
    if (uv_tcp_connect(&a->connect, &a->tcp, (const struct sockaddr *)&p->addr,
                       probe__on_connect) != 0)
        probe__result(a, false, "connect failed");
}

/* The request to send: the monitor's text, HTTP/1.0 added when no version is given,
 * then Host and Connection: close unless the text already has header lines. */
static char *probe__build_request(const struct probe *p, size_t *len)
{
    const char *r = p->cfg.http_request ? p->cfg.http_request : "GET / HTTP/1.0";
    const char *eol = strstr(r, "\r\n");
    size_t first = eol ? (size_t)(eol - r) : strlen(r);
    bool has_version = first >= 9 && memcmp(r + first - 9, " HTTP/1.", 8) == 0;
    char host[32];
    char *out = NULL;
    int n;

    inet_ntop(AF_INET, &p->addr.sin_addr, host, sizeof host);
    n = asprintf(&out, "%.*s%s%s\r\nHost: %s:%u\r\nUser-Agent: vigil-se-health\r\n"
                 "Connection: close\r\n\r\n",
                 (int)first, r, has_version ? "" : " HTTP/1.0", eol ? eol : "", host,
                 ntohs(p->addr.sin_port));
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return out;
}

struct probe *probe_start(uv_loop_t *loop, const struct sockaddr_in *addr, const char *label,
                          const char *pool_key, const struct se_monitor_config *m,
                          probe_change_fn *on_change, void *arg)
{
    struct probe *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->label = label;
    p->pool_key = pool_key;
    p->on_change = on_change;
    p->arg = arg;
    p->cfg = *m;
    p->cfg.name = NULL;
    p->cfg.uuid = NULL;
    p->cfg.http_request = m->http_request ? strdup(m->http_request) : NULL;
    p->monitor_name = strdup(m->name ? m->name : "?");
    health_init(&p->health);
    p->addr = *addr;
    if (m->port != 0)
        p->addr.sin_port = htons(m->port);
    if (m->type == SE_MONITOR_HTTP)
        p->request = probe__build_request(p, &p->request_len);
    if (p->monitor_name == NULL || (m->type == SE_MONITOR_HTTP && p->request == NULL)) {
        free(p->cfg.http_request);
        free(p->monitor_name);
        free(p->request);
        free(p);
        return NULL;
    }
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, probe__on_tick, 0, p->cfg.interval_ms);
    return p;
}

const struct health *probe_health(const struct probe *p)
{
    return &p->health;
}

const char *probe_monitor_name(const struct probe *p)
{
    return p->monitor_name;
}

static void probe__on_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    free(p->cfg.http_request);
    free(p->monitor_name);
    free(p->request);
    free(p);
}

void probe_stop(struct probe *p)
{
    if (p->attempt != NULL) {
        p->attempt->probe = NULL;
        p->attempt->done = true;
        probe__attempt_end(p->attempt);
        p->attempt = NULL;
    }
    uv_close((uv_handle_t *)&p->timer, probe__on_closed);
}
