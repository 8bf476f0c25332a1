/* log_spool.c: the spool as a log sink: batching frames, writing them at the end of each
 * loop iteration, fsync off the loop thread, the cap and its drop episodes, acks. The
 * reading side is in log_spool_read.c. */
#include "se/log_spool-int.h"

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
#include "common/fileutil.h"
#include "common/vlog.h"

#define LOG_SPOOL__SYNC_MS 100
#define LOG_SPOOL__SYNC_BYTES (4u << 20)
#define LOG_SPOOL__BATCH_MAX (256 * 1024)
#define LOG_SPOOL__SEGMENT_DEFAULT (16ull << 20)
#define LOG_SPOOL__SEGMENT_MIN (64ull << 10)

/* One fsync on the thread pool; owns FD (a dup, or a finished segment's) and closes it. */
struct log_spool__sync {
    uv_fs_t req;
    struct log_spool *spool;
    int fd;
    bool with_dir; /* then fsync the spool directory (a segment was created) */
};

static void log_spool__put(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

int log_spool__add_segment(struct log_spool *s, uint64_t number)
{
    if (s->segment_count == s->segment_alloc) {
        size_t alloc = s->segment_alloc ? s->segment_alloc * 2 : 16;
        struct log_spool__segment *grown = realloc(s->segments, alloc * sizeof *grown);
        if (grown == NULL)
            return VIGIL_ENOMEM;
        s->segments = grown;
        s->segment_alloc = alloc;
    }
    memset(&s->segments[s->segment_count], 0, sizeof *s->segments);
    s->segments[s->segment_count++].number = number;
    return 0;
}

static void log_spool__free(struct log_spool *s)
{
    buf_free(&s->batch);
    free(s->segments);
    free(s->scratch);
    free(s->window);
    free(s->dir);
    free(s);
}

static void log_spool__maybe_free(struct log_spool *s)
{
    if (s->closing && s->handles_open == 0 && s->syncs_in_flight == 0)
        log_spool__free(s);
}

static void log_spool__on_synced(uv_fs_t *req)
{
    struct log_spool__sync *job = req->data;
    struct log_spool *s = job->spool;

    if (req->result < 0)
        vlog_error("log_spool: fsync in %s: %s", s->dir, uv_strerror((int)req->result));
    close(job->fd);
    uv_fs_req_cleanup(req);
    s->syncs_in_flight--;
    if (job->with_dir) { /* then the directory, for the entries of new segments */
        job->fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        job->with_dir = false;
        if (job->fd >= 0 && uv_fs_fsync(s->loop, &job->req, job->fd, log_spool__on_synced) == 0) {
            s->syncs_in_flight++;
            return;
        }
        if (job->fd >= 0)
            close(job->fd);
    }
    free(job);
    log_spool__maybe_free(s);
}

/* fsyncs FD (owned: closed when done) on the thread pool, then the directory when a segment
 * was created since the last one; here, blocking, when the pool refuses. */
static void log_spool__start_sync(struct log_spool *s, int fd)
{
    struct log_spool__sync *job = malloc(sizeof *job);

    s->unsynced = 0;
    if (job != NULL) {
        job->spool = s;
        job->fd = fd;
        job->with_dir = s->dir_unsynced;
        job->req.data = job;
        if (uv_fs_fsync(s->loop, &job->req, fd, log_spool__on_synced) == 0) {
            s->syncs_in_flight++;
            s->dir_unsynced = false;
            return;
        }
        free(job);
    }
    fsync(fd);
    close(fd);
}

static void log_spool__drop(struct log_spool *s, uint64_t records, const char *why)
{
    s->stats.dropped += records;
    if (!s->in_drop_episode)
        s->episode_drops = 0;
    s->episode_drops += records;
    s->newest_episode_drops = s->episode_drops;
    if (s->in_drop_episode)
        return;
    s->in_drop_episode = true;
    s->drop_episodes++;
    vlog_warn("log_spool: dropping records (%s): %" PRIu64 " of %" PRIu64 " bytes used; "
              "further drops are counted until an ack frees space", why, s->bytes,
              s->opts.cap_bytes);
    if (s->opts.on_drop_episode != NULL)
        s->opts.on_drop_episode(s->opts.arg, s->drop_episodes);
}

/* Opens a new newest segment for writing. Returns 0 or VIGIL_EIO / VIGIL_ENOMEM. */
static int log_spool__start_segment(struct log_spool *s)
{
    char path[4200];
    int rc;

    log_spool__segment_path(s, s->next_number, path, sizeof path);
    s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        if (!s->in_drop_episode) /* else already said: one line per episode */
            vlog_error("log_spool: cannot create %s: %s", path, strerror(errno));
        return VIGIL_EIO;
    }
    rc = log_spool__add_segment(s, s->next_number);
    if (rc != 0) {
        close(s->fd);
        s->fd = -1;
        unlink(path);
        return rc;
    }
    s->next_number++;
    s->dir_unsynced = true;
    return 0;
}

