/* conn_pool.h: a pool of idle connections (intrusive list, no allocation), so that the
 * engine can close a server's pooled connections without knowing the proxy that made them.
 * Loop thread only. */
#ifndef VIGIL_SE_CONN_POOL_H
#define VIGIL_SE_CONN_POOL_H

#include <stdbool.h>

#include "se/conn_pool-t.h"

/* Puts ENTRY (not pooled; borrowed until it leaves) first in POOL; CLOSE closes its
 * connection when the pool is dropped. */
void conn_pool_push(struct conn_pool *pool, struct conn_pool_entry *entry,
                    conn_pool_close_fn *close);

/* Takes ENTRY out of its pool (nothing when it is not pooled). */
void conn_pool_remove(struct conn_pool_entry *entry);

/* Takes the newest entry out of POOL and returns it; NULL when POOL is empty. */
struct conn_pool_entry *conn_pool_pop(struct conn_pool *pool);

/* Takes every entry out of POOL and closes its connection (the entry's close). */
void conn_pool_drop_all(struct conn_pool *pool);

#endif
