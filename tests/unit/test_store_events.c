/* The store's event sequence for the live stream: store_events_newest_seq,
 * store_events_after and the event watch (store.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/store/store.h"

#define T0 1764309600000LL

static int setup(void **state)
{
    struct store *s = NULL;
    assert_int_equal(store_open(&s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    return 0;
}

static void apply(struct store *s, const char *text)
{
    struct store_result res;
    assert_int_equal(store_apply(s, text, strlen(text), &res), 0);
    store_result_clear(&res);
}

/* An event_record command for KEY (its dedupe key) into OUT. */
static const char *event_cmd(char *out, size_t len, const char *key, long long time_ms)
{
    snprintf(out, len,
             "{\"op\": \"event_record\", \"key\": \"%s\", \"event_id\": \"SE_UP\", \"time\": %lld,"
             " \"module\": \"SEMGR\", \"obj_type\": \"SERVICEENGINE\", \"obj_name\": \"%s\","
             " \"description\": \"d\", \"details\": {\"k\": \"%s\"}}",
             key, time_ms, key, key);
    return out;
}

static void record(struct store *s, const char *key, long long time_ms)
{
    char cmd[512];
    apply(s, event_cmd(cmd, sizeof cmd, key, time_ms));
}

static int watch_calls;
static uint64_t watch_saw; /* the newest seq the watch read when called */

static void on_events(void *data)
{
    watch_calls++;
    watch_saw = store_events_newest_seq(data);
}

/* Seqs count up in apply order (not event time), and store_events_after pages by them
 * with the same event objects store_events_list gives. */
static void test_seq_and_after(void **state)
{
    struct store *s = *state;
    int64_t total;
    json_t *after, *listed;

    assert_int_equal(store_events_newest_seq(s), 0);
    after = store_events_after(s, 0, 10);
    assert_int_equal(json_array_size(after), 0);
    json_decref(after);

    record(s, "a", T0 + 300);
    record(s, "b", T0 + 100); /* older, recorded later: a later seq */
    record(s, "a", T0 + 300); /* a repeat: deduped, no new seq */
    record(s, "c", T0 + 200);
    assert_int_equal(store_events_newest_seq(s), 3);

    after = store_events_after(s, 0, 10);
    assert_int_equal(json_array_size(after), 3);
    static const char *const names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        json_t *item = json_array_get(after, (size_t)i);
        assert_int_equal(json_integer_value(json_object_get(item, "seq")), i + 1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(item, "event"),
                                                              "obj_name")),
                            names[i]);
    }
    /* the same object GET /api/event answers */
    listed = store_events_list(s, NULL, T0 + 300, 0, 10, &total);
    assert_int_equal(total, 1);
    assert_true(json_equal(json_array_get(listed, 0),
                           json_object_get(json_array_get(after, 0), "event")));
    json_decref(listed);
    json_decref(after);

    after = store_events_after(s, 1, 1);
    assert_int_equal(json_array_size(after), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(after, 0), "seq")), 2);
    json_decref(after);
    after = store_events_after(s, 3, 10);
    assert_int_equal(json_array_size(after), 0);
    json_decref(after);
    after = store_events_after(s, UINT64_MAX, 10);
    assert_int_equal(json_array_size(after), 0);
    json_decref(after);
}

/* The watch: once per entry that recorded events (a batch of several: once), after the
 * commit; not for entries that recorded none (a repeat, a config write, a refusal); once
 * after a restore that brought new events; never once removed. */
static void test_event_watch(void **state)
{
    struct store *s = *state, *copy = NULL;
    struct store_result res[4];
    char a[512], b[512], batch[1400];
    unsigned n;
    void *data;
    size_t len;

    record(s, "before", T0);
    store_set_event_watch(s, on_events, s);
    watch_calls = 0;
    record(s, "one", T0 + 1);
    assert_int_equal(watch_calls, 1);
    assert_int_equal(watch_saw, 2);
    record(s, "one", T0 + 1); /* deduped */
    apply(s, "{\"op\": \"object_create\", \"type\": \"healthmonitor\", \"uuid\": "
             "\"11111111-1111-4111-8111-111111111111\", \"object\": {\"name\": \"hm\", \"type\": "
             "\"HEALTH_MONITOR_TCP\"}}");
    {
        struct store_result r;
        assert_int_equal(store_apply(s, "{\"op\": \"nope\"}", 13, &r), VIGIL_EINVAL);
        store_result_clear(&r);
    }
    assert_int_equal(watch_calls, 1);

    snprintf(batch, sizeof batch, "{\"op\": \"batch\", \"cmds\": [%s, %s]}",
             event_cmd(a, sizeof a, "two", T0 + 2), event_cmd(b, sizeof b, "three", T0 + 3));
    assert_int_equal(store_apply_entry(s, batch, strlen(batch), res, 4, &n), 0);
    for (unsigned i = 0; i < n; i++)
        store_result_clear(&res[i]);
    assert_int_equal(watch_calls, 2);
    assert_int_equal(watch_saw, 4);

    assert_int_equal(store_open(&copy), 0);
    store_set_event_watch(copy, on_events, copy);
    assert_int_equal(store_snapshot(s, &data, &len), 0);
    assert_int_equal(store_restore(copy, data, len), 0);
    store_snapshot_done(s, data);
    assert_int_equal(watch_calls, 3);
    assert_int_equal(watch_saw, 4);
    assert_int_equal(store_events_newest_seq(copy), 4);
    store_close(copy);

    store_set_event_watch(s, NULL, NULL);
    record(s, "four", T0 + 4);
    assert_int_equal(watch_calls, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seq_and_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_watch, setup, teardown),
    };
    vlog_init("test_store_events", (enum vlog_level)(VLOG_ERROR + 1));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
