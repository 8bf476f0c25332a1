/* Unit tests of common/buf.c: growth, consumption, trimming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/errors.h"

static void empty_until_the_first_append(void **state)
{
    struct buf b;
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_null(b.data); /* nothing to keep, nothing allocated */
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.cap, BUF_MIN_CAP);
    assert_memory_equal(b.data, "abc", 3);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void grows_by_doubling_and_keeps_the_bytes(void **state)
{
    struct buf b;
    char block[1000];
    buf_init(&b);
    for (int i = 0; i < 10; i++) {
        memset(block, 'a' + i, sizeof block);
        assert_int_equal(buf_append(&b, block, sizeof block), 0);
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.cap, 4 * BUF_MIN_CAP); /* 4096 -> 8192 -> 16384 */
    for (int i = 0; i < 10; i++)
        assert_int_equal(b.data[i * 1000 + 999], 'a' + i);
    buf_free(&b);
}

static void consume_moves_the_rest_to_the_front(void **state)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "GET / HTTP/1.1\r\n", 16), 0);
    buf_consume(&b, 4);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "/ HTTP/1.1\r\n", 12);
    buf_consume(&b, 100); /* more than there is: everything */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, BUF_MIN_CAP); /* storage kept for the next append */
    buf_free(&b);
}

static void trim_frees_only_a_large_empty_buffer(void **state)
{
    struct buf b;
    char big[20000];
    memset(big, 'x', sizeof big);
    buf_init(&b);
    assert_int_equal(buf_append(&b, big, sizeof big), 0);
    buf_trim(&b, 16384);
    assert_non_null(b.data); /* not empty: kept */
    buf_consume(&b, sizeof big);
    buf_trim(&b, 65536);
    assert_non_null(b.data); /* within KEEP: kept */
    buf_trim(&b, 16384);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(buf_append(&b, "y", 1), 0); /* usable again */
    assert_int_equal(b.len, 1);
    buf_free(&b);
}

static void overflowing_length_refused_unchanged(void **state)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX), VIGIL_ENOMEM);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "ab", 2);
    buf_free(&b);
}

static void test_append_text_keeps_a_nul_after_the_data(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b);
    assert_int_equal(buf_append_text(&b, "{\"a\":", 5), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "{\"a\":");
    assert_int_equal(buf_append_text(&b, "1}", 2), 0);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "{\"a\":1}");
    assert_int_equal(buf_append_text(&b, "x", SIZE_MAX), VIGIL_ENOMEM);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "{\"a\":1}");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_text_keeps_a_nul_after_the_data),
        cmocka_unit_test(empty_until_the_first_append),
        cmocka_unit_test(grows_by_doubling_and_keeps_the_bytes),
        cmocka_unit_test(consume_moves_the_rest_to_the_front),
        cmocka_unit_test(trim_frees_only_a_large_empty_buffer),
        cmocka_unit_test(overflowing_length_refused_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
