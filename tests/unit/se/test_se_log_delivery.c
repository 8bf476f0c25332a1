/* Unit tests of log_delivery.c over a real spool and a fake transport that parses every
 * frame: LOGS frames hold consecutive records from first_seq, each the spooled line itself,
 * at most 1024 records and 1 MiB; at most four frames are unacknowledged and an ack opens
 * the window; a gap starts a new frame; nothing is queued on a session whose queue is large
 * or that refuses; bad acks are refused and change nothing; acks reach the spool coalesced
 * (at once the first time and when a segment would go, else by the timer), and before a
 * new target, which starts again from the ack mark; close commits what was acknowledged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "se/log_delivery.h"
#include "se/log_spool.h"
#include "log_test_fixture.h"

#define FRAMES_MAX 64

/* A session as the delivery sees it: what it was sent, parsed. */
struct fake_session {
    json_t *frames[FRAMES_MAX];
    size_t n_frames;
    size_t queued; /* what queued() answers */
    int refuse;    /* send() fails */
};

static int fake_send(void *session, const char *text, size_t len)
{
    struct fake_session *fs = session;
    json_error_t err;
    json_t *payload;

    if (fs->refuse)
        return VIGIL_ESHUTDOWN;
    assert_true(len <= LOG_DELIVERY_FRAME_BYTES);
    payload = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (payload == NULL)
        fail_msg("a LOGS payload that is not JSON: %s", err.text);
    assert_true(fs->n_frames < FRAMES_MAX);
    fs->frames[fs->n_frames++] = payload;
    return 0;
}

static size_t fake_queued(void *session)
{
    return ((struct fake_session *)session)->queued;
}

static const struct log_delivery_transport fake_transport = {.send = fake_send,
                                                             .queued = fake_queued};

static void fake_free(struct fake_session *fs)
{
    for (size_t i = 0; i < fs->n_frames; i++)
        json_decref(fs->frames[i]);
    fs->n_frames = 0;
}

/* Checks frame I of FS: FIRST_SEQ and COUNT records numbered from it, each carrying its seq
 * and the fixture record's fields. */
static void assert_frame(const struct fake_session *fs, size_t i, uint64_t first_seq,
                         size_t count)
{
    json_t *f, *records, *r;
    size_t k;

    assert_true(i < fs->n_frames);
    f = fs->frames[i];
    records = json_object_get(f, "records");
    assert_int_equal(json_integer_value(json_object_get(f, "first_seq")), first_seq);
    assert_int_equal(json_array_size(records), count);
    json_array_foreach(records, k, r) {
        assert_int_equal(json_integer_value(json_object_get(r, "seq")), first_seq + k);
        assert_string_equal(json_string_value(json_object_get(r, "se_name")), "se-1");
    }
}

static char long_uri[LOG_RECORD_URI_MAX];

/* Appends records FROM..TO; with LONG, each has a 2 KiB URI (about 2.2 KB encoded). */
static void append_range(struct log_spool *spool, uint64_t from, uint64_t to, int with_long)
{
    for (uint64_t seq = from; seq <= to; seq++) {
        struct log_record r;
        log_test_record(&r, seq);
        if (with_long) {
            memset(long_uri, 'a', sizeof long_uri);
            long_uri[0] = '/';
            r.uri = long_uri;
            r.uri_len = sizeof long_uri;
        }
        assert_int_equal(log_sink_append(log_spool_sink(spool), &r), 0);
    }
}

static struct log_spool *open_spool(struct fixture *f)
{
    struct log_spool *spool = NULL;
    assert_int_equal(log_spool_open(&f->loop, f->dir, "se-1", NULL, &spool), 0);
    return spool;
}

static struct log_delivery *make_delivery(struct fixture *f, struct log_spool *spool)
{
    struct log_delivery *d = NULL;
    assert_int_equal(log_delivery_create(&f->loop, spool, &fake_transport, &d), 0);
    return d;
}

