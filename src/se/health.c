/* health.c: the health state machine of one server under one monitor. */
#include "se/health.h"

#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"

const char *health_state_name(enum health_state s)
{
    switch (s) {
    case HEALTH_UNKNOWN: return "UNKNOWN";
    case HEALTH_UP: return "UP";
    case HEALTH_DOWN: return "DOWN";
    }
    return "?";
}

void health_init(struct health *h)
{
    memset(h, 0, sizeof *h);
    h->state = HEALTH_UNKNOWN;
}

/* The legal moves; everything else is refused. */
static bool health__legal(enum health_state from, enum health_state to)
{
    return (from == HEALTH_UNKNOWN && (to == HEALTH_UP || to == HEALTH_DOWN)) ||
           (from == HEALTH_UP && to == HEALTH_DOWN) || (from == HEALTH_DOWN && to == HEALTH_UP);
}

static int health__set_state(struct health *h, enum health_state to, const char *reason,
                             int64_t now_ms)
{
    if (!health__legal(h->state, to)) {
        vlog_error("health: refused illegal move %s -> %s (%s)", health_state_name(h->state),
                   health_state_name(to), reason);
        return VIGIL_EINVAL;
    }
    h->state = to;
    h->since_ms = now_ms;
    snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
    return 1;
}

int health_record(struct health *h, bool success, uint32_t rise, uint32_t fall,
                  const char *reason, int64_t now_ms)
{
    if (rise == 0 || fall == 0)
        return VIGIL_EINVAL;
    if (success) {
        h->successes++;
        h->failures = 0;
    } else {
        h->failures++;
        h->successes = 0;
    }
    switch (h->state) {
    case HEALTH_UNKNOWN:
        return health__set_state(h, success ? HEALTH_UP : HEALTH_DOWN, reason, now_ms);
    case HEALTH_UP:
        if (!success && h->failures >= fall)
            return health__set_state(h, HEALTH_DOWN, reason, now_ms);
        return 0;
    case HEALTH_DOWN:
        if (success && h->successes >= rise)
            return health__set_state(h, HEALTH_UP, reason, now_ms);
        return 0;
    }
    return 0;
}

bool health_is_usable(const struct health *h)
{
    return h->state != HEALTH_DOWN;
}
