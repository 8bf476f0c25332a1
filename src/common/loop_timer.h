/* loop_timer.h: a one-shot timer for libraries that ask to be called back "after MS
 * milliseconds", MS often 0 (libmicrohttpd's MHD_get_timeout, curl's
 * CURLMOPT_TIMERFUNCTION), that can never starve the loop.
 *
 * Why: libuv 1.44 (Debian 12) runs its timers in a loop that stops at the first timer due
 * later than the loop's cached time. A uv_timer restarted with 0 ms from its own callback
 * is due at that very time, so it runs again in the same pass, forever: raft's I/O, its
 * election timer, signals and every socket starve while the process spins at 100 % CPU
 * (issue 18: a restarted TLS node never rejoined). A loop_timer asked for 0 ms runs its
 * callback from a uv_idle handle instead: once, on the next loop iteration, after that
 * iteration's I/O was polled (without blocking).
 *
 * Everything runs on the loop's thread. */
#ifndef VIGIL_LOOP_TIMER_H
#define VIGIL_LOOP_TIMER_H

#include <stdint.h>
#include <uv.h>

#include "common/loop_timer-t.h"

/* Initialises T (embedded in its owner, who keeps it in place until CLOSED ran) on LOOP;
 * CB is called with T each time the timer fires. T->data is the owner's. Returns 0 or a
 * negative libuv error (nothing to close then). */
int loop_timer_init(uv_loop_t *loop, struct loop_timer *t, loop_timer_cb cb);

/* (Re)arms T to fire once, MS milliseconds from now; MS 0 means on the next loop
 * iteration, never from inside this call. Replaces any earlier arming. */
void loop_timer_start(struct loop_timer *t, uint64_t ms);

/* Disarms T (a no-op when it is not armed). */
void loop_timer_stop(struct loop_timer *t);

/* Disarms and closes T; CLOSED(t) (may be NULL) runs from the loop once both of its
 * handles are closed: only then may the owner free the memory holding T. */
void loop_timer_close(struct loop_timer *t, void (*closed)(struct loop_timer *t));

#endif