/* Writes LEN bytes of DATA to FD. Returns 0 or a negative errno. */
static int log_spool__write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A part of a batch that cannot be cut back stays in SEG: its bytes count (the reader sees
 * damage there), and the next batch goes to a new segment, so offsets stay true. */
static void log_spool__abandon_newest(struct log_spool *s, struct log_spool__segment *seg)
{
    struct stat st;

    vlog_error("log_spool: cannot cut segment %" PRIu64 " back: %s", seg->number,
               strerror(errno));
    if (fstat(s->fd, &st) == 0 && (uint64_t)st.st_size > seg->bytes) {
        s->bytes += (uint64_t)st.st_size - seg->bytes;
        seg->bytes = (uint64_t)st.st_size;
    }
    close(s->fd);
    s->fd = -1;
}

static void log_spool__on_sync_timer(uv_timer_t *t);

void log_spool__write_batch(struct log_spool *s)
{
    struct log_spool__segment *seg = NULL;
    int rc = 0;

    if (s->batch.len == 0)
        return;
    if (s->fd < 0)
        rc = log_spool__start_segment(s);
    if (rc == 0) {
        seg = &s->segments[s->segment_count - 1];
        rc = log_spool__write_all(s->fd, s->batch.data, s->batch.len);
        if (rc != 0 && ftruncate(s->fd, (off_t)seg->bytes) != 0)
            log_spool__abandon_newest(s, seg);
    }
    if (rc != 0) {
        if (!s->in_drop_episode)
            vlog_error("log_spool: write to %s failed: %s", s->dir, vigil_strerror(rc));
        s->bytes -= s->batch.len;
        log_spool__drop(s, s->batch_records, "a write failed");
    } else {
        if (seg->first_seq == 0)
            seg->first_seq = s->batch_first_seq;
        seg->last_seq = s->last_seq;
        seg->records += s->batch_records;
        seg->bytes += s->batch.len;
        s->unacked += s->batch_records;
        s->unsynced += s->batch.len;
        if (!uv_is_active((uv_handle_t *)&s->sync_timer))
            uv_timer_start(&s->sync_timer, log_spool__on_sync_timer, LOG_SPOOL__SYNC_MS, 0);
        if (s->on_written != NULL)
            s->on_written(s->on_written_arg);
    }
    s->batch.len = 0;
    s->batch_records = 0;
    buf_trim(&s->batch, LOG_SPOOL__BATCH_MAX * 2);
    uv_idle_stop(&s->idle);
    if (s->fd >= 0 && s->unsynced >= LOG_SPOOL__SYNC_BYTES) {
        int copy = dup(s->fd);
        if (copy >= 0)
            log_spool__start_sync(s, copy);
    }
}

/* Finishes the newest segment when a frame of FRAME bytes would take it past the size. */
static void log_spool__maybe_roll(struct log_spool *s, size_t frame)
{
    uint64_t used = s->batch.len;

    if (s->fd >= 0)
        used += s->segments[s->segment_count - 1].bytes;
    if (used == 0 || used + frame <= s->opts.segment_bytes)
        return;
    log_spool__write_batch(s);
    if (s->fd >= 0)
        log_spool__start_sync(s, s->fd);
    s->fd = -1;
}

/* Only keeps the poll from blocking while a batch waits; the check handle writes it. */
static void log_spool__on_idle(uv_idle_t *h)
{
    (void)h;
}

