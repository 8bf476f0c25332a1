/* Unit tests of se_state.c: the SE state machine's table, its one setter and its history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#include "common/errors.h"
#include "se/se_state.h"

/* The contract's moves, and only these. */
static const struct {
    enum se_state from, to;
} legal[] = {
    {SE_STATE_CONNECTING, SE_STATE_CONNECTED},
    {SE_STATE_CONNECTED, SE_STATE_CONTROLLER_HEARTBEAT_FAILED},
    {SE_STATE_CONTROLLER_HEARTBEAT_FAILED, SE_STATE_HEADLESS},
    {SE_STATE_CONTROLLER_HEARTBEAT_FAILED, SE_STATE_CONNECTED},
    {SE_STATE_HEADLESS, SE_STATE_CONNECTED},
};

static bool is_legal(enum se_state from, enum se_state to)
{
    for (size_t i = 0; i < sizeof legal / sizeof legal[0]; i++)
        if (legal[i].from == from && legal[i].to == to)
            return true;
    return false;
}

/* Brings a fresh machine to state S through legal moves only. */
static void reach(struct se_state_machine *sm, enum se_state s)
{
    if (s == SE_STATE_STANDALONE) {
        assert_int_equal(se_state_init(sm, SE_STATE_STANDALONE, "config file", 1), 0);
        return;
    }
    assert_int_equal(se_state_init(sm, SE_STATE_CONNECTING, "controllers given", 1), 0);
    if (s == SE_STATE_CONNECTING)
        return;
    assert_int_equal(se_state_move(sm, SE_STATE_CONNECTED, "registered", 2), 0);
    if (s == SE_STATE_CONNECTED)
        return;
    assert_int_equal(se_state_move(sm, SE_STATE_CONTROLLER_HEARTBEAT_FAILED, "missed", 3), 0);
    if (s == SE_STATE_CONTROLLER_HEARTBEAT_FAILED)
        return;
    assert_int_equal(se_state_move(sm, SE_STATE_HEADLESS, "miss limit", 4), 0);
}

static void names_are_the_contracts(void **state)
{
    assert_string_equal(se_state_name(SE_STATE_STANDALONE), "STANDALONE");
    assert_string_equal(se_state_name(SE_STATE_CONNECTING), "CONNECTING");
    assert_string_equal(se_state_name(SE_STATE_CONNECTED), "CONNECTED");
    assert_string_equal(se_state_name(SE_STATE_CONTROLLER_HEARTBEAT_FAILED),
                        "CONTROLLER_HEARTBEAT_FAILED");
    assert_string_equal(se_state_name(SE_STATE_HEADLESS), "HEADLESS");
    assert_string_equal(se_state_name(SE_STATE__COUNT), "?");
}

static void every_legal_move_accepted(void **state)
{
    for (size_t i = 0; i < sizeof legal / sizeof legal[0]; i++) {
        struct se_state_machine sm;
        reach(&sm, legal[i].from);
        assert_true(se_state_move_legal(legal[i].from, legal[i].to));
        assert_int_equal(se_state_move(&sm, legal[i].to, "observed", 100), 0);
        assert_int_equal(se_state_current(&sm), legal[i].to);
        assert_int_equal(sm.since_ms, 100);
    }
}

static void every_other_move_refused(void **state)
{
    for (int from = 0; from < SE_STATE__COUNT; from++) {
        for (int to = 0; to < SE_STATE__COUNT; to++) {
            struct se_state_machine sm;
            unsigned len;
            if (is_legal(from, to))
                continue;
            reach(&sm, from);
            len = se_state_history_len(&sm);
            assert_false(se_state_move_legal(from, to));
            assert_int_equal(se_state_move(&sm, to, "bogus", 100), VIGIL_EINVAL);
            assert_int_equal(se_state_current(&sm), from); /* nothing changed */
            assert_int_equal(se_state_history_len(&sm), len);
        }
    }
    assert_false(se_state_move_legal(SE_STATE__COUNT, SE_STATE_CONNECTED));
    assert_false(se_state_move_legal(SE_STATE_CONNECTED, SE_STATE__COUNT));
}

static void initial_state_is_standalone_or_connecting(void **state)
{
    struct se_state_machine sm;
    assert_int_equal(se_state_init(&sm, SE_STATE_HEADLESS, "no", 1), VIGIL_EINVAL);
    assert_int_equal(se_state_current(&sm), SE_STATE_CONNECTING);
    assert_int_equal(se_state_init(&sm, SE_STATE_STANDALONE, "config file", 5), 0);
    assert_int_equal(se_state_current(&sm), SE_STATE_STANDALONE);
    assert_int_equal(se_state_history_len(&sm), 1);
    assert_string_equal(se_state_history_at(&sm, 0)->reason, "config file");
    assert_int_equal(se_state_history_at(&sm, 0)->time_ms, 5);
    assert_null(se_state_history_at(&sm, 1));
}

static void history_kept_oldest_first_and_bounded(void **state)
{
    struct se_state_machine sm;
    char why[32];

    reach(&sm, SE_STATE_HEADLESS);
    assert_int_equal(se_state_history_len(&sm), 4);
    assert_int_equal(se_state_history_at(&sm, 0)->state, SE_STATE_CONNECTING);
    assert_int_equal(se_state_history_at(&sm, 1)->state, SE_STATE_CONNECTED);
    assert_string_equal(se_state_history_at(&sm, 1)->reason, "registered");
    assert_int_equal(se_state_history_at(&sm, 3)->state, SE_STATE_HEADLESS);
    assert_int_equal(se_state_history_at(&sm, 3)->time_ms, 4);
    /* go round HEADLESS -> CONNECTED -> HB_FAILED -> HEADLESS until the ring wraps */
    for (int i = 0; i < 3 * SE_STATE_HISTORY_MAX; i++) {
        enum se_state next = se_state_current(&sm) == SE_STATE_HEADLESS ? SE_STATE_CONNECTED
                             : se_state_current(&sm) == SE_STATE_CONNECTED
                                 ? SE_STATE_CONTROLLER_HEARTBEAT_FAILED
                                 : SE_STATE_HEADLESS;
        snprintf(why, sizeof why, "move %d", i);
        assert_int_equal(se_state_move(&sm, next, why, 10 + i), 0);
    }
    assert_int_equal(se_state_history_len(&sm), SE_STATE_HISTORY_MAX);
    snprintf(why, sizeof why, "move %d", 3 * SE_STATE_HISTORY_MAX - 1);
    assert_string_equal(se_state_history_at(&sm, SE_STATE_HISTORY_MAX - 1)->reason, why);
    snprintf(why, sizeof why, "move %d", 2 * SE_STATE_HISTORY_MAX);
    assert_string_equal(se_state_history_at(&sm, 0)->reason, why);
    for (unsigned i = 1; i < SE_STATE_HISTORY_MAX; i++)
        assert_true(se_state_history_at(&sm, i)->time_ms > se_state_history_at(&sm, i - 1)->time_ms);
    assert_int_equal(se_state_history_at(&sm, SE_STATE_HISTORY_MAX - 1)->state,
                     se_state_current(&sm));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_the_contracts),
        cmocka_unit_test(every_legal_move_accepted),
        cmocka_unit_test(every_other_move_refused),
        cmocka_unit_test(initial_state_is_standalone_or_connecting),
        cmocka_unit_test(history_kept_oldest_first_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
