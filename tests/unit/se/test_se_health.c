/* Unit tests of health.c: the monitor state machine and its thresholds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/errors.h"
#include "se/health.h"

static void first_result_decides(void **state)
{
    struct health h;
    health_init(&h);
    assert_int_equal(h.state, HEALTH_UNKNOWN);
    assert_true(health_is_usable(&h));
    assert_int_equal(health_record(&h, false, 3, 3, "refused", 1), 1);
    assert_int_equal(h.state, HEALTH_DOWN);
    assert_string_equal(h.reason, "refused");
    assert_false(health_is_usable(&h));

    health_init(&h);
    assert_int_equal(health_record(&h, true, 3, 3, "ok", 1), 1);
    assert_int_equal(h.state, HEALTH_UP);
}

static void thresholds_need_consecutive_results(void **state)
{
    struct health h;
    health_init(&h);
    health_record(&h, true, 2, 3, "ok", 1);
    /* two failures, a success, two failures: never three in a row */
    assert_int_equal(health_record(&h, false, 2, 3, "x", 2), 0);
    assert_int_equal(health_record(&h, false, 2, 3, "x", 3), 0);
    assert_int_equal(health_record(&h, true, 2, 3, "ok", 4), 0);
    assert_int_equal(health_record(&h, false, 2, 3, "x", 5), 0);
    assert_int_equal(health_record(&h, false, 2, 3, "x", 6), 0);
    assert_int_equal(h.state, HEALTH_UP);
    assert_int_equal(health_record(&h, false, 2, 3, "timeout", 7), 1);
    assert_int_equal(h.state, HEALTH_DOWN);
    assert_int_equal(h.since_ms, 7);
    /* back up after RISE successes in a row */
    assert_int_equal(health_record(&h, true, 2, 3, "ok", 8), 0);
    assert_int_equal(health_record(&h, false, 2, 3, "x", 9), 0);
    assert_int_equal(health_record(&h, true, 2, 3, "ok", 10), 0);
    assert_int_equal(h.state, HEALTH_DOWN);
    assert_int_equal(health_record(&h, true, 2, 3, "200", 11), 1);
    assert_int_equal(h.state, HEALTH_UP);
}

static void zero_thresholds_refused(void **state)
{
    struct health h;
    health_init(&h);
    assert_int_equal(health_record(&h, true, 0, 1, "", 1), VIGIL_EINVAL);
    assert_int_equal(health_record(&h, true, 1, 0, "", 1), VIGIL_EINVAL);
    assert_int_equal(h.state, HEALTH_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_result_decides),
        cmocka_unit_test(thresholds_need_consecutive_results),
        cmocka_unit_test(zero_thresholds_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
