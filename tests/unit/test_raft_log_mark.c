/* test_raft_log_mark.c: the durable-end mark (controller/raft_log_mark.c) over a fake raft_io
 * whose appends, truncations and snapshot installs complete when the test says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>

#include "common/errors.h"
#include "controller/consensus/raft_log_mark.h"

/* ---------------------------------------------------------------------------------- */
/* A fake backend                                                                      */

static raft_index fake_start = 1;
static size_t fake_loaded;          /* entries load returns */
static struct raft_io_append *fake_req[8];
static raft_io_append_cb fake_cb[8];
static unsigned fake_n_appends;
static raft_index fake_truncated;
static struct raft_io_snapshot_put *fake_put;
static raft_io_snapshot_put_cb fake_put_cb;

static int fake_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                     struct raft_snapshot **snapshot, raft_index *start_index,
                     struct raft_entry **entries, size_t *n_entries)
{
    (void)io;
    *term = 1;
    *voted_for = 0;
    *snapshot = NULL;
    *start_index = fake_start;
    *entries = NULL;
    *n_entries = fake_loaded;
    return 0;
}

static int fake_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    (void)io;
    (void)entries;
    (void)n;
    fake_req[fake_n_appends] = req;
    fake_cb[fake_n_appends++] = cb;
    return 0;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
    (void)io;
    fake_truncated = index;
    return 0;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    (void)io;
    (void)trailing;
    (void)snapshot;
    fake_put = req;
    fake_put_cb = cb;
    return 0;
}

static void outer_appended(struct raft_io_append *req, int status)
{
    (void)status;
    (*(int *)req->data)++;
}

static void outer_put(struct raft_io_snapshot_put *req, int status)
{
    (void)status;
    (*(int *)req->data)++;
}

struct fixture {
    char dir[64];
    struct raft_io io;
    struct raft_log_mark mark;
    struct raft_io_append reqs[8];
    int completed;
};

static void fixture_open(struct fixture *f)
{
    char err[256];
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;

    memset(&f->io, 0, sizeof f->io);
    f->io.load = fake_load;
    f->io.append = fake_append;
    f->io.truncate = fake_truncate;
    f->io.snapshot_put = fake_snapshot_put;
    fake_n_appends = 0;
    assert_int_equal(raft_log_mark_open(&f->mark, &f->io, f->dir, err, sizeof err), 0);
    assert_int_equal(f->io.load(&f->io, &term, &vote, &snap, &start, &entries, &n), 0);
}

/* Appends N entries through the wrapper (completed later with complete()). */
static void append(struct fixture *f, unsigned n)
{
    struct raft_entry e[4];
    struct raft_io_append *req = &f->reqs[fake_n_appends];
    memset(e, 0, sizeof e);
    req->data = &f->completed;
    assert_int_equal(f->io.append(&f->io, req, e, n, outer_appended), 0);
}

static void complete(unsigned which, int status)
{
    fake_cb[which](fake_req[which], status);
}

