/* test_raft_log_check.c: the segment checker (controller/raft_log_check.c) on synthetic
 * libraft 0.15 segments built here, with a CRC written independently (bit by bit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>

#include "common/errors.h"
#include "controller/consensus/raft_log_check.h"

#define SEG_SIZE 65536

/* ---------------------------------------------------------------------------------- */
/* Building segments                                                                   */

static uint32_t crc_bitwise(const unsigned char *p, size_t len)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint32_t)p[i] << 24;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A segment being built: SEG_SIZE bytes, zeros after what is written (preallocated). */
struct seg {
    unsigned char data[SEG_SIZE];
    size_t len;         /* bytes written */
    size_t starts[64];  /* each batch's offset */
    unsigned n_batches;
};

static void seg_init(struct seg *s)
{
    memset(s, 0, sizeof *s);
    put64(s->data, 1);
    s->len = 8;
}

/* Appends a batch of N command entries of 8*(1+i%3) bytes each, filled with SEED. */
static void seg_batch(struct seg *s, unsigned n, unsigned char seed)
{
    unsigned char *at = s->data + s->len, *header = at + 8;
    size_t header_len = 8 + 16 * (size_t)n, data_len = 0;
    unsigned char *data = header + header_len;

    s->starts[s->n_batches++] = s->len;
    put64(header, n);
    for (unsigned i = 0; i < n; i++) {
        size_t size = 8 * (1 + i % 3);
        unsigned char *e = header + 8 + 16 * i;
        put64(e, 2);
        e[8] = RAFT_COMMAND;
        put32(e + 12, (uint32_t)size);
        memset(data + data_len, seed + i, size);
        data_len += size;
    }
    put32(at, crc_bitwise(header, header_len));
    put32(at + 4, crc_bitwise(data, data_len));
    s->len += 8 + header_len + data_len;
}

static struct seg *seg_new(unsigned batches)
{
    struct seg *s = malloc(sizeof *s);
    seg_init(s);
    for (unsigned i = 0; i < batches; i++)
        seg_batch(s, 1 + i % 4, (unsigned char)(0x40 + i));
    return s;
}

static int check(const struct seg *s, size_t len, bool open, struct raft_log_check_result *res,
                 char *err)
{
    err[0] = '\0';
    return raft_log_check_segment(open ? "open-1" : "0000000000000001-0000000000000025",
                                  s->data, len, open, res, err, 512);
}

/* ---------------------------------------------------------------------------------- */
/* Tests                                                                               */

static void test_crc_matches_libraft(void **state)
{
    (void)state;
    /* The CRC-32/MPEG-2 polynomial without its initial and final inversion. */
    const unsigned char *digits = (const unsigned char *)"123456789";
    assert_int_equal(raft_log_check_crc32(digits, 9, 0), crc_bitwise(digits, 9));
    assert_int_equal(raft_log_check_crc32("6789", 4, raft_log_check_crc32("12345", 5, 0)),
                     crc_bitwise(digits, 9));
}

static void test_valid_open_segment(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), 0);
    assert_int_equal(res.entries, 1 + 2 + 3 + 4 + 1 + 2 + 3 + 4 + 1 + 2);
    assert_int_equal(res.valid_end, s->len);
    assert_false(res.torn);
    free(s);
}

static void test_empty_and_zeroed_open_segment(void **state)
{
    struct seg *s = seg_new(0);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    assert_int_equal(check(s, 0, true, &res, err), 0);
    memset(s->data, 0, SEG_SIZE);
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), 0);
    assert_int_equal(res.entries, 0);
    free(s);
}

static void test_torn_tail_is_accepted(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    size_t last = s->starts[9], cut = last + (s->len - last) / 2;
    char err[512];
    (void)state;
    memset(s->data + cut, 0, SEG_SIZE - cut);   /* the write stopped half way */
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, last);
    assert_int_equal(res.entries, 1 + 2 + 3 + 4 + 1 + 2 + 3 + 4 + 1);
    free(s);
}

static void test_flipped_byte_in_the_middle_is_refused(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512], want[64];
    (void)state;
    s->data[s->starts[5] + 40] ^= 0x01;
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), VIGIL_ECORRUPT);
    snprintf(want, sizeof want, "open-1: damaged batch at byte %zu ", s->starts[5]);
    assert_non_null(strstr(err, want));
    snprintf(want, sizeof want, "follows at byte %zu", s->starts[6]);
    assert_non_null(strstr(err, want));
    assert_null(strchr(err, '\n'));
    free(s);
}

static void test_flipped_byte_near_the_end_is_refused(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    s->data[s->starts[9] - 3] ^= 0x80; /* the data of batch 8; batch 9 is valid */
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "open-1"));
    free(s);
}

