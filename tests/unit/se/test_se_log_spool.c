/* Unit tests of log_spool.c / log_spool_read.c, the on-disk access-log spool: append, peek
 * and ack in order; a reopen continues where the last run stopped; a torn tail is cut and
 * reported with every whole record kept; a flipped byte inside a segment loses only its
 * record (the reader resynchronises); the cap drops and counts, once per episode, and an
 * ack that frees space ends the episode; a failed write drops (and counts) its batch and
 * cuts the segment back; segments go only once acked; and a process killed without close
 * keeps every record whose loop iteration ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "common/crc32c.h"
#include "common/errors.h"
#include "common/fileutil.h"
#include "se/log_spool.h"
#include "log_test_fixture.h"

#define MAX_SEQS 4096

/* What a peek gave: the seqs, each checked against its JSON line. */
struct seen {
    uint64_t seqs[MAX_SEQS];
    size_t n;
};

static int append_record(struct log_spool *spool, uint64_t seq)
{
    struct log_record r;
    log_test_record(&r, seq);
    return log_sink_append(log_spool_sink(spool), &r);
}

static void append_range(struct log_spool *spool, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++)
        assert_int_equal(append_record(spool, seq), 0);
}

static struct log_spool *open_spool(struct fixture *f, const struct log_spool_options *opts)
{
    struct log_spool *spool = NULL;
    assert_int_equal(log_spool_open(&f->loop, f->dir, "se-1", opts, &spool), 0);
    assert_non_null(spool);
    return spool;
}

/* Closes SPOOL and runs the loop until its handles and fsyncs are done. */
static void close_spool(struct fixture *f, struct log_spool *spool)
{
    log_sink_close(log_spool_sink(spool));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int on_record(void *arg, const struct log_spool_record *rec)
{
    struct seen *seen = arg;
    json_error_t err;
    json_t *j;

    assert_true(rec->len > 1 && rec->data[rec->len - 1] == '\n');
    j = json_loadb(rec->data, rec->len, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), rec->seq);
    json_decref(j);
    assert_true(seen->n < MAX_SEQS);
    seen->seqs[seen->n++] = rec->seq;
    return 0;
}

/* Every record from FROM on, into *SEEN. */
static void peek_all(struct log_spool *spool, uint64_t from, struct seen *seen)
{
    int n;
    seen->n = 0;
    n = log_spool_peek(spool, from, MAX_SEQS, (size_t)1 << 30, on_record, seen);
    assert_int_equal(n, (int)seen->n);
}

static void assert_seqs(const struct seen *seen, uint64_t from, uint64_t to)
{
    assert_int_equal(seen->n, to - from + 1);
    for (size_t i = 0; i < seen->n; i++)
        assert_int_equal(seen->seqs[i], from + i);
}

/* Counts the segment files in DIR/spool; the newest one's path into NEWEST (may be NULL). */
static int count_segments(const struct fixture *f, char *newest, size_t cap)
{
    char dir[128], best[64] = "";
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(dir, sizeof dir, "%s/spool", f->dir);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".seg") == 0) {
            n++;
            if (strcmp(e->d_name, best) > 0)
                snprintf(best, sizeof best, "%s", e->d_name);
        }
    }
    closedir(d);
    if (newest != NULL)
        snprintf(newest, cap, "%s/%s", dir, best);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c_update(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void append_peek_ack_round_trip(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_sink_stats stats;
    static struct seen seen;

    append_range(spool, 1, 100);
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.generated, 100);
    assert_int_equal(stats.spooled, 100);
    assert_int_equal(stats.acked, 0);
    assert_int_equal(log_spool_first_unacked(spool), 1);
    peek_all(spool, 1, &seen);
    assert_seqs(&seen, 1, 100);
    seen.n = 0; /* the limits: records, then bytes (at least one record) */
    assert_int_equal(log_spool_peek(spool, 20, 10, 1 << 20, on_record, &seen), 10);
    assert_seqs(&seen, 20, 29);
    seen.n = 0;
    assert_int_equal(log_spool_peek(spool, 30, 100, 1, on_record, &seen), 1);
    assert_seqs(&seen, 30, 30);

    assert_int_equal(log_spool_ack(spool, 50), 0);
    assert_int_equal(log_spool_ack(spool, 40), 0); /* an older mark changes nothing */
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.acked, 50);
    assert_int_equal(stats.spooled, 50);
    assert_int_equal(log_spool_first_unacked(spool), 51);
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 51, 100);
    assert_int_equal(log_spool_ack(spool, 101), VIGIL_EINVAL); /* never appended */
    assert_int_equal(append_record(spool, 100), VIGIL_EINVAL); /* seq not above the last */
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.dropped, 1);
    close_spool(f, spool);
}