/* Appends the record SEQ whose payload (N bytes, 0: it did not fit) is in S->scratch
 * after the frame header's room: frames it, into the batch. */
static int log_spool__append_scratch(struct log_spool *s, uint64_t seq, size_t n)
{
    unsigned char *head = (unsigned char *)s->scratch;
    size_t frame = LOG_SPOOL__HEADER + n;
    uint32_t crc;

    if (n == 0 || s->bytes + frame > s->opts.cap_bytes) {
        log_spool__drop(s, 1, n == 0 ? "a record too big" : "the spool's size cap");
        return n == 0 ? VIGIL_ETOOBIG : VIGIL_ENOSPC;
    }
    memcpy(head, log_spool__magic, 4);
    log_spool__put(head + 4, n, 4);
    log_spool__put(head + 8, seq, 8);
    crc = crc32c_update(0, head + 4, 12);
    log_spool__put(head + 16, crc32c_update(crc, head + LOG_SPOOL__HEADER, n), 4);
    log_spool__maybe_roll(s, frame);
    if (buf_append(&s->batch, s->scratch, frame) != 0) {
        log_spool__drop(s, 1, "out of memory");
        return VIGIL_ENOMEM;
    }
    if (s->batch_records++ == 0) {
        s->batch_first_seq = seq;
        uv_idle_start(&s->idle, log_spool__on_idle);
    }
    s->last_seq = seq;
    s->bytes += frame;
    if (s->batch.len >= LOG_SPOOL__BATCH_MAX)
        log_spool__write_batch(s);
    return 0;
}

/* Counts a record SEQ handed to S; refuses (counted dropped) one not above the last. */
static int log_spool__take(struct log_spool *s, uint64_t seq)
{
    s->stats.generated++;
    if (seq <= s->last_seq) {
        vlog_debug("log_spool: seq %" PRIu64 " refused: not above %" PRIu64, seq, s->last_seq);
        s->stats.dropped++;
        return VIGIL_EINVAL;
    }
    return 0;
}

static int log_spool__append(struct log_sink *sink, const struct log_record *r)
{
    struct log_spool *s = (struct log_spool *)sink;
    struct log_record copy = *r;
    int rc = log_spool__take(s, r->seq);

    if (rc != 0)
        return rc;
    copy.se_name = s->se_name;
    return log_spool__append_scratch(
        s, r->seq, log_record_encode(&copy, s->scratch + LOG_SPOOL__HEADER, LOG_RECORD_LINE_MAX));
}

int log_spool_append_line(struct log_spool *s, uint64_t seq, const char *line, size_t len)
{
    int rc = log_spool__take(s, seq);

    if (rc != 0)
        return rc;
    if (len == 0 || len > LOG_RECORD_LINE_MAX || line[len - 1] != '\n')
        return log_spool__append_scratch(s, seq, 0);
    memcpy(s->scratch + LOG_SPOOL__HEADER, line, len);
    return log_spool__append_scratch(s, seq, len);
}

static void log_spool__flush(struct log_sink *sink)
{
    log_spool__write_batch((struct log_spool *)sink);
}

static void log_spool__stats(struct log_sink *sink, struct log_sink_stats *out)
{
    struct log_spool *s = (struct log_spool *)sink;
    *out = s->stats;
    out->spooled = s->unacked + s->batch_records;
}

static void log_spool__on_check(uv_check_t *h)
{
    log_spool__write_batch(h->data);
}

/* LOG_SPOOL__SYNC_MS after the first write not yet fsynced: starts its fsync (or looks
 * again after as long when two are still in flight). Not armed again until the next write:
 * an idle spool wakes nobody. */
static void log_spool__on_sync_timer(uv_timer_t *t)
{
    struct log_spool *s = t->data;
    int copy;

    if (s->fd < 0 || s->unsynced == 0)
        return;
    if (s->syncs_in_flight > 1) {
        uv_timer_start(&s->sync_timer, log_spool__on_sync_timer, LOG_SPOOL__SYNC_MS, 0);
        return;
    }
    copy = dup(s->fd);
    if (copy >= 0)
        log_spool__start_sync(s, copy);
}