/* The index DIR/log-end holds (0 when it has none). */
static unsigned long long file_mark(const struct fixture *f)
{
    char path[128];
    unsigned long long v = 0;
    FILE *fp;
    snprintf(path, sizeof path, "%s/log-end", f->dir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    if (fscanf(fp, "vigil log end %llu", &v) != 1)
        v = 0;
    fclose(fp);
    return v;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/vigil-test-log-mark-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fake_start = 1;
    fake_loaded = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    raft_log_mark_close(&f->mark);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Tests                                                                               */

static void test_marks_each_completed_append_and_refuses_a_shorter_log(void **state)
{
    struct fixture *f = *state;
    char err[512];

    fixture_open(f);
    assert_int_equal(raft_log_mark_check(&f->mark, "D", err, sizeof err), 0);
    append(f, 3);
    append(f, 2);
    assert_int_equal(file_mark(f), 0);  /* nothing durable yet */
    complete(0, 0);
    assert_int_equal(file_mark(f), 3);
    complete(1, 0);
    assert_int_equal(file_mark(f), 5);
    assert_int_equal(f->completed, 2);
    raft_log_mark_close(&f->mark);

    fake_loaded = 5;   /* the whole log: fine */
    fixture_open(f);
    assert_int_equal(raft_log_mark_check(&f->mark, "D", err, sizeof err), 0);
    raft_log_mark_close(&f->mark);
    fake_loaded = 4;   /* one entry cut off */
    fixture_open(f);
    assert_int_equal(raft_log_mark_check(&f->mark, "D", err, sizeof err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "ends at index 4"));
    assert_non_null(strstr(err, "up to index 5"));
    assert_non_null(strstr(err, "/log-end"));
}

static void test_truncation_lowers_first_and_caps_appends_in_flight(void **state)
{
    struct fixture *f = *state;
    fake_loaded = 10;
    fixture_open(f);
    append(f, 2);         /* 11..12 */
    complete(0, 0);
    assert_int_equal(file_mark(f), 12);
    append(f, 3);         /* 13..15, still being written */
    assert_int_equal(f->io.truncate(&f->io, 12), 0);   /* a new leader: 12 on goes */
    assert_int_equal(fake_truncated, 12);
    assert_int_equal(file_mark(f), 11);
    complete(1, 0);       /* written, but about to be removed */
    assert_int_equal(file_mark(f), 11);
    append(f, 1);         /* the new 12 */
    complete(2, 0);
    assert_int_equal(file_mark(f), 12);
}

static void test_install_replaces_the_mark(void **state)
{
    struct fixture *f = *state;
    struct raft_snapshot snap;
    struct raft_io_snapshot_put put;
    int done = 0;

    fake_loaded = 20;
    fixture_open(f);
    append(f, 1);
    complete(0, 0);
    assert_int_equal(file_mark(f), 21);
    memset(&snap, 0, sizeof snap);
    put.data = &done;
    /* A snapshot of its own keeps the log's last index. */
    snap.index = 15;
    assert_int_equal(f->io.snapshot_put(&f->io, 8, &put, &snap, outer_put), 0);
    fake_put_cb(fake_put, 0);
    assert_int_equal(file_mark(f), 21);
    /* An install of a snapshot at 18 replaces the log (21 was an uncommitted tail). */
    snap.index = 18;
    assert_int_equal(f->io.snapshot_put(&f->io, 0, &put, &snap, outer_put), 0);
    assert_int_equal(file_mark(f), 18);
    fake_put_cb(fake_put, 0);
    assert_int_equal(done, 2);
    assert_int_equal(file_mark(f), 18);
    append(f, 2);          /* 19..20 */
    complete(1, 0);
    assert_int_equal(file_mark(f), 20);
    /* An install ahead of the log raises the mark once it is on disk. */
    snap.index = 90;
    assert_int_equal(f->io.snapshot_put(&f->io, 0, &put, &snap, outer_put), 0);
    assert_int_equal(file_mark(f), 20);
    fake_put_cb(fake_put, 0);
    assert_int_equal(file_mark(f), 90);
}

static void test_failed_append_stops_the_mark(void **state)
{
    struct fixture *f = *state;
    fixture_open(f);
    append(f, 1);
    append(f, 1);
    complete(0, RAFT_IOERR);
    complete(1, 0);
    assert_int_equal(file_mark(f), 0);
    assert_int_equal(f->completed, 2);
}

static void test_damaged_mark_file_loses_only_the_check(void **state)
{
    struct fixture *f = *state;
    char path[128], err[512];
    FILE *fp;
    snprintf(path, sizeof path, "%s/log-end", f->dir);
    fp = fopen(path, "w");
    fputs("vigil log end 0000000000000000x999\n....", fp);
    fclose(fp);
    fixture_open(f);
    assert_true(f->mark.found_damaged);
    assert_int_equal(raft_log_mark_check(&f->mark, "D", err, sizeof err), 0);
    append(f, 1);
    complete(0, 0);
    assert_int_equal(file_mark(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_marks_each_completed_append_and_refuses_a_shorter_log,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_lowers_first_and_caps_appends_in_flight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_replaces_the_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_append_stops_the_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_mark_file_loses_only_the_check, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
