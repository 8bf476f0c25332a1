/* test_status.c: the cluster status machine (controller/status.c) against the contract's
 * table of legal moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/status/status.h"

#define T0 1795845600123LL /* 2026-11-28T06:00:00.123Z */

/* The contract's table, written out here on its own (not copied from status.c):
 * any -> Not Responsive; Not Responsive -> Errors; Not Responsive, Errors -> Restoring;
 * Restoring -> Waiting for SEs; Waiting -> Copying; Copying -> Ready; Ready -> Copying.
 * Moving to the current status is illegal. */
static int contract_legal(enum cluster_status from, enum cluster_status to)
{
    if (from == to)
        return 0;
    if (to == STATUS_NOT_RESPONSIVE)
        return 1;
    switch (from) {
    case STATUS_NOT_RESPONSIVE:
        return to == STATUS_ERRORS || to == STATUS_RESTORING;
    case STATUS_ERRORS:
        return to == STATUS_RESTORING;
    case STATUS_RESTORING:
        return to == STATUS_WAITING_FOR_SES;
    case STATUS_WAITING_FOR_SES:
        return to == STATUS_COPYING_DB;
    case STATUS_COPYING_DB:
        return to == STATUS_READY;
    case STATUS_READY:
        return to == STATUS_COPYING_DB;
    default:
        return 0;
    }
}

/* A path of legal moves from Not Responsive to S (status_init starts there). */
static void walk_to(struct status_machine *sm, enum cluster_status s, int64_t *now)
{
    static const enum cluster_status path[] = {STATUS_RESTORING, STATUS_WAITING_FOR_SES,
                                               STATUS_COPYING_DB, STATUS_READY};
    if (s == STATUS_NOT_RESPONSIVE)
        return;
    if (s == STATUS_ERRORS) {
        assert_int_equal(status_move(sm, STATUS_ERRORS, "walk", ++*now), 0);
        return;
    }
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        assert_int_equal(status_move(sm, path[i], "walk", ++*now), 0);
        if (path[i] == s)
            return;
    }
    fail_msg("no path to %d", (int)s);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(status_name(STATUS_READY), "Ready");
    assert_string_equal(status_name(STATUS_NOT_RESPONSIVE), "Not Responsive");
    assert_string_equal(status_name(STATUS_ERRORS), "Errors");
    assert_string_equal(status_name(STATUS_RESTORING), "Restoring");
    assert_string_equal(status_name(STATUS_WAITING_FOR_SES), "Waiting for Service Engines");
    assert_string_equal(status_name(STATUS_COPYING_DB), "Cluster copying DB from leader");
    assert_string_equal(status_name(STATUS__COUNT), "?");
    assert_string_equal(status_name((enum cluster_status)-1), "?");
}

static void test_init(void **state)
{
    struct status_machine sm;
    json_t *h;
    (void)state;

    memset(&sm, 0xa5, sizeof sm); /* init must not depend on the memory it is given */
    status_init(&sm, T0, "starting");
    assert_int_equal(sm.current, STATUS_NOT_RESPONSIVE);
    assert_int_equal(sm.since_ms, T0);
    assert_string_equal(sm.reason, "starting");
    assert_int_equal(sm.history_len, 1);
    h = status_history_json(&sm);
    assert_int_equal(json_array_size(h), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "status")),
                        "Not Responsive");
    json_decref(h);
}

static void test_legal_table(void **state)
{
    (void)state;
    for (int from = 0; from < STATUS__COUNT; from++)
        for (int to = 0; to < STATUS__COUNT; to++)
            if (status_move_legal(from, to) != contract_legal(from, to))
                fail_msg("status_move_legal(%s -> %s) = %d, contract says %d",
                         status_name(from), status_name(to), status_move_legal(from, to),
                         contract_legal(from, to));
    /* Out of range is never legal. */
    assert_false(status_move_legal(STATUS__COUNT, STATUS_NOT_RESPONSIVE));
    assert_false(status_move_legal(STATUS_READY, STATUS__COUNT));
    assert_false(status_move_legal((enum cluster_status)-1, STATUS_NOT_RESPONSIVE));
}

/* Every (from, to) pair through status_move itself: legal moves are recorded with their
 * reason and time, illegal ones change nothing at all (byte for byte). */
