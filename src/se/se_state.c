/* se_state.c: the SE state machine (see se_state.h). */
#include "se/se_state.h"

#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"

static const char *const se_state__names[SE_STATE__COUNT] = {
    [SE_STATE_STANDALONE] = "STANDALONE",
    [SE_STATE_CONNECTING] = "CONNECTING",
    [SE_STATE_CONNECTED] = "CONNECTED",
    [SE_STATE_CONTROLLER_HEARTBEAT_FAILED] = "CONTROLLER_HEARTBEAT_FAILED",
    [SE_STATE_HEADLESS] = "HEADLESS",
};

/* se_state__legal[from][to]: the contract's state flow (see se_state.h). */
static const unsigned char se_state__legal[SE_STATE__COUNT][SE_STATE__COUNT] = {
    [SE_STATE_CONNECTING] = {[SE_STATE_CONNECTED] = 1},
    [SE_STATE_CONNECTED] = {[SE_STATE_CONTROLLER_HEARTBEAT_FAILED] = 1},
    [SE_STATE_CONTROLLER_HEARTBEAT_FAILED] = {[SE_STATE_HEADLESS] = 1, [SE_STATE_CONNECTED] = 1},
    [SE_STATE_HEADLESS] = {[SE_STATE_CONNECTED] = 1},
};

const char *se_state_name(enum se_state s)
{
    return (unsigned)s < SE_STATE__COUNT ? se_state__names[s] : "?";
}

bool se_state_move_legal(enum se_state from, enum se_state to)
{
    if ((unsigned)from >= SE_STATE__COUNT || (unsigned)to >= SE_STATE__COUNT)
        return false;
    return se_state__legal[from][to] != 0;
}

static void se_state__record(struct se_state_machine *sm, enum se_state s, const char *reason,
                             int64_t now_ms)
{
    struct se_state_record *r;
    unsigned slot;

    if (sm->history_len < SE_STATE_HISTORY_MAX) {
        slot = (sm->history_start + sm->history_len) % SE_STATE_HISTORY_MAX;
        sm->history_len++;
    } else {
        slot = sm->history_start;
        sm->history_start = (sm->history_start + 1) % SE_STATE_HISTORY_MAX;
    }
    r = &sm->history[slot];
    r->state = s;
    r->time_ms = now_ms;
    snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
    sm->current = s;
    sm->since_ms = now_ms;
}

int se_state_init(struct se_state_machine *sm, enum se_state initial, const char *reason,
                  int64_t now_ms)
{
    bool ok = initial == SE_STATE_STANDALONE || initial == SE_STATE_CONNECTING;

    memset(sm, 0, sizeof *sm);
    if (!ok)
        vlog_error("se_state: refused initial state %s (%s)", se_state_name(initial),
                   reason ? reason : "");
    se_state__record(sm, ok ? initial : SE_STATE_CONNECTING, reason, now_ms);
    return ok ? 0 : VIGIL_EINVAL;
}

int se_state_move(struct se_state_machine *sm, enum se_state to, const char *reason,
                  int64_t now_ms)
{
    if (!se_state_move_legal(sm->current, to)) {
        vlog_error("se_state: refused illegal move %s -> %s (%s)", se_state_name(sm->current),
                   se_state_name(to), reason ? reason : "");
        return VIGIL_EINVAL;
    }
    vlog_info("se_state: %s -> %s (%s)", se_state_name(sm->current), se_state_name(to),
              reason ? reason : "");
    se_state__record(sm, to, reason, now_ms);
    return 0;
}

enum se_state se_state_current(const struct se_state_machine *sm)
{
    return sm->current;
}

unsigned se_state_history_len(const struct se_state_machine *sm)
{
    return sm->history_len;
}

const struct se_state_record *se_state_history_at(const struct se_state_machine *sm, unsigned i)
{
    if (i >= sm->history_len)
        return NULL;
    return &sm->history[(sm->history_start + i) % SE_STATE_HISTORY_MAX];
}