static void log_spool__on_handle_closed(uv_handle_t *h)
{
    struct log_spool *s = h->data;
    s->handles_open--;
    log_spool__maybe_free(s);
}

static void log_spool__close(struct log_sink *sink)
{
    struct log_spool *s = (struct log_spool *)sink;

    log_spool__write_batch(s);
    if (s->fd >= 0)
        log_spool__start_sync(s, s->fd);
    s->fd = -1;
    s->closing = true;
    uv_close((uv_handle_t *)&s->check, log_spool__on_handle_closed);
    uv_close((uv_handle_t *)&s->idle, log_spool__on_handle_closed);
    uv_close((uv_handle_t *)&s->sync_timer, log_spool__on_handle_closed);
}

static const struct log_sink_ops log_spool__ops = {
    .append = log_spool__append,
    .flush = log_spool__flush,
    .stats = log_spool__stats,
    .close = log_spool__close,
};

/* Deletes segments[0] (all its records acked). */
static void log_spool__delete_first(struct log_spool *s)
{
    struct log_spool__segment *seg = &s->segments[0];
    char path[4200];

    log_spool__segment_path(s, seg->number, path, sizeof path);
    if (unlink(path) != 0)
        vlog_warn("log_spool: cannot delete %s: %s", path, strerror(errno));
    if (s->segment_count == 1 && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->bytes -= seg->bytes;
    s->stats.acked += seg->records - seg->acked;
    s->unacked -= seg->records - seg->acked;
    memmove(s->segments, s->segments + 1, (s->segment_count - 1) * sizeof *s->segments);
    s->segment_count--;
    s->ack_offset = 0;
}

/* Counts the records of segments[0] from the ack offset up to THROUGH as acked. */
static int log_spool__ack_within_first(struct log_spool *s, uint64_t through)
{
    struct log_spool__segment *seg = &s->segments[0];
    struct log_spool__reader r;
    struct log_spool__frame f;
    int rc = log_spool__reader_open(s, seg, s->ack_offset, &r);

    if (rc != 0)
        return rc;
    while ((rc = log_spool__reader_next(&r, &f)) == 1 && f.seq <= through) {
        s->ack_offset = r.pos;
        seg->acked++;
        s->stats.acked++;
        s->unacked--;
    }
    close(r.fd);
    return rc < 0 ? rc : 0;
}

int log_spool_ack(struct log_spool *s, uint64_t through_seq)
{
    char text[32];
    bool freed = false;
    int rc;

    if (through_seq <= s->acked_through)
        return 0;
    if (through_seq > s->last_seq)
        return VIGIL_EINVAL;
    log_spool__write_batch(s);
    snprintf(text, sizeof text, "%" PRIu64 "\n", through_seq);
    rc = file_write_atomic(s->dir, "acked", text);
    if (rc != 0) {
        vlog_error("log_spool: cannot write the ack mark in %s: %s", s->dir, vigil_strerror(rc));
        return rc;
    }
    s->acked_through = through_seq;
    while (s->segment_count > 0 && s->segments[0].last_seq <= through_seq) {
        log_spool__delete_first(s);
        freed = true;
    }
    if (s->segment_count > 0 && s->segments[0].first_seq <= through_seq)
        rc = log_spool__ack_within_first(s, through_seq);
    if (freed && s->in_drop_episode) {
        vlog_info("log_spool: an ack freed space; %" PRIu64 " records were dropped in the episode",
                  s->episode_drops);
        s->in_drop_episode = false;
        s->episode_drops = 0;
    }
    return rc;
}

/* Fills S's options from OPTS (may be NULL) with the defaults and bounds. */
static void log_spool__set_options(struct log_spool *s, const struct log_spool_options *opts)
{
    uint64_t most;

    if (opts != NULL)
        s->opts = *opts;
    if (s->opts.cap_bytes == 0)
        s->opts.cap_bytes = (uint64_t)LOG_SPOOL_DEFAULT_CAP_MB << 20;
    if (s->opts.subdir == NULL || s->opts.subdir[0] == '\0')
        s->opts.subdir = "spool";
    if (s->opts.segment_bytes == 0)
        s->opts.segment_bytes = LOG_SPOOL__SEGMENT_DEFAULT;
    most = s->opts.cap_bytes / 4;
    if (s->opts.segment_bytes > most)
        s->opts.segment_bytes = most;
    if (s->opts.segment_bytes < LOG_SPOOL__SEGMENT_MIN)
        s->opts.segment_bytes = LOG_SPOOL__SEGMENT_MIN;
}

/* Opens the newest segment for appending when it has room; else the next write starts one. */
static void log_spool__reopen_newest(struct log_spool *s)
{
    struct log_spool__segment *seg;
    char path[4200];

    if (s->segment_count == 0)
        return;
    seg = &s->segments[s->segment_count - 1];
    if (seg->bytes >= s->opts.segment_bytes)
        return;
    log_spool__segment_path(s, seg->number, path, sizeof path);
    s->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
}

static void log_spool__start_handles(struct log_spool *s)
{
    uv_check_init(s->loop, &s->check);
    uv_idle_init(s->loop, &s->idle);
    uv_timer_init(s->loop, &s->sync_timer);
    s->check.data = s->idle.data = s->sync_timer.data = s;
    s->handles_open = 3;
    uv_check_start(&s->check, log_spool__on_check);
    uv_unref((uv_handle_t *)&s->check);
    uv_unref((uv_handle_t *)&s->sync_timer); /* started by the first write */
}

int log_spool_open(uv_loop_t *loop, const char *dir, const char *se_name,
                   const struct log_spool_options *opts, struct log_spool **out)
{
    struct log_spool *s = calloc(1, sizeof *s);
    int rc;

    if (s == NULL)
        return VIGIL_ENOMEM;
    s->base.ops = &log_spool__ops;
    s->loop = loop;
    s->se_name = se_name;
    s->fd = -1;
    s->next_number = 1;
    log_spool__set_options(s, opts);
    s->window = malloc(LOG_SPOOL__WINDOW + LOG_SPOOL__FRAME_MAX);
    s->scratch = malloc(LOG_SPOOL__FRAME_MAX);
    if (s->window == NULL || s->scratch == NULL || asprintf(&s->dir, "%s/%s", dir, s->opts.subdir) < 0) {
        s->dir = NULL;
        log_spool__free(s);
        return VIGIL_ENOMEM;
    }
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
        vlog_error("log_spool: cannot create %s: %s", s->dir, strerror(errno));
        log_spool__free(s);
        return VIGIL_EIO;
    }
    rc = log_spool__recover(s);
    if (rc != 0) {
        vlog_error("log_spool: cannot recover %s: %s", s->dir, vigil_strerror(rc));
        log_spool__free(s);
        return rc;
    }
    log_spool__reopen_newest(s);
    log_spool__start_handles(s);
    *out = s;
    return 0;
}