static void a_reopen_continues_after_the_ack_mark(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_spool_recovery rec;
    struct log_sink_stats stats;
    static struct seen seen;

    append_range(spool, 1, 30);
    assert_int_equal(log_spool_ack(spool, 10), 0);
    close_spool(f, spool);

    spool = open_spool(f, NULL);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.records, 30);
    assert_int_equal(rec.torn_bytes + rec.damaged_bytes, 0);
    assert_int_equal(log_spool_acked_through(spool), 10);
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.spooled, 20);
    assert_int_equal(stats.generated, 0);
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 11, 30);
    append_range(spool, 31, 40); /* appended to the same segment */
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 11, 40);
    assert_int_equal(log_spool_ack(spool, 35), 0);
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.acked, 25);
    assert_int_equal(stats.spooled, 5);
    close_spool(f, spool);
    assert_int_equal(count_segments(f, NULL, 0), 1);
}

static void a_torn_tail_is_cut_and_every_whole_record_kept(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_spool_recovery rec;
    static struct seen seen;
    char newest[256];
    long size;

    append_range(spool, 1, 20);
    close_spool(f, spool);
    assert_int_equal(count_segments(f, newest, sizeof newest), 1);
    size = file_size(newest);
    assert_int_equal(truncate(newest, size - 7), 0); /* the last record loses its end */

    spool = open_spool(f, NULL);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.records, 19);
    assert_int_equal(rec.damaged_bytes, 0);
    assert_true(rec.torn_bytes > 20 && rec.torn_bytes < 1000);
    assert_int_equal(file_size(newest), size - 7 - (long)rec.torn_bytes);
    peek_all(spool, 1, &seen);
    assert_seqs(&seen, 1, 19);
    append_range(spool, 21, 21); /* appends go on after the cut */
    close_spool(f, spool);

    spool = open_spool(f, NULL);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.records, 20);
    assert_int_equal(rec.torn_bytes, 0);
    peek_all(spool, 1, &seen);
    assert_int_equal(seen.n, 20);
    assert_int_equal(seen.seqs[19], 21);
    close_spool(f, spool);
}

static void a_flipped_byte_loses_only_its_record(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_spool_recovery rec;
    static struct seen seen;
    char newest[256], byte;
    long size;
    int fd;

    append_range(spool, 1, 20);
    close_spool(f, spool);
    assert_int_equal(count_segments(f, newest, sizeof newest), 1);
    size = file_size(newest);
    fd = open(newest, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &byte, 1, size / 2), 1);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, size / 2), 1);
    close(fd);

    spool = open_spool(f, NULL);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.records, 19);
    assert_int_equal(rec.damaged_ranges, 1);
    assert_true(rec.damaged_bytes > 20 && rec.damaged_bytes < 1000); /* one frame */
    assert_int_equal(rec.torn_bytes, 0);
    peek_all(spool, 1, &seen);
    assert_int_equal(seen.n, 19);
    for (size_t i = 0, expect = 1; i < seen.n; i++, expect++) {
        if (seen.seqs[i] != expect) {
            assert_true(expect >= 8 && expect <= 12); /* the one in the middle */
            expect++;
        }
        assert_int_equal(seen.seqs[i], expect);
    }
    assert_int_equal(file_size(newest), size); /* damage is not a tail: nothing cut */
    close_spool(f, spool);
}