static void test_flipped_checksum_or_count_is_refused(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    s->data[s->starts[3]] ^= 0x10;     /* header checksum */
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), VIGIL_ECORRUPT);
    s->data[s->starts[3]] ^= 0x10;
    s->data[s->starts[3] + 8] ^= 0x04; /* entry count */
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), VIGIL_ECORRUPT);
    free(s);
}

static void test_damaged_last_batch_counts_as_torn(void **state)
{
    /* Nothing valid after it: the segment alone cannot tell it from a cut write (the
     * durable-end mark can, raft_log_mark.c). */
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    s->data[s->len - 1] ^= 0x01;
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, s->starts[9]);
    free(s);
}

static void test_short_or_unknown_header_is_refused(void **state)
{
    struct seg *s = seg_new(2);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    assert_int_equal(check(s, 5, true, &res, err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "5 bytes"));
    put64(s->data, 7);
    assert_int_equal(check(s, SEG_SIZE, true, &res, err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "format version 7"));
    free(s);
}

static void test_batch_header_cut_by_the_file_end(void **state)
{
    struct seg *s = seg_new(10);
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    /* The file ends inside the last batch's header: torn for an open segment... */
    assert_int_equal(check(s, s->starts[9] + 12, true, &res, err), 0);
    assert_true(res.torn);
    /* ...damage for a closed one, which libraft truncated exactly after its last batch. */
    assert_int_equal(check(s, s->starts[9] + 12, false, &res, err), VIGIL_ECORRUPT);
    free(s);
}

static void test_closed_segment(void **state)
{
    struct seg *s = seg_new(10);   /* 23 entries */
    struct raft_log_check_result res;
    char err[512];
    (void)state;
    assert_int_equal(raft_log_check_segment("0000000000000003-0000000000000025", s->data, s->len,
                                            false, &res, err, sizeof err), 0);
    assert_int_equal(res.entries, 23);
    assert_int_equal(check(s, s->len, false, &res, err), VIGIL_ECORRUPT); /* 25 named */
    assert_non_null(strstr(err, "holds 23 entries, its name says 25"));
    assert_int_equal(check(s, s->len + 8, false, &res, err), VIGIL_ECORRUPT); /* zeros after */
    free(s);
}

/* Writes S's first LEN bytes to DIR/NAME. */
static void write_file(const char *dir, const char *name, const struct seg *s, size_t len)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s->data, 1, len, f), len);
    fclose(f);
}

static void test_directory(void **state)
{
    char dir[] = "/tmp/vigil-test-log-check-XXXXXX", err[512], cmd[600];
    struct seg *s = seg_new(10), *torn = seg_new(4);
    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(raft_log_check_dir(dir, err, sizeof err), 0); /* empty */
    write_file(dir, "0000000000000001-0000000000000023", s, s->len);
    write_file(dir, "metadata1", s, 16);                         /* not a segment */
    write_file(dir, "open-1", s, SEG_SIZE);
    assert_int_equal(raft_log_check_dir(dir, err, sizeof err), 0);

    /* A torn tail in open-1 is fine while it is the last open segment with entries... */
    memset(torn->data + torn->starts[3] + 10, 0, SEG_SIZE - torn->starts[3] - 10);
    write_file(dir, "open-1", torn, SEG_SIZE);
    write_file(dir, "open-2", torn, 0);
    assert_int_equal(raft_log_check_dir(dir, err, sizeof err), 0);
    /* ...not when open-2 after it holds entries */
    write_file(dir, "open-2", s, SEG_SIZE);
    assert_int_equal(raft_log_check_dir(dir, err, sizeof err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "/open-1: damaged batch at byte"));
    assert_non_null(strstr(err, "open-2 after it holds entries"));

    write_file(dir, "open-1", s, SEG_SIZE);
    s->data[s->starts[2] + 20] ^= 0x02;
    write_file(dir, "0000000000000001-0000000000000023", s, s->len);
    assert_int_equal(raft_log_check_dir(dir, err, sizeof err), VIGIL_ECORRUPT);
    assert_non_null(strstr(err, "damaged raft log: "));
    assert_non_null(strstr(err, "/0000000000000001-0000000000000023: damaged batch at byte"));

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(s);
    free(torn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_matches_libraft),
        cmocka_unit_test(test_valid_open_segment),
        cmocka_unit_test(test_empty_and_zeroed_open_segment),
        cmocka_unit_test(test_torn_tail_is_accepted),
        cmocka_unit_test(test_flipped_byte_in_the_middle_is_refused),
        cmocka_unit_test(test_flipped_byte_near_the_end_is_refused),
        cmocka_unit_test(test_flipped_checksum_or_count_is_refused),
        cmocka_unit_test(test_damaged_last_batch_counts_as_torn),
        cmocka_unit_test(test_short_or_unknown_header_is_refused),
        cmocka_unit_test(test_batch_header_cut_by_the_file_end),
        cmocka_unit_test(test_closed_segment),
        cmocka_unit_test(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
