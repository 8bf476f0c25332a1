/* Unit tests of log_file.c, the standalone access.log sink: rotation by size into
 * access.log.1 .. access.log.N with the newest records kept and none lost in between,
 * appending to an existing file, the flush on close, and a failed write counted as
 * dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "se/log_file.h"
#include "log_test_fixture.h"

static void append_record(struct log_sink *sink, uint64_t seq)
{
    struct log_record r;
    log_test_record(&r, seq);
    assert_int_equal(log_sink_append(sink, &r), 0);
}

/* Closes SINK and runs the loop until its timer handle is freed. */
static void close_sink(struct fixture *f, struct log_sink *sink)
{
    log_sink_close(sink);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

/* Reads the seq of every line of DIR/NAME into SEQS (from *N on); returns the file's
 * size, or -1 when it does not exist. Every line must be one JSON object. */
static long read_seqs(const struct fixture *f, const char *name, uint64_t *seqs, size_t *n)
{
    char path[128], line[8192];
    struct stat st;
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    if (stat(path, &st) != 0)
        return -1;
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        assert_non_null(j);
        assert_true(json_is_integer(json_object_get(j, "seq")));
        seqs[(*n)++] = (uint64_t)json_integer_value(json_object_get(j, "seq"));
        json_decref(j);
    }
    fclose(fp);
    return (long)st.st_size;
}

static void rotates_by_size_keeping_the_newest_files_without_a_gap(void **state)
{
    struct fixture *f = *state;
    struct log_file_options opts = {.rotate_bytes = 4096, .keep = 3};
    static uint64_t seqs[1000];
    struct log_sink_stats stats;
    struct log_sink *sink;
    size_t n = 0;
    long size;

    assert_int_equal(log_file_open(&f->loop, f->dir, "se-1", &opts, &sink), 0);
    for (uint64_t seq = 1; seq <= 300; seq++) {
        append_record(sink, seq);
        if (seq % 5 == 0)
            log_sink_flush(sink); /* rotation is checked after each write to the file */
    }
    log_sink_stats(sink, &stats);
    assert_int_equal(stats.generated, 300);
    assert_int_equal(stats.acked, 300);
    assert_int_equal(stats.dropped, 0);
    close_sink(f, sink);

    /* oldest first: .3 .2 .1, then the live file; no .4 */
    assert_int_equal(read_seqs(f, "access.log.4", seqs, &n), -1);
    for (int i = 3; i >= 1; i--) {
        char name[32];
        snprintf(name, sizeof name, "access.log.%d", i);
        size = read_seqs(f, name, seqs, &n);
        /* a rotated file reached the size, by at most one flush (5 records) more */
        assert_true(size >= 4096 && size < 4096 + 5 * 400);
    }
    size = read_seqs(f, "access.log", seqs, &n);
    assert_true(size >= 0 && size < 4096);
    assert_true(n > 20);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(seqs[i], seqs[i - 1] + 1);
    assert_int_equal(seqs[n - 1], 300);
}

static void appends_to_an_existing_file_and_counts_its_size(void **state)
{
    struct fixture *f = *state;
    struct log_file_options opts = {.rotate_bytes = 4096, .keep = 2};
    static uint64_t seqs[100];
    struct log_sink *sink;
    size_t n = 0;

    assert_int_equal(log_file_open(&f->loop, f->dir, "se-1", &opts, &sink), 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        append_record(sink, seq);
    close_sink(f, sink); /* the close flushes what was buffered */
    assert_true(read_seqs(f, "access.log", seqs, &n) > 0);
    assert_int_equal(n, 3);

    /* reopened: appends; the size already there counts towards the rotation */
    assert_int_equal(log_file_open(&f->loop, f->dir, "se-1", &opts, &sink), 0);
    for (uint64_t seq = 4; seq <= 14; seq++)
        append_record(sink, seq);
    log_sink_flush(sink);
    close_sink(f, sink);
    n = 0;
    assert_true(read_seqs(f, "access.log.1", seqs, &n) >= 4096);
    assert_int_equal(n, 14);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], i + 1);
    assert_int_equal(read_seqs(f, "access.log", seqs, &n), 0);
}

static void a_failed_write_counts_the_records_dropped(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct log_sink_stats stats;
    struct log_sink *sink;

    snprintf(path, sizeof path, "%s/access.log", f->dir);
    assert_int_equal(symlink("/dev/full", path), 0); /* every write: ENOSPC */
    assert_int_equal(log_file_open(&f->loop, f->dir, "se-1", NULL, &sink), 0);
    for (uint64_t seq = 1; seq <= 7; seq++)
        append_record(sink, seq);
    log_sink_flush(sink);
    log_sink_stats(sink, &stats);
    assert_int_equal(stats.generated, 7);
    assert_int_equal(stats.acked, 0);
    assert_int_equal(stats.dropped, 7);
    append_record(sink, 8); /* the sink keeps working after the failure */
    close_sink(f, sink);
}

static void a_directory_that_cannot_hold_the_file_is_refused(void **state)
{
    struct fixture *f = *state;
    char dir[128];
    struct log_sink *sink = NULL;

    snprintf(dir, sizeof dir, "%s/missing", f->dir);
    assert_int_not_equal(log_file_open(&f->loop, dir, "se-1", NULL, &sink), 0);
    assert_null(sink);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, log_test_setup, log_test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LOG_TEST(rotates_by_size_keeping_the_newest_files_without_a_gap),
        LOG_TEST(appends_to_an_existing_file_and_counts_its_size),
        LOG_TEST(a_failed_write_counts_the_records_dropped),
        LOG_TEST(a_directory_that_cannot_hold_the_file_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
