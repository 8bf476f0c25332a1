/* conn_pool.c: a pool of idle connections (see conn_pool.h). */
#include "se/conn_pool.h"

#include <stddef.h>

void conn_pool_push(struct conn_pool *pool, struct conn_pool_entry *e, conn_pool_close_fn *close)
{
    e->pool = pool;
    e->close = close;
    e->prev = NULL;
    e->next = pool->head;
    if (pool->head)
        pool->head->prev = e;
    pool->head = e;
    pool->n++;
}

void conn_pool_remove(struct conn_pool_entry *e)
{
    struct conn_pool *pool = e->pool;

    if (pool == NULL)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        pool->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->pool = NULL;
    pool->n--;
}

struct conn_pool_entry *conn_pool_pop(struct conn_pool *pool)
{
    struct conn_pool_entry *e = pool->head;
    if (e != NULL)
        conn_pool_remove(e);
    return e;
}

void conn_pool_drop_all(struct conn_pool *pool)
{
    struct conn_pool_entry *e;

    while ((e = conn_pool_pop(pool)) != NULL)
        e->close(e);
}