/* Damage in an older segment (a zeroed run inside, garbage at its end) is skipped and
 * counted, never cut; the segments after it are read whole. */
static void damage_in_an_older_segment_is_skipped_not_cut(void **state)
{
    struct fixture *f = *state;
    struct log_spool_options opts = {.segment_bytes = 64 * 1024};
    struct log_spool *spool = open_spool(f, &opts);
    struct log_spool_recovery rec;
    static struct seen seen;
    static const char zeros[600];
    char first[256];
    long size;
    int fd;

    append_range(spool, 1, 600);
    close_spool(f, spool);
    assert_true(count_segments(f, NULL, 0) >= 3);
    snprintf(first, sizeof first, "%s/spool/00000000000000000001.seg", f->dir);
    size = file_size(first);
    fd = open(first, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, zeros, sizeof zeros, 1000), (ssize_t)sizeof zeros);
    assert_int_equal(pwrite(fd, "garbage", 7, size), 7);
    close(fd);

    spool = open_spool(f, &opts);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.torn_bytes, 0);
    assert_int_equal(rec.damaged_ranges, 2);
    assert_true(rec.damaged_bytes >= sizeof zeros + 7 && rec.damaged_bytes < 2000);
    assert_int_equal(file_size(first), size + 7);
    peek_all(spool, 1, &seen);
    assert_true(seen.n >= 600 - 3 && seen.n < 600); /* 600 bytes hit two or three records */
    assert_int_equal(rec.records, seen.n);
    assert_int_equal(seen.seqs[0], 1);
    assert_int_equal(seen.seqs[seen.n - 1], 600);
    for (size_t i = 1; i < seen.n; i++)
        assert_true(seen.seqs[i] > seen.seqs[i - 1]);
    close_spool(f, spool);
}

static uint64_t episodes_seen;

static void on_drop_episode(void *arg, uint64_t episode)
{
    assert_ptr_equal(arg, &episodes_seen);
    episodes_seen = episode;
}

static void the_cap_drops_and_counts_and_an_ack_frees_space(void **state)
{
    struct fixture *f = *state;
    struct log_spool_options opts = {.cap_bytes = 256 * 1024,
                                      .on_drop_episode = on_drop_episode,
                                      .arg = &episodes_seen};
    struct log_spool *spool = open_spool(f, &opts);
    struct log_sink_stats stats;
    uint64_t seq = 1, kept;

    episodes_seen = 0;
    while (append_record(spool, seq) == 0)
        seq++;
    kept = seq - 1;
    assert_true(kept > 400 && kept < 1000);
    assert_int_equal(episodes_seen, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(append_record(spool, ++seq), VIGIL_ENOSPC);
    assert_true(log_spool_bytes(spool) <= opts.cap_bytes);
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.dropped, 11);
    assert_int_equal(stats.spooled, kept);
    assert_int_equal(log_spool_drop_episodes(spool), 1); /* one episode, logged once */

    assert_int_equal(log_spool_ack(spool, kept / 2), 0); /* frees the first segment(s) */
    assert_true(log_spool_bytes(spool) < opts.cap_bytes - 60 * 1024);
    assert_int_equal(append_record(spool, ++seq), 0);
    while (append_record(spool, ++seq) == 0)
        ;
    assert_int_equal(log_spool_drop_episodes(spool), 2);
    assert_int_equal(episodes_seen, 2);
    close_spool(f, spool);
}

