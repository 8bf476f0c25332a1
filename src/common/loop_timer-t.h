/* loop_timer-t.h: the loop_timer type, for modules that embed one (functions in
 * loop_timer.h). */
#ifndef VIGIL_LOOP_TIMER_T_H
#define VIGIL_LOOP_TIMER_T_H

#include <uv.h>

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *timer);

struct loop_timer {
    uv_timer_t timer;   /* a delay of 1 ms or more */
    uv_idle_t soon;     /* "now": once, on the loop's next iteration */
    loop_timer_cb cb;
    void *data;         /* the owner's; loop_timer never touches it */
    int handles_open;   /* 2 from init until both close callbacks ran */
    void (*closed)(struct loop_timer *timer);
};

#endif
