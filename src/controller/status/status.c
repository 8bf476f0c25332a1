#include "controller/status/status.h"

#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"

static const char *const status__names[STATUS__COUNT] = {
    [STATUS_NOT_RESPONSIVE] = "Not Responsive",
    [STATUS_ERRORS] = "Errors",
    [STATUS_RESTORING] = "Restoring",
    [STATUS_WAITING_FOR_SES] = "Waiting for Service Engines",
    [STATUS_COPYING_DB] = "Cluster copying DB from leader",
    [STATUS_READY] = "Ready",
};

/* The contract's table: status__legal[from][to]. "any -> Not Responsive" included. */
static const unsigned char status__legal[STATUS__COUNT][STATUS__COUNT] = {
    [STATUS_NOT_RESPONSIVE] = {[STATUS_ERRORS] = 1, [STATUS_RESTORING] = 1},
    [STATUS_ERRORS] = {[STATUS_NOT_RESPONSIVE] = 1, [STATUS_RESTORING] = 1},
    [STATUS_RESTORING] = {[STATUS_NOT_RESPONSIVE] = 1, [STATUS_WAITING_FOR_SES] = 1},
    [STATUS_WAITING_FOR_SES] = {[STATUS_NOT_RESPONSIVE] = 1, [STATUS_COPYING_DB] = 1},
    [STATUS_COPYING_DB] = {[STATUS_NOT_RESPONSIVE] = 1, [STATUS_READY] = 1},
    [STATUS_READY] = {[STATUS_NOT_RESPONSIVE] = 1, [STATUS_COPYING_DB] = 1},
};

const char *status_name(enum cluster_status s)
{
    return (unsigned)s < STATUS__COUNT ? status__names[s] : "?";
}

int status_move_legal(enum cluster_status from, enum cluster_status to)
{
    if ((unsigned)from >= STATUS__COUNT || (unsigned)to >= STATUS__COUNT)
        return 0;
    return status__legal[from][to];
}

static void status__record(struct status_machine *sm, enum cluster_status s, const char *reason,
                           int64_t now_ms)
{
    struct status_record *r;
    unsigned slot;

    if (sm->history_len < STATUS_HISTORY_MAX) {
        slot = (sm->history_start + sm->history_len) % STATUS_HISTORY_MAX;
        sm->history_len++;
    } else {
        slot = sm->history_start;
        sm->history_start = (sm->history_start + 1) % STATUS_HISTORY_MAX;
    }
    r = &sm->history[slot];
    r->status = s;
    r->time_ms = now_ms;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    sm->current = s;
    sm->since_ms = now_ms;
    snprintf(sm->reason, sizeof sm->reason, "%s", reason);
}

void status_init(struct status_machine *sm, int64_t now_ms, const char *reason)
{
    memset(sm, 0, sizeof *sm);
    status__record(sm, STATUS_NOT_RESPONSIVE, reason, now_ms);
}

int status_move(struct status_machine *sm, enum cluster_status to, const char *reason,
                int64_t now_ms)
{
    if (!status_move_legal(sm->current, to)) {
        vlog_error("status: illegal move %s -> %s refused (%s)", status_name(sm->current),
                   status_name(to), reason);
        return VIGIL_EINVAL;
    }
    vlog_info("status: %s -> %s (%s)", status_name(sm->current), status_name(to), reason);
    status__record(sm, to, reason, now_ms);
    return 0;
}

void status_set_reason(struct status_machine *sm, const char *reason)
{
    snprintf(sm->reason, sizeof sm->reason, "%s", reason);
}

json_t *status_history_json(const struct status_machine *sm)
{
    json_t *list = json_array();
    for (unsigned i = 0; i < sm->history_len; i++) {
        const struct status_record *r = &sm->history[(sm->history_start + i) % STATUS_HISTORY_MAX];
        char ts[TIME_RFC3339_LEN];
        time_format_rfc3339(r->time_ms, ts);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "status", status_name(r->status),
                                              "time", ts, "reason", r->reason));
    }
    return list;
}