static void test_every_move(void **state)
{
    (void)state;
    for (int from = 0; from < STATUS__COUNT; from++) {
        for (int to = 0; to <= STATUS__COUNT; to++) {
            struct status_machine *sm = calloc(1, sizeof *sm);
            struct status_machine *before = malloc(sizeof *sm);
            int64_t now = T0;
            char reason[64];
            int rv;

            assert_non_null(sm);
            assert_non_null(before);
            status_init(sm, now, "start");
            walk_to(sm, from, &now);
            assert_int_equal(sm->current, from);
            memcpy(before, sm, sizeof *sm);
            snprintf(reason, sizeof reason, "observed %d->%d", from, to);
            rv = status_move(sm, to, reason, now + 1000);
            if (to < STATUS__COUNT && contract_legal(from, to)) {
                const struct status_record *last;
                if (rv != 0)
                    fail_msg("legal move %s -> %s refused", status_name(from), status_name(to));
                assert_int_equal(sm->current, to);
                assert_int_equal(sm->since_ms, now + 1000);
                assert_string_equal(sm->reason, reason);
                assert_int_equal(sm->history_len, before->history_len + 1);
                last = &sm->history[(sm->history_start + sm->history_len - 1) % STATUS_HISTORY_MAX];
                assert_int_equal(last->status, to);
                assert_int_equal(last->time_ms, now + 1000);
                assert_string_equal(last->reason, reason);
            } else {
                if (rv != VIGIL_EINVAL)
                    fail_msg("illegal move %s -> %s gave %d", status_name(from),
                             status_name(to), rv);
                assert_memory_equal(sm, before, sizeof *sm);
            }
            free(sm);
            free(before);
        }
    }
}

/* The whole seed flow, then a loss of quorum and a rejoin. */
static void test_seed_flow(void **state)
{
    struct status_machine sm;
    int64_t t = T0;
    (void)state;

    status_init(&sm, t, "start");
    assert_int_equal(status_move(&sm, STATUS_ERRORS, "node-3 unreachable", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_RESTORING, "leader elected", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_WAITING_FOR_SES, "first entry", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_COPYING_DB, "SEs back", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_READY, "caught up", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_COPYING_DB, "node-2 rejoined", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_READY, "caught up", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_READY, "again", ++t), VIGIL_EINVAL);
    assert_int_equal(status_move(&sm, STATUS_RESTORING, "skip", ++t), VIGIL_EINVAL);
    assert_int_equal(status_move(&sm, STATUS_NOT_RESPONSIVE, "quorum lost", ++t), 0);
    assert_int_equal(status_move(&sm, STATUS_NOT_RESPONSIVE, "still", ++t), VIGIL_EINVAL);
    assert_int_equal(sm.history_len, 9);
}

static void test_history_ring(void **state)
{
    struct status_machine sm;
    unsigned moves = 3 * STATUS_HISTORY_MAX + 5; /* wraps the ring several times */
    int64_t t = T0;
    json_t *h;
    (void)state;

    status_init(&sm, t, "start");
    for (unsigned i = 0; i < moves; i++) {
        char reason[32];
        snprintf(reason, sizeof reason, "move %u", i);
        /* Alternates Not Responsive -> Restoring -> Not Responsive ... */
        assert_int_equal(status_move(&sm, i % 2 == 0 ? STATUS_RESTORING : STATUS_NOT_RESPONSIVE,
                                     reason, T0 + 1 + i),
                         0);
    }
    assert_int_equal(sm.history_len, STATUS_HISTORY_MAX);
    h = status_history_json(&sm);
    assert_int_equal(json_array_size(h), STATUS_HISTORY_MAX);
    /* The newest STATUS_HISTORY_MAX, oldest first: moves (moves - MAX) .. (moves - 1). */
    for (unsigned k = 0; k < STATUS_HISTORY_MAX; k++) {
        unsigned i = moves - STATUS_HISTORY_MAX + k;
        json_t *rec = json_array_get(h, k);
        char reason[32], ts[TIME_RFC3339_LEN];
        snprintf(reason, sizeof reason, "move %u", i);
        time_format_rfc3339(T0 + 1 + i, ts);
        assert_string_equal(json_string_value(json_object_get(rec, "reason")), reason);
        assert_string_equal(json_string_value(json_object_get(rec, "time")), ts);
        assert_string_equal(json_string_value(json_object_get(rec, "status")),
                            i % 2 == 0 ? "Restoring" : "Not Responsive");
    }
    json_decref(h);
    (void)t;
}