static void segments_are_deleted_only_once_acked(void **state)
{
    struct fixture *f = *state;
    struct log_spool_options opts = {.segment_bytes = 64 * 1024};
    struct log_spool *spool = open_spool(f, &opts);
    static struct seen seen;
    int before, after;

    append_range(spool, 1, 1000);
    log_sink_flush(log_spool_sink(spool));
    close_spool(f, spool);
    before = count_segments(f, NULL, 0);
    assert_true(before >= 5);

    spool = open_spool(f, &opts); /* a reopen deletes nothing */
    assert_int_equal(count_segments(f, NULL, 0), before);
    peek_all(spool, 1, &seen);
    assert_seqs(&seen, 1, 1000);
    assert_int_equal(log_spool_ack(spool, 500), 0);
    after = count_segments(f, NULL, 0);
    assert_true(after < before && after > 1);
    assert_true(after >= before / 2 - 1 && after <= before / 2 + 1);
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 501, 1000);
    close_spool(f, spool);

    spool = open_spool(f, &opts);
    assert_int_equal(count_segments(f, NULL, 0), after);
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 501, 1000);
    assert_int_equal(log_spool_ack(spool, 1000), 0); /* everything: no segment left */
    assert_int_equal(count_segments(f, NULL, 0), 0);
    append_range(spool, 1001, 1002); /* a new segment starts */
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 1001, 1002);
    close_spool(f, spool);
    assert_int_equal(count_segments(f, NULL, 0), 1);
}

struct timer_append {
    struct log_spool *spool;
    int fired;
};

static void append_from_timer(uv_timer_t *t)
{
    struct timer_append *ta = t->data;
    assert_int_equal(append_record(ta->spool, 1), 0);
    ta->fired = 1;
}

static void a_record_from_a_timer_is_written_before_the_loop_waits(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct timer_append ta = {.spool = spool};
    uv_timer_t now, later;
    char newest[256];
    uint64_t start;

    uv_timer_init(&f->loop, &now);
    uv_timer_init(&f->loop, &later);
    now.data = &ta;
    uv_timer_start(&now, append_from_timer, 1, 0);
    uv_timer_start(&later, append_from_timer, 10000, 0); /* keeps a poll waiting 10 s */
    while (!ta.fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (count_segments(f, NULL, 0) == 0) {
        /* the timer ran after this iteration's check phase (libuv runs timers again at the
         * end of a UV_RUN_ONCE): the next iteration writes it, and would first wait for the
         * spool's 100 ms fsync timer (or LATER) if the waiting batch let the poll block */
        start = uv_hrtime();
        uv_run(&f->loop, UV_RUN_ONCE);
        assert_true(uv_hrtime() - start < 80 * 1000000ull);
    }
    assert_int_equal(count_segments(f, newest, sizeof newest), 1);
    assert_true(file_size(newest) > 100); /* written: no flush was called */
    uv_close((uv_handle_t *)&now, NULL);
    uv_close((uv_handle_t *)&later, NULL);
    close_spool(f, spool);
}

/* The child: appends 1..100, lets one loop iteration end, appends 101..105 and dies
 * without a close (kill -9 leaves the same: the process is gone, the page cache stays). */
static void child_appends_and_dies(const char *dir)
{
    struct log_spool *spool;
    uv_loop_t loop;

    if (uv_loop_init(&loop) != 0 || log_spool_open(&loop, dir, "se-1", NULL, &spool) != 0)
        _exit(2);
    for (uint64_t seq = 1; seq <= 100; seq++)
        if (append_record(spool, seq) != 0)
            _exit(3);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (uint64_t seq = 101; seq <= 105; seq++)
        if (append_record(spool, seq) != 0)
            _exit(4);
    _exit(0);
}

static void a_killed_process_keeps_what_reached_the_spool(void **state)
{
    struct fixture *f = *state;
    struct log_spool_recovery rec;
    static struct seen seen;
    struct log_spool *spool;
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        child_appends_and_dies(f->dir);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    spool = open_spool(f, NULL);
    log_spool_recovery(spool, &rec);
    assert_int_equal(rec.torn_bytes + rec.damaged_bytes, 0);
    peek_all(spool, 1, &seen);
    assert_seqs(&seen, 1, 100); /* 101..105 were appended in an iteration that never ended */
    close_spool(f, spool);
}

static void a_failed_write_drops_its_batch_and_counts_it(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_sink_stats stats;
    struct rlimit saved, small;
    static struct seen seen;
    char newest[256];
    long size;

    append_range(spool, 1, 3);
    log_sink_flush(log_spool_sink(spool));
    assert_int_equal(count_segments(f, newest, sizeof newest), 1);
    size = file_size(newest);
    /* the file may grow by 100 bytes: the next batch is written in part, then EFBIG */
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = (rlim_t)size + 100;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    append_range(spool, 4, 7);
    log_sink_flush(log_spool_sink(spool));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_int_equal(file_size(newest), size); /* cut back to the last whole frame */
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.generated, 7);
    assert_int_equal(stats.dropped, 4);
    assert_int_equal(stats.spooled, 3);
    assert_int_equal(log_spool_drop_episodes(spool), 1);
    assert_int_equal(log_spool_bytes(spool), size);
    append_range(spool, 8, 8); /* the spool keeps working after the failure */
    peek_all(spool, 1, &seen);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.seqs[3], 8);
    close_spool(f, spool);
}

