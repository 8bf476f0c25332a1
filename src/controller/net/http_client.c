#include "controller/net/http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/loop_timer.h"
#include "common/vlog.h"

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    struct loop_timer timer; /* curl's timeout; 0 ms runs on the next iteration */
    int closing;
    int open_handles; /* uv handles (timer + socket polls) not yet closed */
    struct http__transfer *transfers; /* in flight, doubly linked */
    const char *const *ca_pem;
};

/* The largest answer a transfer takes (a longer one fails the transfer). */
#define HTTP__MAX_RESPONSE ((size_t)64 * 1024 * 1024)

struct http__transfer {
    struct http_client *client;
    CURL *easy;
    struct curl_slist *headers;
    char *body;      /* request body copy */
    struct buf response; /* the response body, NUL-terminated (buf_append_text) */
    char resp_headers[2048];
    size_t resp_headers_len;
    http_client_cb cb;
    void *data;
    struct http__transfer *prev, *next;
};

struct http__socket {
    uv_poll_t poll;
    struct http_client *client;
    curl_socket_t fd;
};

static void http__maybe_free(struct http_client *c)
{
    if (c->closing && c->open_handles == 0)
        free(c);
}

static void http__on_poll_closed(uv_handle_t *h)
{
    struct http_client *c = h->data;
    free(h); /* the http__socket starts with its uv_poll_t */
    c->open_handles--;
    http__maybe_free(c);
}

static void http__on_timer_closed(struct loop_timer *t)
{
    struct http_client *c = t->data;
    c->open_handles--;
    http__maybe_free(c);
}

static void http__transfer_free(struct http__transfer *t)
{
    struct http_client *c = t->client;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else if (c->transfers == t)
        c->transfers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    curl_slist_free_all(t->headers);
    free(t->body);
    buf_free(&t->response);
    free(t);
}

/* Finishes transfers curl reports done. */
static void http__check_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct http__transfer *t = NULL;
        long status = 0;
        int err = 0;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        } else if (msg->data.result == CURLE_COULDNT_CONNECT ||
                   msg->data.result == CURLE_COULDNT_RESOLVE_HOST) {
            /* curl retries a request whose reused connection died on a fresh one: when
             * that connect fails, the first attempt may still have reached the server.
             * Only a request of which no byte was sent is "not sent". */
            long sent = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_REQUEST_SIZE, &sent);
            err = sent == 0 ? HTTP_CLIENT_ENOTSENT : HTTP_CLIENT_EFAILED;
        } else {
            err = HTTP_CLIENT_EFAILED;
        }
        curl_multi_remove_handle(c->multi, msg->easy_handle);
        curl_easy_cleanup(msg->easy_handle);
        t->cb(t->data, err, status, t->response.data != NULL ? t->response.data : "", t->response.len,
              t->resp_headers);
        http__transfer_free(t);
    }
}

static void http__on_poll(uv_poll_t *p, int status, int events)
{
    struct http__socket *s = (struct http__socket *)p;
    struct http_client *c = s->client;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    http__check_done(c);
}

static void http__on_timer(struct loop_timer *t)
{
    struct http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http__check_done(c);
}

static int http__socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http__socket *s = socketp;
    int events = 0;

    if (action == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, http__on_poll_closed);
            if (!c->closing)
                curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (c->closing)
        return 0;
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return -1;
        s->client = c;
        s->fd = fd;
        /* A socket libuv refuses (closed under us, or already watched) fails the transfer
         * instead of starting a poll handle that was never initialised. */
        int rc = uv_poll_init_socket(c->loop, &s->poll, fd);
        if (rc != 0) {
            vlog_warn("http client: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
            free(s);
            return -1;
        }
        s->poll.data = c;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, http__on_poll);
    return 0;
}

