/* conn_pool-t.h: the types of a pool of idle connections (functions in conn_pool.h). */
#ifndef VIGIL_SE_CONN_POOL_T_H
#define VIGIL_SE_CONN_POOL_T_H

#include <stdint.h>

struct conn_pool_entry;

/* Closes the connection that embeds ENTRY (already out of the pool). */
typedef void conn_pool_close_fn(struct conn_pool_entry *entry);

/* Embedded in a pooled connection (e.g. the HTTP proxy's server connection). */
struct conn_pool_entry {
    struct conn_pool_entry *prev, *next;
    struct conn_pool *pool;    /* NULL while not pooled */
    conn_pool_close_fn *close;
};

/* Embedded in its owner (a server); newest first. */
struct conn_pool {
    struct conn_pool_entry *head;
    uint32_t n;
};

#endif
