/* admin.c: GET /status and GET /metrics. */
#include "se/admin.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom_text.h"
#include "common/vlog.h"
#include "se/engine.h"
#include "se/log_sink.h"
#include "se/metrics.h"
#include "se/se_state.h"

#define ADMIN__URL_MAX 256

struct admin {
    uv_tcp_t tcp;
    struct se_engine *engine;
    struct admin_source src;
};

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct admin *admin;
    http_parser parser;
    char url[ADMIN__URL_MAX];
    size_t url_len;
    bool answered;
    int handles;
};

struct admin_write {
    uv_write_t req;
    struct admin_conn *conn;
    char *data;
};

static void admin__conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->handles == 0)
        free(c);
}

static void admin__conn_close(struct admin_conn *c)
{
    if (c->handles > 0)
        return;
    c->handles = 2;
    uv_close((uv_handle_t *)&c->tcp, admin__conn_closed);
    uv_close((uv_handle_t *)&c->timer, admin__conn_closed);
}

static void admin__written(uv_write_t *req, int status)
{
    struct admin_write *w = (struct admin_write *)req;
    struct admin_conn *c = w->conn;
    free(w->data);
    free(w);
    admin__conn_close(c);
}

static void admin__respond(struct admin_conn *c, int status, const char *reason,
                           const char *type, const char *body, size_t len)
{
    struct admin_write *w = calloc(1, sizeof *w);
    uv_buf_t b;
    int n;

    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (w == NULL ||
        (n = asprintf(&w->data, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\nCache-Control: no-store\r\n\r\n%.*s",
                      status, reason, type, len, (int)len, body)) < 0) {
        free(w);
        admin__conn_close(c);
        return;
    }
    w->conn = c;
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, admin__written) != 0) {
        free(w->data);
        free(w);
        admin__conn_close(c);
    }
}

static void admin__metrics(struct admin_conn *c)
{
    struct se_engine *e = c->admin->engine;
    struct log_sink_stats ls;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL) {
        admin__respond(c, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
        return;
    }
    metrics_render(f);
    log_sink_stats(e->sink, &ls);
    prom_text_family(f, "vigil_se_config_version", "gauge", "Configuration generation applied");
    prom_text_sample_u64(f, "vigil_se_config_version", NULL, e->config_version);
    prom_text_family(f, "vigil_se_log_records_total", "counter", "Log records by outcome");
    prom_text_sample_u64(f, "vigil_se_log_records_total", "outcome=\"generated\"", ls.generated);
    prom_text_sample_u64(f, "vigil_se_log_records_total", "outcome=\"acked\"", ls.acked);
    prom_text_sample_u64(f, "vigil_se_log_records_total", "outcome=\"dropped\"", ls.dropped);
    prom_text_family(f, "vigil_se_server_up", "gauge", "Server health (1 up or unknown, 0 down)");
    for (struct se_server *s = e->servers; s; s = s->next) {
        char labels[700];
        const char *const keys[] = {"pool", "server"}, *values[] = {s->pool_key, s->label};
        if (s->retired)
            continue;
        prom_text_sample_u64(f, "vigil_se_server_up",
                             prom_text_labels(labels, sizeof labels, keys, values, 2),
                             s->state != HEALTH_DOWN);
    }
    prom_text_family(f, "vigil_se_state", "gauge", "The SE state (1 for the current one)");
    for (int i = 0; i < SE_STATE__COUNT; i++) {
        const char *name = se_state_name((enum se_state)i);
        char labels[64];
        const char *const keys[] = {"state"}, *values[] = {name};
        prom_text_sample_u64(f, "vigil_se_state",
                             prom_text_labels(labels, sizeof labels, keys, values, 1),
                             strcmp(name, c->admin->src.state(c->admin->src.arg)) == 0);
    }
    prom_text_family(f, "vigil_se_sockets_open", "gauge", "Proxy sockets open");
    prom_text_sample_u64(f, "vigil_se_sockets_open", NULL, e->open_connections);
    fclose(f);
    admin__respond(c, 200, "OK", PROM_TEXT_CONTENT_TYPE, text, len);
    free(text);
}

static int admin__on_url(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (c->url_len + len >= sizeof c->url)
        return -1;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int admin__on_complete(http_parser *p)
{
    struct admin_conn *c = p->data;
    struct admin *a = c->admin;
    char *q = strchr(c->url, '?');

    if (q)
        *q = '\0';
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        admin__respond(c, 405, "Method Not Allowed", "application/json",
                       "{\"error\": \"only GET\"}\n", 21);
    } else if (strcmp(c->url, "/status") == 0) {
        json_t *doc = engine_status_json(a->engine, a->src.state(a->src.arg),
                                         a->src.controllers(a->src.arg));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (text == NULL) {
            admin__respond(c, 500, "Internal Server Error", "text/plain", "error\n", 6);
        } else {
            admin__respond(c, 200, "OK", "application/json", text, strlen(text));
            free(text);
        }
    } else if (strcmp(c->url, "/metrics") == 0) {
        admin__metrics(c);
    } else {
        admin__respond(c, 404, "Not Found", "application/json",
                       "{\"error\": \"not found\"}\n", 23);
    }
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings admin__settings = {
    .on_url = admin__on_url,
    .on_message_complete = admin__on_complete,
};

static void admin__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char space[4096];
    buf->base = space;
    buf->len = sizeof space;
}

static void admin__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = st->data;
    size_t n;

    if (c->answered || c->handles > 0)
        return;
    if (nread < 0) {
        admin__conn_close(c);
        return;
    }
    n = http_parser_execute(&c->parser, &admin__settings, buf->base, (size_t)nread);
    if (!c->answered && (n != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK))
        admin__respond(c, 400, "Bad Request", "application/json",
                       "{\"error\": \"bad request\"}\n", 25);
}

static void admin__on_timeout(uv_timer_t *t)
{
    admin__conn_close(t->data);
}

static void admin__on_connection(uv_stream_t *server, int status)
{
    struct admin *a = server->data;
    struct admin_conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->admin = a;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        admin__conn_close(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, admin__on_timeout, 10000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, admin__alloc, admin__on_read);
}

static void admin__free(uv_handle_t *h)
{
    free(h->data);
}

int admin_start(struct se_engine *e, const struct netaddr *addr, const struct admin_source *src,
                struct admin **out)
{
    struct admin *a = calloc(1, sizeof *a);
    struct sockaddr_in sa;
    int err;

    if (a == NULL)
        return UV_ENOMEM;
    a->engine = e;
    a->src = *src;
    netaddr_to_sockaddr(addr, &sa);
    uv_tcp_init(e->loop, &a->tcp);
    a->tcp.data = a;
    err = uv_tcp_bind(&a->tcp, (const struct sockaddr *)&sa, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&a->tcp, 128, admin__on_connection);
    if (err != 0) {
        uv_close((uv_handle_t *)&a->tcp, admin__free);
        return err;
    }
    *out = a;
    return 0;
}

void admin_close(struct admin *a)
{
    uv_close((uv_handle_t *)&a->tcp, admin__free);
}
