/* loop_timer: a timer that is re-armed with 0 ms from its own callback runs once per loop
 * iteration, so the rest of the loop (another timer, here) still runs: a plain uv_timer
 * re-armed that way never leaves libuv 1.44's timer phase (issue 18). Also: a delay
 * fires once after its time, stop disarms, close calls back once both handles are closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/loop_timer.h"

struct spin {
    struct loop_timer t;
    unsigned runs;
    int closed;
    int other_fired;
    uv_timer_t other;
};

static void spin__again(struct loop_timer *t)
{
    struct spin *s = t->data;
    s->runs++;
    if (!s->other_fired)
        loop_timer_start(t, 0);
}

static void spin__other(uv_timer_t *h)
{
    struct spin *s = h->data;
    s->other_fired = 1;
    uv_close((uv_handle_t *)h, NULL);
}

static void spin__closed(struct loop_timer *t)
{
    ((struct spin *)t->data)->closed++;
}

static void test_zero_rearm_does_not_starve_the_loop(void **state)
{
    uv_loop_t loop;
    struct spin s = {0};
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(loop_timer_init(&loop, &s.t, spin__again), 0);
    s.t.data = &s;
    uv_timer_init(&loop, &s.other);
    s.other.data = &s;
    uv_timer_start(&s.other, spin__other, 5, 0);
    loop_timer_start(&s.t, 0);
    assert_int_equal(s.runs, 0); /* never from inside start */
    /* Returns once the other timer fired (then nothing re-arms): a starved loop would
     * never get there. */
    while (!s.other_fired)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(s.runs >= 1);
    loop_timer_close(&s.t, spin__closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void count__run(struct loop_timer *t)
{
    ((struct spin *)t->data)->runs++;
}

static void test_delay_fires_once_and_stop_disarms(void **state)
{
    uv_loop_t loop;
    struct spin s = {0};
    uint64_t t0;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(loop_timer_init(&loop, &s.t, count__run), 0);
    s.t.data = &s;
    t0 = uv_now(&loop);
    loop_timer_start(&s.t, 0);
    loop_timer_start(&s.t, 20); /* replaces the earlier arming */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.runs, 1);
    assert_true(uv_now(&loop) - t0 >= 20);
    loop_timer_start(&s.t, 0);
    loop_timer_stop(&s.t);
    uv_run(&loop, UV_RUN_DEFAULT); /* nothing armed: returns at once */
    assert_int_equal(s.runs, 1);
    loop_timer_close(&s.t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_rearm_does_not_starve_the_loop),
        cmocka_unit_test(test_delay_fires_once_and_stop_disarms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
