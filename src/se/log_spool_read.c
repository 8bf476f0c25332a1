/* log_spool_read.c: the spool's reading side: the frame reader with resynchronisation,
 * recovery at open, and peek. */
#include "se/log_spool-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/errors.h"
#include "common/vlog.h"

const unsigned char log_spool__magic[4] = {0xF5, 0x56, 0x53, 0x31};

static uint64_t log_spool__get(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void log_spool__segment_path(const struct log_spool *s, uint64_t number, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%020" PRIu64 ".seg", s->dir, number);
}

int log_spool__reader_open(struct log_spool *s, const struct log_spool__segment *seg,
                           uint64_t from, struct log_spool__reader *r)
{
    char path[4200];

    log_spool__segment_path(s, seg->number, path, sizeof path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        vlog_error("log_spool: cannot read %s: %s", path, strerror(errno));
        return VIGIL_EIO;
    }
    r->end = seg->bytes;
    r->pos = from;
    r->window = s->window;
    r->window_at = 0;
    r->window_len = 0;
    return 0;
}

/* Makes bytes [AT, AT + N) readable in the window. Returns 1, 0 when they are past the end,
 * or VIGIL_EIO. */
static int log_spool__need(struct log_spool__reader *r, uint64_t at, size_t n)
{
    size_t want, got = 0;

    if (at + n > r->end)
        return 0;
    if (at >= r->window_at && at + n <= r->window_at + r->window_len)
        return 1;
    want = LOG_SPOOL__WINDOW + LOG_SPOOL__FRAME_MAX;
    if (want > r->end - at)
        want = (size_t)(r->end - at);
    while (got < want) {
        ssize_t k = pread(r->fd, r->window + got, want - got, (off_t)(at + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return VIGIL_EIO;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->window_at = at;
    r->window_len = got;
    return got >= n ? 1 : 0;
}

/* Whether a whole valid frame starts at AT: 1 (and *F), 0, or VIGIL_EIO. */
static int log_spool__check(struct log_spool__reader *r, uint64_t at, struct log_spool__frame *f)
{
    const unsigned char *p;
    uint64_t len;
    uint32_t crc;
    int rc = log_spool__need(r, at, LOG_SPOOL__HEADER);

    if (rc <= 0)
        return rc;
    p = (const unsigned char *)r->window + (at - r->window_at);
    len = log_spool__get(p + 4, 4);
    if (memcmp(p, log_spool__magic, 4) != 0 || len == 0 || len > LOG_RECORD_LINE_MAX)
        return 0;
    rc = log_spool__need(r, at, LOG_SPOOL__HEADER + (size_t)len);
    if (rc <= 0)
        return rc;
    p = (const unsigned char *)r->window + (at - r->window_at);
    crc = crc32c_update(0, p + 4, 12);
    crc = crc32c_update(crc, p + LOG_SPOOL__HEADER, (size_t)len);
    if (crc != (uint32_t)log_spool__get(p + 16, 4))
        return 0;
    f->at = at;
    f->seq = log_spool__get(p + 8, 8);
    f->payload = (const char *)p + LOG_SPOOL__HEADER;
    f->len = (size_t)len;
    return 1;
}

/* The offset of the next magic at or after FROM, R->end when there is none, or VIGIL_EIO
 * (as a negative value in *RC). */
static uint64_t log_spool__find_magic(struct log_spool__reader *r, uint64_t from, int *rc)
{
    while (from + 4 <= r->end) {
        const char *start, *hit;
        size_t avail;

        *rc = log_spool__need(r, from, 4);
        if (*rc <= 0)
            return r->end;
        start = r->window + (from - r->window_at);
        avail = (size_t)(r->window_at + r->window_len - from);
        hit = memmem(start, avail, log_spool__magic, 4);
        if (hit != NULL)
            return from + (uint64_t)(hit - start);
        from += avail - 3; /* a magic may straddle the window's end */
    }
    *rc = 0;
    return r->end;
}

int log_spool__reader_next(struct log_spool__reader *r, struct log_spool__frame *f)
{
    uint64_t at = r->pos;

    while (at < r->end) {
        int rc = log_spool__check(r, at, f);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            f->skipped = at - r->pos;
            r->pos = at + LOG_SPOOL__HEADER + f->len;
            return 1;
        }
        at = log_spool__find_magic(r, at + 1, &rc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- recovery ---------------------------------------------------------------------------- */

static int log_spool__read_ack_mark(struct log_spool *s)
{
    char path[4200], text[64], *end;
    unsigned long long v;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "%s/acked", s->dir);
    f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : VIGIL_EIO;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    errno = 0;
    v = strtoull(text, &end, 10);
    if (n == 0 || end == text || errno != 0 || (*end != '\n' && *end != '\0')) {
        vlog_error("log_spool: %s holds no sequence number", path);
        return VIGIL_ECORRUPT;
    }
    s->acked_through = v;
    return 0;
}

static int log_spool__compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment numbers in S->dir, ascending, in *OUT (caller frees) and *COUNT. */
static int log_spool__list(struct log_spool *s, uint64_t **out, size_t *count)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    uint64_t *numbers = NULL;
    size_t n = 0, alloc = 0;

    if (d == NULL)
        return VIGIL_EIO;
    while ((e = readdir(d)) != NULL) {
        char *end;
        unsigned long long v;
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".seg") != 0)
            continue;
        v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20 || v == 0)
            continue;
        if (n == alloc) {
            uint64_t *grown = realloc(numbers, (alloc ? alloc * 2 : 16) * sizeof *grown);
            if (grown == NULL) {
                closedir(d);
                free(numbers);
                return VIGIL_ENOMEM;
            }
            numbers = grown;
            alloc = alloc ? alloc * 2 : 16;
        }
        numbers[n++] = v;
    }
    closedir(d);
    if (n > 1)
        qsort(numbers, n, sizeof *numbers, log_spool__compare);
    *out = numbers;
    *count = n;
    return 0;
}

/* Reads segment SEG (its bytes set to the file's size) from the start into the counters;
 * NEWEST: its torn tail is cut. *ACK_END: the offset after its last acked frame. */
static int log_spool__recover_segment(struct log_spool *s, struct log_spool__segment *seg,
                                      bool newest, uint64_t *ack_end)
{
    struct log_spool__reader r;
    struct log_spool__frame f;
    uint64_t damaged = 0, ranges = 0;
    char path[4200];
    int rc = log_spool__reader_open(s, seg, 0, &r);

    if (rc != 0)
        return rc;
    *ack_end = 0;
    while ((rc = log_spool__reader_next(&r, &f)) == 1) {
        if (f.skipped > 0) {
            damaged += f.skipped;
            ranges++;
        }
        if (f.seq <= s->last_seq) { /* out of order: not a record of this spool's sequence */
            damaged += LOG_SPOOL__HEADER + f.len;
            ranges++;
            continue;
        }
        if (seg->first_seq == 0)
            seg->first_seq = f.seq;
        seg->last_seq = s->last_seq = f.seq;
        seg->records++;
        s->recovery.records++;
        if (f.seq <= s->acked_through) {
            seg->acked++;
            *ack_end = r.pos;
        } else {
            s->unacked++;
        }
    }
    close(r.fd);
    if (rc < 0)
        return rc;
    log_spool__segment_path(s, seg->number, path, sizeof path);
    if (r.pos < r.end && newest) {
        vlog_warn("log_spool: %s: torn tail at offset %" PRIu64 ": %" PRIu64 " bytes dropped",
                  path, r.pos, r.end - r.pos);
        s->recovery.torn_bytes += r.end - r.pos;
        if (truncate(path, (off_t)r.pos) != 0)
            return VIGIL_EIO;
        seg->bytes = r.pos;
    } else if (r.pos < r.end) {
        damaged += r.end - r.pos;
        ranges++;
    }
    if (damaged > 0)
        vlog_error("log_spool: %s: damaged: %" PRIu64 " bytes in %" PRIu64
                   " run(s) skipped; %" PRIu64 " valid records kept",
                   path, damaged, ranges, seg->records);
    s->recovery.damaged_bytes += damaged;
    s->recovery.damaged_ranges += ranges;
    return 0;
}

/* Deletes the segments whose records are all acked (a prefix: seqs rise through them). */
static void log_spool__drop_acked_prefix(struct log_spool *s)
{
    size_t keep = 0;
    char path[4200];

    while (keep < s->segment_count && s->segments[keep].acked == s->segments[keep].records) {
        log_spool__segment_path(s, s->segments[keep].number, path, sizeof path);
        if (unlink(path) != 0)
            vlog_warn("log_spool: cannot delete %s: %s", path, strerror(errno));
        keep++;
    }
    if (keep == 0)
        return;
    memmove(s->segments, s->segments + keep, (s->segment_count - keep) * sizeof *s->segments);
    s->segment_count -= keep;
}

int log_spool__recover(struct log_spool *s)
{
    uint64_t *numbers = NULL, first_ack_end = 0;
    size_t count = 0;
    int rc = log_spool__read_ack_mark(s);

    if (rc == 0)
        rc = log_spool__list(s, &numbers, &count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct log_spool__segment *seg;
        char path[4200];
        struct stat st;
        uint64_t ack_end;

        log_spool__segment_path(s, numbers[i], path, sizeof path);
        if (stat(path, &st) != 0 || (rc = log_spool__add_segment(s, numbers[i])) != 0) {
            rc = rc ? rc : VIGIL_EIO;
            break;
        }
        seg = &s->segments[s->segment_count - 1];
        seg->bytes = (uint64_t)st.st_size;
        rc = log_spool__recover_segment(s, seg, i + 1 == count, &ack_end);
        if (rc == 0 && seg->acked < seg->records && first_ack_end == 0 && ack_end > 0)
            first_ack_end = ack_end;
        s->next_number = numbers[i] + 1;
        s->recovery.segments++;
    }
    free(numbers);
    if (rc != 0)
        return rc;
    if (s->last_seq < s->acked_through)
        s->last_seq = s->acked_through; /* an acked tail lost to a power loss */
    log_spool__drop_acked_prefix(s);
    s->ack_offset = first_ack_end;
    for (size_t i = 0; i < s->segment_count; i++)
        s->bytes += s->segments[i].bytes;
    return 0;
}

/* --- peek -------------------------------------------------------------------------------- */

int log_spool_peek(struct log_spool *s, uint64_t from_seq, size_t max_records,
                   size_t max_bytes, log_spool_record_fn fn, void *arg)
{
    int given = 0;
    size_t bytes = 0;

    log_spool__write_batch(s);
    for (size_t i = 0; i < s->segment_count; i++) {
        struct log_spool__segment *seg = &s->segments[i];
        struct log_spool__reader r;
        struct log_spool__frame f;
        uint64_t start = 0;
        int rc;

        if (seg->records == 0 || seg->last_seq < from_seq)
            continue;
        if (i == 0 && from_seq > s->acked_through)
            start = s->ack_offset;
        if (s->read_hint_number == seg->number && from_seq >= s->read_hint_below &&
            s->read_hint_offset > start)
            start = s->read_hint_offset;
        if (log_spool__reader_open(s, seg, start, &r) != 0)
            return VIGIL_EIO;
        while ((rc = log_spool__reader_next(&r, &f)) == 1) {
            struct log_spool_record rec = {.seq = f.seq, .data = f.payload, .len = f.len};
            if (f.seq < from_seq)
                continue;
            given++;
            bytes += f.len;
            s->read_hint_number = seg->number;
            s->read_hint_offset = r.pos;
            s->read_hint_below = f.seq + 1;
            if (fn(arg, &rec) != 0 || (size_t)given >= max_records || bytes >= max_bytes)
                break;
        }
        close(r.fd);
        if (rc < 0)
            return VIGIL_EIO;
        if (rc == 1)
            return given;
    }
    return given;
}