/* Just below and exactly at the ring's size: nothing dropped yet / the init dropped. */
static void test_history_edges(void **state)
{
    struct status_machine sm;
    json_t *h;
    (void)state;

    status_init(&sm, T0, "start");
    for (unsigned i = 0; i < STATUS_HISTORY_MAX - 1; i++)
        assert_int_equal(status_move(&sm, i % 2 == 0 ? STATUS_RESTORING : STATUS_NOT_RESPONSIVE,
                                     "m", T0 + 1 + i),
                         0);
    h = status_history_json(&sm);
    assert_int_equal(json_array_size(h), STATUS_HISTORY_MAX);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "reason")), "start");
    json_decref(h);
    assert_int_equal(sm.current, STATUS_RESTORING);
    assert_int_equal(status_move(&sm, STATUS_NOT_RESPONSIVE, "one more", T0 + 5000), 0);
    h = status_history_json(&sm);
    assert_int_equal(json_array_size(h), STATUS_HISTORY_MAX);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "reason")), "m");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(h, STATUS_HISTORY_MAX - 1), "reason")),
        "one more");
    json_decref(h);
}

static void test_history_json_shape(void **state)
{
    struct status_machine sm;
    json_t *h, *rec;
    const char *key;
    json_t *value;
    (void)state;

    status_init(&sm, T0, "boot");
    assert_int_equal(status_move(&sm, STATUS_RESTORING, "leader \"2\" elected\n", T0 + 1877), 0);
    h = status_history_json(&sm);
    assert_true(json_is_array(h));
    assert_int_equal(json_array_size(h), 2);
    rec = json_array_get(h, 0);
    assert_int_equal(json_object_size(rec), 3);
    json_object_foreach(rec, key, value) assert_true(json_is_string(value));
    assert_string_equal(json_string_value(json_object_get(rec, "status")), "Not Responsive");
    assert_string_equal(json_string_value(json_object_get(rec, "time")), "2026-11-28T06:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(rec, "reason")), "boot");
    rec = json_array_get(h, 1);
    assert_int_equal(json_object_size(rec), 3);
    assert_string_equal(json_string_value(json_object_get(rec, "status")), "Restoring");
    assert_string_equal(json_string_value(json_object_get(rec, "time")), "2026-11-28T06:00:02.000Z");
    assert_string_equal(json_string_value(json_object_get(rec, "reason")), "leader \"2\" elected\n");
    json_decref(h);
}

static void test_set_reason(void **state)
{
    struct status_machine sm;
    json_t *h;
    (void)state;

    status_init(&sm, T0, "start");
    assert_int_equal(status_move(&sm, STATUS_RESTORING, "elected", T0 + 1), 0);
    assert_int_equal(status_move(&sm, STATUS_WAITING_FOR_SES, "waiting for se-1, se-2", T0 + 2), 0);
    status_set_reason(&sm, "waiting for se-2");
    assert_int_equal(sm.current, STATUS_WAITING_FOR_SES);
    assert_int_equal(sm.since_ms, T0 + 2);
    assert_string_equal(sm.reason, "waiting for se-2");
    assert_int_equal(sm.history_len, 3);
    h = status_history_json(&sm);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 2), "reason")),
                        "waiting for se-1, se-2");
    json_decref(h);
}

/* Reasons longer than the buffer are cut, not overflowed. */
static void test_long_reason(void **state)
{
    struct status_machine sm;
    char big[3 * STATUS_REASON_MAX];
    (void)state;

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    status_init(&sm, T0, big);
    assert_int_equal(strlen(sm.reason), STATUS_REASON_MAX - 1);
    assert_int_equal(status_move(&sm, STATUS_ERRORS, big, T0 + 1), 0);
    assert_int_equal(strlen(sm.history[1].reason), STATUS_REASON_MAX - 1);
    status_set_reason(&sm, big);
    assert_int_equal(strlen(sm.reason), STATUS_REASON_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_legal_table),
        cmocka_unit_test(test_every_move),
        cmocka_unit_test(test_seed_flow),
        cmocka_unit_test(test_history_ring),
        cmocka_unit_test(test_history_edges),
        cmocka_unit_test(test_history_json_shape),
        cmocka_unit_test(test_set_reason),
        cmocka_unit_test(test_long_reason),
    };
    vlog_init("test_status", (enum vlog_level)(VLOG_ERROR + 1)); /* refusals are expected */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
