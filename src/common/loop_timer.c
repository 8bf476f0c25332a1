#include "common/loop_timer.h"

#include <stddef.h>

static void loop_timer__on_timer(uv_timer_t *h)
{
    struct loop_timer *t = h->data;
    t->cb(t);
}

static void loop_timer__on_soon(uv_idle_t *h)
{
    struct loop_timer *t = h->data;
    uv_idle_stop(&t->soon); /* one shot: the callback re-arms when it wants more */
    t->cb(t);
}

int loop_timer_init(uv_loop_t *loop, struct loop_timer *t, loop_timer_cb cb)
{
    int rv = uv_timer_init(loop, &t->timer);
    if (rv != 0)
        return rv;
    rv = uv_idle_init(loop, &t->soon);
    if (rv != 0) {
        uv_close((uv_handle_t *)&t->timer, NULL);
        return rv;
    }
    t->timer.data = t;
    t->soon.data = t;
    t->cb = cb;
    t->handles_open = 2;
    t->closed = NULL;
    return 0;
}

void loop_timer_start(struct loop_timer *t, uint64_t ms)
{
    if (ms == 0) {
        uv_timer_stop(&t->timer);
        uv_idle_start(&t->soon, loop_timer__on_soon);
    } else {
        uv_idle_stop(&t->soon);
        uv_timer_start(&t->timer, loop_timer__on_timer, ms, 0);
    }
}

void loop_timer_stop(struct loop_timer *t)
{
    uv_idle_stop(&t->soon);
    uv_timer_stop(&t->timer);
}

static void loop_timer__on_closed(uv_handle_t *h)
{
    struct loop_timer *t = h->data;
    if (--t->handles_open == 0 && t->closed != NULL)
        t->closed(t);
}

void loop_timer_close(struct loop_timer *t, void (*closed)(struct loop_timer *t))
{
    loop_timer_stop(t);
    t->closed = closed;
    uv_close((uv_handle_t *)&t->timer, loop_timer__on_closed);
    uv_close((uv_handle_t *)&t->soon, loop_timer__on_closed);
}