/* Closes D, then SPOOL, and runs the loop until both are gone. */
static void close_both(struct fixture *f, struct log_delivery *d, struct log_spool *spool)
{
    log_delivery_close(d);
    log_sink_close(log_spool_sink(spool));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int ack(struct log_delivery *d, struct fake_session *fs, json_t *payload)
{
    int rc = log_delivery_on_ack(d, fs, payload, "test");
    json_decref(payload);
    return rc;
}

static int ack_through(struct log_delivery *d, struct fake_session *fs, uint64_t through)
{
    return ack(d, fs, json_pack("{sI}", "through_seq", (json_int_t)through));
}

static void a_window_of_four_frames_and_an_ack_opens_it(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {0};
    struct log_delivery_stats st;

    append_range(spool, 1, 5000, 0);
    log_delivery_set_target(d, &a);
    assert_int_equal(a.n_frames, 4);
    for (size_t i = 0; i < 4; i++)
        assert_frame(&a, i, 1 + 1024 * i, 1024);
    log_delivery_pump(d);
    assert_int_equal(a.n_frames, 4); /* the window is full */
    assert_int_equal(ack_through(d, &a, 1000), 0);
    assert_int_equal(a.n_frames, 4); /* the first frame is not wholly acknowledged */
    assert_int_equal(ack_through(d, &a, 1024), 0);
    assert_int_equal(a.n_frames, 5);
    assert_frame(&a, 4, 4097, 904);
    assert_int_equal(ack_through(d, &a, 5000), 0);
    log_delivery_stats(d, &st);
    assert_int_equal(st.frames_sent, 5);
    assert_int_equal(st.records_sent, 5000);
    assert_int_equal(st.max_frames_in_flight, 4);
    assert_int_equal(st.frames_in_flight, 0);
    append_range(spool, 5001, 5003, 0); /* new records: the next pump sends them */
    log_delivery_pump(d);
    assert_int_equal(a.n_frames, 6);
    assert_frame(&a, 5, 5001, 3);
    close_both(f, d, spool);
    fake_free(&a);
}

static void a_gap_starts_a_new_frame_and_a_frame_stays_under_1_mib(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {0};
    size_t total = 0;

    append_range(spool, 1, 10, 0);
    append_range(spool, 20, 25, 0);
    append_range(spool, 26, 1200, 1);
    log_delivery_set_target(d, &a);
    assert_true(a.n_frames >= 3);
    assert_frame(&a, 0, 1, 10);
    assert_frame(&a, 1, 20, json_array_size(json_object_get(a.frames[1], "records")));
    for (size_t i = 1; i < a.n_frames; i++) {
        size_t n = json_array_size(json_object_get(a.frames[i], "records"));
        assert_frame(&a, i, 20 + total, n);
        assert_true(n < LOG_DELIVERY_FRAME_RECORDS); /* bytes, not records, cut them */
        total += n;
    }
    assert_int_equal(total, 6 + 1175);
    close_both(f, d, spool);
    fake_free(&a);
}

static void a_full_queue_or_a_refusing_session_gets_nothing(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {.queued = LOG_DELIVERY_QUEUE_MAX}, b = {.refuse = 1};
    struct log_delivery_stats st;

    append_range(spool, 1, 100, 0);
    log_delivery_set_target(d, &a);
    assert_int_equal(a.n_frames, 0);
    a.queued = 0;
    log_delivery_pump(d);
    assert_int_equal(a.n_frames, 1);
    assert_frame(&a, 0, 1, 100);
    log_delivery_set_target(d, &b);
    log_delivery_stats(d, &st);
    assert_int_equal(st.frames_in_flight, 0);
    b.refuse = 0;
    log_delivery_pump(d); /* everything again: nothing was acknowledged */
    assert_int_equal(b.n_frames, 1);
    assert_frame(&b, 0, 1, 100);
    log_delivery_set_target(d, NULL);
    append_range(spool, 101, 110, 0);
    log_delivery_pump(d);
    assert_int_equal(b.n_frames, 1);
    assert_null(log_delivery_target(d));
    close_both(f, d, spool);
    fake_free(&a);
    fake_free(&b);
}

static void bad_acks_are_refused_and_change_nothing(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {0}, other = {0};
    struct log_delivery_stats st;

    append_range(spool, 1, 50, 0);
    log_delivery_set_target(d, &a);
    assert_int_equal(ack(d, &a, json_pack("{ss}", "through_seq", "fifty")), VIGIL_EINVAL);
    assert_int_equal(ack(d, &a, json_pack("{si}", "through_seq", -1)), VIGIL_EINVAL);
    assert_int_equal(ack(d, &a, json_pack("{}")), VIGIL_EINVAL);
    assert_int_equal(ack_through(d, &a, 51), VIGIL_EINVAL); /* never sent */
    assert_int_equal(ack_through(d, &other, 50), 0);        /* not the target: ignored */
    log_delivery_stats(d, &st);
    assert_int_equal(st.bad_acks, 4);
    assert_int_equal(st.frames_in_flight, 1);
    assert_int_equal(log_spool_acked_through(spool), 0);
    assert_int_equal(ack_through(d, &a, 50), 0);
    assert_int_equal(log_spool_acked_through(spool), 50);
    assert_int_equal(ack_through(d, &a, 20), 0); /* already acknowledged: nothing */
    assert_int_equal(log_spool_acked_through(spool), 50);
    close_both(f, d, spool);
    fake_free(&a);
}

static void acks_are_coalesced_and_a_new_target_starts_from_the_mark(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {0}, b = {0};
    struct log_delivery_stats st;
    int64_t deadline;

    append_range(spool, 1, 3000, 0);
    log_delivery_set_target(d, &a);
    assert_int_equal(ack_through(d, &a, 1024), 0);
    assert_int_equal(log_spool_acked_through(spool), 1024); /* the first: at once */
    assert_int_equal(ack_through(d, &a, 2048), 0);
    assert_int_equal(log_spool_acked_through(spool), 1024); /* within 100 ms: later */
    log_delivery_set_target(d, &b);                           /* commits it first */
    assert_int_equal(log_spool_acked_through(spool), 2048);
    assert_int_equal(b.n_frames, 1);
    assert_frame(&b, 0, 2049, 952);
    assert_int_equal(ack_through(d, &b, 2900), 0);
    assert_int_equal(log_spool_acked_through(spool), 2048);
    deadline = time_mono_ms() + 2000; /* the ack timer commits it */
    while (log_spool_acked_through(spool) != 2900 && time_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(log_spool_acked_through(spool), 2900);
    /* an ack that would delete a segment (here the only one: all of it) goes at once */
    assert_int_equal(ack_through(d, &b, 3000), 0);
    assert_int_equal(log_spool_acked_through(spool), 3000);
    log_delivery_stats(d, &st);
    assert_int_equal(st.spool_acks, 4);
    assert_int_equal(st.restarts, 2);
    close_both(f, d, spool);
    fake_free(&a);
    fake_free(&b);
}

static void close_commits_what_was_acknowledged(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f);
    struct log_delivery *d = make_delivery(f, spool);
    struct fake_session a = {0};

    append_range(spool, 1, 200, 0);
    log_delivery_set_target(d, &a);
    assert_int_equal(ack_through(d, &a, 100), 0);
    append_range(spool, 201, 300, 0);
    log_delivery_pump(d);
    assert_int_equal(ack_through(d, &a, 250), 0);
    assert_int_equal(log_spool_acked_through(spool), 100);
    close_both(f, d, spool);
    fake_free(&a);
    spool = open_spool(f); /* the mark is on disk */
    assert_int_equal(log_spool_first_unacked(spool), 251);
    log_sink_close(log_spool_sink(spool));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, log_test_setup, log_test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LOG_TEST(a_window_of_four_frames_and_an_ack_opens_it),
        LOG_TEST(a_gap_starts_a_new_frame_and_a_frame_stays_under_1_mib),
        LOG_TEST(a_full_queue_or_a_refusing_session_gets_nothing),
        LOG_TEST(bad_acks_are_refused_and_change_nothing),
        LOG_TEST(acks_are_coalesced_and_a_new_target_starts_from_the_mark),
        LOG_TEST(close_commits_what_was_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
