/* Unit tests of balance.c: distributions and the consistent-hash remapping bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "se/balance.h"

static void round_robin_is_even_and_skips_ineligible(void **state)
{
    struct balance_rr rr = {0};
    bool eligible[4] = {true, true, false, true};
    int counts[4] = {0};

    for (int i = 0; i < 300; i++) {
        int k = balance_pick_round_robin(&rr, eligible, NULL, NULL, 4);
        assert_true(k >= 0 && k < 4);
        counts[k]++;
    }
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[3], 100);
    bool none[4] = {false, false, false, false};
    assert_int_equal(balance_pick_round_robin(&rr, none, NULL, NULL, 4), -1);
}

static void weighted_round_robin_follows_ratios(void **state)
{
    struct balance_rr rr = {0};
    bool eligible[3] = {true, true, true};
    uint32_t weights[3] = {1, 2, 5};
    int64_t current[3] = {0};
    int counts[3] = {0};

    for (int i = 0; i < 800; i++)
        counts[balance_pick_round_robin(&rr, eligible, weights, current, 3)]++;
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 200);
    assert_int_equal(counts[2], 500);
}

static void least_connections_picks_fewest(void **state)
{
    struct balance_rr rr = {0};
    bool eligible[3] = {true, true, true};
    uint32_t active[3] = {5, 2, 7};

    assert_int_equal(balance_pick_least_connections(&rr, eligible, active, NULL, 3), 1);
    eligible[1] = false;
    assert_int_equal(balance_pick_least_connections(&rr, eligible, active, NULL, 3), 0);
    /* ties spread round robin */
    uint32_t same[3] = {1, 1, 1};
    bool all[3] = {true, true, true};
    int counts[3] = {0};
    for (int i = 0; i < 30; i++)
        counts[balance_pick_least_connections(&rr, all, same, NULL, 3)]++;
    assert_int_equal(counts[0], 10);
    assert_int_equal(counts[1], 10);
    assert_int_equal(counts[2], 10);
}

static uint64_t key_of(int i)
{
    char label[32];
    int n = snprintf(label, sizeof label, "10.0.0.%d:80", i);
    return balance_hash(label, (size_t)n);
}

/* Adding or removing one of N servers moves about 1/N of the keys, and only keys that
 * go to (or came from) that server. */
static void consistent_hash_moves_about_one_nth(void **state)
{
    enum { N = 5, KEYS = 20000 };
    uint64_t keys[N + 1];
    bool eligible[N + 1];
    int before[KEYS], moved = 0, counts[N] = {0};

    for (int i = 0; i <= N; i++) {
        keys[i] = key_of(i);
        eligible[i] = true;
    }
    struct balance_ring *ring = balance_ring_build(keys, NULL, N);
    struct balance_ring *bigger = balance_ring_build(keys, NULL, N + 1);
    assert_non_null(ring);
    assert_non_null(bigger);
    for (int k = 0; k < KEYS; k++) {
        uint32_t ip = 0x0a000000u + (uint32_t)k;
        uint64_t h = balance_hash(&ip, sizeof ip);
        before[k] = balance_ring_pick(ring, h, eligible);
        counts[before[k]]++;
        int after = balance_ring_pick(bigger, h, eligible);
        if (after != before[k]) {
            moved++;
            assert_int_equal(after, N); /* keys move only to the new server */
        }
    }
    /* expected KEYS / (N + 1) = 3333; allow for the ring's unevenness */
    assert_true(moved > KEYS / (N + 1) / 2);
    assert_true(moved < KEYS / (N + 1) * 3 / 2);
    for (int i = 0; i < N; i++) /* spread: each server within 50% of its share */
        assert_true(counts[i] > KEYS / N / 2 && counts[i] < KEYS / N * 3 / 2);
    /* a server going down moves only its own keys */
    eligible[2] = false;
    for (int k = 0; k < KEYS; k++) {
        uint32_t ip = 0x0a000000u + (uint32_t)k;
        int after = balance_ring_pick(ring, balance_hash(&ip, sizeof ip), eligible);
        if (before[k] != 2)
            assert_int_equal(after, before[k]);
        else
            assert_int_not_equal(after, 2);
    }
    balance_ring_free(ring);
    balance_ring_free(bigger);
}

static void consistent_hash_none_eligible(void **state)
{
    uint64_t keys[2] = {key_of(1), key_of(2)};
    bool none[2] = {false, false};
    struct balance_ring *ring = balance_ring_build(keys, NULL, 2);
    assert_int_equal(balance_ring_pick(ring, 12345, none), -1);
    assert_int_equal(balance_ring_pick(NULL, 1, none), -1);
    balance_ring_free(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_robin_is_even_and_skips_ineligible),
        cmocka_unit_test(weighted_round_robin_follows_ratios),
        cmocka_unit_test(least_connections_picks_fewest),
        cmocka_unit_test(consistent_hash_moves_about_one_nth),
        cmocka_unit_test(consistent_hash_none_eligible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