/* After a power loss the ack mark (fsynced first) may be above every record left on disk:
 * those are all acked, and numbering goes on above the mark. */
static void an_ack_mark_above_every_record_holds(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = open_spool(f, NULL);
    struct log_sink_stats stats;
    static struct seen seen;
    char dir[128];

    append_range(spool, 1, 10);
    close_spool(f, spool);
    snprintf(dir, sizeof dir, "%s/spool", f->dir);
    assert_int_equal(file_write_atomic(dir, "acked", "20\n"), 0);

    spool = open_spool(f, NULL);
    assert_int_equal(count_segments(f, NULL, 0), 0); /* wholly acked: deleted */
    assert_int_equal(log_spool_first_unacked(spool), 21);
    log_sink_stats(log_spool_sink(spool), &stats);
    assert_int_equal(stats.spooled, 0);
    assert_int_equal(append_record(spool, 15), VIGIL_EINVAL);
    assert_int_equal(append_record(spool, 21), 0);
    peek_all(spool, log_spool_first_unacked(spool), &seen);
    assert_seqs(&seen, 21, 21);
    close_spool(f, spool);
}

static void an_unreadable_ack_mark_is_refused(void **state)
{
    struct fixture *f = *state;
    struct log_spool *spool = NULL;
    char path[128];
    FILE *fp;

    snprintf(path, sizeof path, "%s/spool", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/spool/acked", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("twelve\n", fp);
    fclose(fp);
    assert_int_equal(log_spool_open(&f->loop, f->dir, "se-1", NULL, &spool), VIGIL_ECORRUPT);
    assert_null(spool);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, log_test_setup, log_test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        LOG_TEST(append_peek_ack_round_trip),
        LOG_TEST(a_reopen_continues_after_the_ack_mark),
        LOG_TEST(a_torn_tail_is_cut_and_every_whole_record_kept),
        LOG_TEST(a_flipped_byte_loses_only_its_record),
        LOG_TEST(damage_in_an_older_segment_is_skipped_not_cut),
        LOG_TEST(the_cap_drops_and_counts_and_an_ack_frees_space),
        LOG_TEST(segments_are_deleted_only_once_acked),
        LOG_TEST(a_record_from_a_timer_is_written_before_the_loop_waits),
        LOG_TEST(a_killed_process_keeps_what_reached_the_spool),
        LOG_TEST(a_failed_write_drops_its_batch_and_counts_it),
        LOG_TEST(an_ack_mark_above_every_record_holds),
        LOG_TEST(an_unreadable_ack_mark_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