static int http__timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;
    if (c->closing)
        return 0;
    /* curl asks for 0 ms from inside curl_multi_socket_action, also from our own timer
     * callback: the loop_timer takes that to the next loop iteration (loop_timer.h). */
    if (timeout_ms < 0)
        loop_timer_stop(&c->timer);
    else
        loop_timer_start(&c->timer, (uint64_t)timeout_ms);
    return 0;
}

static size_t http__on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http__transfer *t = userdata;
    size_t n = size * nmemb;
    if (n > HTTP__MAX_RESPONSE - t->response.len)
        return 0; /* refuse absurd answers: the transfer fails */
    if (buf_append_text(&t->response, ptr, n) != 0)
        return 0;
    return n;
}

static size_t http__on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct http__transfer *t = userdata;
    size_t n = size * nitems;
    /* A new status line (after a redirect or 100 Continue) starts the block over. */
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0)
        t->resp_headers_len = 0;
    if (t->resp_headers_len + n < sizeof t->resp_headers) {
        memcpy(t->resp_headers + t->resp_headers_len, buf, n);
        t->resp_headers_len += n;
        t->resp_headers[t->resp_headers_len] = '\0';
    }
    return n;
}

int http_client_header(const char *headers, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    const char *line = headers;
    while (line != NULL && *line != '\0') {
        const char *end = strstr(line, "\r\n");
        size_t llen = end != NULL ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen = llen - nlen - 1;
            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            snprintf(out, len, "%.*s", (int)vlen, v);
            return 1;
        }
        line = end != NULL ? end + 2 : NULL;
    }
    return 0;
}

struct http_client *http_client_new(uv_loop_t *loop)
{
    static int global_init;
    struct http_client *c;

    if (!global_init) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_init = 1;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http__socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http__timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    if (loop_timer_init(loop, &c->timer, http__on_timer) != 0) {
        curl_multi_cleanup(c->multi);
        free(c);
        return NULL;
    }
    c->timer.data = c;
    c->open_handles = 1;
    return c;
}

int http_client_request(struct http_client *c, const char *method, const char *url,
                        const char *const *headers, const char *body, size_t len,
                        unsigned timeout_ms, http_client_cb cb, void *data)
{
    struct http__transfer *t;

    if (c->closing)
        return VIGIL_ESHUTDOWN;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return VIGIL_ENOMEM;
    t->client = c;
    t->cb = cb;
    t->data = data;
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        free(t);
        return VIGIL_ENOMEM;
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        t->headers = curl_slist_append(t->headers, headers[i]);
    /* No "Expect: 100-continue" round trip for bodies. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 1000 ? timeout_ms : 1000));
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, http__on_data);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, http__on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_pem != NULL && *c->ca_pem != NULL) {
        struct curl_blob blob = {(void *)*c->ca_pem, strlen(*c->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(t->easy, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (body != NULL) {
        t->body = malloc(len + 1);
        if (t->body == NULL) {
            curl_easy_cleanup(t->easy);
            http__transfer_free(t);
            return VIGIL_ENOMEM;
        }
        memcpy(t->body, body, len);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    }
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        curl_easy_cleanup(t->easy);
        http__transfer_free(t);
        return VIGIL_ENOMEM;
    }
    t->next = c->transfers;
    if (c->transfers != NULL)
        c->transfers->prev = t;
    c->transfers = t;
    return 0;
}

void http_client_set_ca(struct http_client *c, const char *const *ca_pem)
{
    c->ca_pem = ca_pem;
}

void http_client_close(struct http_client *c)
{
    c->closing = 1;
    while (c->transfers != NULL) {
        struct http__transfer *t = c->transfers;
        curl_multi_remove_handle(c->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->cb(t->data, VIGIL_ESHUTDOWN, 0, "", 0, "");
        http__transfer_free(t);
    }
    /* Closes cached connections too; their sockets' polls close through the callback,
     * so C must stay alive until those close callbacks ran (http__maybe_free). */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    loop_timer_close(&c->timer, http__on_timer_closed);
}