struct log_sink *log_spool_sink(struct log_spool *s)
{
    return &s->base;
}

uint64_t log_spool_first_unacked(const struct log_spool *s)
{
    return s->acked_through + 1;
}

uint64_t log_spool_acked_through(const struct log_spool *s)
{
    return s->acked_through;
}

uint64_t log_spool_drop_episodes(const struct log_spool *s)
{
    return s->drop_episodes;
}

uint64_t log_spool_last_seq(const struct log_spool *s)
{
    return s->last_seq;
}

void log_spool_drops(const struct log_spool *s, struct log_spool_drops *out)
{
    out->dropped = s->stats.dropped;
    out->episodes = s->drop_episodes;
    out->episode_dropped = s->newest_episode_drops;
    out->cap_bytes = s->opts.cap_bytes;
}

int log_spool_ack_would_free(const struct log_spool *s, uint64_t through_seq)
{
    return through_seq > s->acked_through && s->segment_count > 0 &&
           s->segments[0].last_seq <= through_seq;
}

uint64_t log_spool_bytes(const struct log_spool *s)
{
    return s->bytes;
}

void log_spool_recovery(const struct log_spool *s, struct log_spool_recovery *out)
{
    *out = s->recovery;
}

void log_spool_set_on_written(struct log_spool *s, void (*fn)(void *arg), void *arg)
{
    s->on_written = fn;
    s->on_written_arg = arg;
}
