/* http_server_conn.h: the server side of the HTTP proxy: one connection to a pool server,
 * pooled while idle (keep-alive). It knows nothing of clients: its owner (the HTTP
 * proxy's client connection) gets the events through a table of callbacks, and the
 * connection clears the owner's pointer to it (*BACK) when it leaves the owner (closed or
 * released to the pool).
 *
 * States (http_server_conn__set_state is the only writer, with its table of legal moves):
 *   CONNECTING  connect in progress (owner's "connected" event follows)
 *   BUSY        carrying the owner's request and response
 *   IDLE        in its server's pool, reading only to notice the server closing
 *   CLOSING     handle closing; freed in the close callback
 * Loop thread only. */
#ifndef VIGIL_SE_HTTP_SERVER_CONN_H
#define VIGIL_SE_HTTP_SERVER_CONN_H

#include <stdbool.h>
#include <uv.h>

#include "se/conn_pool-t.h"

struct se_engine;
struct se_server;
struct http_server_conn;

enum http_server_conn_state {
    HTTP_SERVER_CONN_CONNECTING = 0,
    HTTP_SERVER_CONN_BUSY,
    HTTP_SERVER_CONN_IDLE,
    HTTP_SERVER_CONN_CLOSING
};

/* What the owner is told (OWNER as given at open / take). */
struct http_server_conn_events {
    /* Connect finished with STATUS (0 or a uv error) to SRV (borrowed). On failure the
     * connection is already closed (and *BACK cleared). */
    void (*connected)(void *owner, struct se_server *srv, int status);
    /* Bytes (NREAD > 0) or the end (NREAD < 0: UV_EOF or an error) from the server. */
    void (*read)(void *owner, struct http_server_conn *s, ssize_t nread, const uv_buf_t *buf);
    /* A copied write finished: STATUS < 0 (failed; the connection is marked dirty) or every
     * pending write is done. */
    void (*written)(void *owner, int status);
    /* True while the owner can take response bytes now. */
    bool (*wants_input)(void *owner);
};

struct http_server_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct se_engine *engine;                  /* borrowed */
    struct se_server *srv;                     /* one reference */
    const struct http_server_conn_events *ev;
    void *owner;                               /* while CONNECTING / BUSY */
    struct http_server_conn **back;            /* the owner's pointer to us */
    struct conn_pool_entry idle;               /* in srv->idle while IDLE */
    int pending_writes;
    enum http_server_conn_state state;
    bool reading;
    bool reused;                               /* came from the pool */
    bool counted;                              /* counted in srv->active */
    bool dirty;                                /* not reusable (extra bytes, error) */
};

/* Takes a pooled connection to SRV for OWNER (events EV, *BACK set to it). NULL when none
 * is pooled. The connection is BUSY and counted in SRV's active requests. */
struct http_server_conn *http_server_conn_take_idle(struct se_server *srv,
                                                    const struct http_server_conn_events *ev,
                                                    void *owner, struct http_server_conn **back);

/* Opens a new connection to SRV (a reference is kept) for OWNER on engine E. Returns 0
 * (CONNECTING; *BACK set; EV's connected follows) or a uv error (nothing left open). */
int http_server_conn_open(struct se_engine *e, struct se_server *srv,
                          const struct http_server_conn_events *ev, void *owner,
                          struct http_server_conn **back);

/* Writes LEN bytes of DATA (borrowed) to the server. Returns 0 or a uv error. */
int http_server_conn_write(struct http_server_conn *s, const char *data, size_t len);

/* Starts or stops reading by the state and the owner's wants_input. */
void http_server_conn_update_reading(struct http_server_conn *s);

/* Gives S back to its server's pool when REUSABLE (and clean, the server current, the pool
 * not full), else closes it. Either way it leaves its owner. */
void http_server_conn_release(struct http_server_conn *s, bool reusable);

/* Closes S (it leaves its owner and the pool). */
void http_server_conn_close(struct http_server_conn *s);

#endif
