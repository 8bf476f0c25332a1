/* log_file.c: the access.log sink with buffering and rotation. */
#include "se/log_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/vlog.h"

#define LOG_FILE__BUF (256 * 1024)
#define LOG_FILE__FLUSH_MS 100

struct log_file {
    struct log_sink base;
    uv_timer_t timer;
    char *path;
    const char *se_name;
    int fd;
    char *buf;
    size_t len;
    uint64_t buffered; /* records in buf */
    uint64_t file_size;
    uint64_t rotate_bytes;
    unsigned keep;
    struct log_sink_stats stats;
};

static int log_file__open_fd(struct log_file *lf)
{
    struct stat st;
    lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (lf->fd < 0)
        return VIGIL_EIO;
    lf->file_size = fstat(lf->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void log_file__rotate(struct log_file *lf)
{
    char from[4200], to[4200];

    for (unsigned i = lf->keep; i >= 1; i--) {
        if (i == 1)
            snprintf(from, sizeof from, "%s", lf->path);
        else
            snprintf(from, sizeof from, "%s.%u", lf->path, i - 1);
        snprintf(to, sizeof to, "%s.%u", lf->path, i);
        if (rename(from, to) != 0 && errno != ENOENT)
            vlog_warn("log_file: rename %s -> %s: %s", from, to, strerror(errno));
    }
    close(lf->fd);
    if (log_file__open_fd(lf) != 0)
        vlog_error("log_file: cannot reopen %s: %s", lf->path, strerror(errno));
}

static void log_file__flush(struct log_sink *sink)
{
    struct log_file *lf = (struct log_file *)sink;
    size_t off = 0;

    if (lf->len == 0)
        return;
    while (off < lf->len && lf->fd >= 0) {
        ssize_t n = write(lf->fd, lf->buf + off, lf->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)n;
    }
    if (off < lf->len) {
        vlog_error("log_file: write to %s failed: %s; %llu records dropped", lf->path,
                   strerror(errno), (unsigned long long)lf->buffered);
        lf->stats.dropped += lf->buffered;
    } else {
        lf->stats.acked += lf->buffered;
    }
    lf->file_size += off;
    lf->len = 0;
    lf->buffered = 0;
    if (lf->file_size >= lf->rotate_bytes)
        log_file__rotate(lf);
}

static int log_file__append(struct log_sink *sink, const struct log_record *r)
{
    struct log_file *lf = (struct log_file *)sink;
    struct log_record copy;
    size_t n;

    if (LOG_FILE__BUF - lf->len < LOG_RECORD_LINE_MAX)
        log_file__flush(sink);
    copy = *r;
    copy.se_name = lf->se_name;
    n = log_record_encode(&copy, lf->buf + lf->len, LOG_FILE__BUF - lf->len);
    lf->stats.generated++;
    if (n == 0) {
        lf->stats.dropped++;
        return VIGIL_ETOOBIG;
    }
    lf->len += n;
    lf->buffered++;
    return 0;
}

static void log_file__stats(struct log_sink *sink, struct log_sink_stats *out)
{
    *out = ((struct log_file *)sink)->stats;
}

static void log_file__on_timer(uv_timer_t *t)
{
    log_file__flush(t->data);
}

static void log_file__on_closed(uv_handle_t *h)
{
    struct log_file *lf = h->data;
    free(lf->buf);
    free(lf->path);
    free(lf);
}

static void log_file__close(struct log_sink *sink)
{
    struct log_file *lf = (struct log_file *)sink;
    log_file__flush(sink);
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = -1;
    uv_close((uv_handle_t *)&lf->timer, log_file__on_closed);
}

static const struct log_sink_ops log_file__ops = {
    .append = log_file__append,
    .flush = log_file__flush,
    .stats = log_file__stats,
    .close = log_file__close,
};

int log_file_open(uv_loop_t *loop, const char *dir, const char *se_name,
                  const struct log_file_options *opts, struct log_sink **out)
{
    struct log_file *lf = calloc(1, sizeof *lf);

    if (lf == NULL)
        return VIGIL_ENOMEM;
    lf->base.ops = &log_file__ops;
    lf->se_name = se_name;
    lf->rotate_bytes = opts && opts->rotate_bytes ? opts->rotate_bytes : 100ull << 20;
    lf->keep = opts && opts->keep ? opts->keep : 5;
    lf->buf = malloc(LOG_FILE__BUF);
    if (lf->buf == NULL || asprintf(&lf->path, "%s/access.log", dir) < 0) {
        free(lf->buf);
        free(lf);
        return VIGIL_ENOMEM;
    }
    if (log_file__open_fd(lf) != 0) {
        vlog_error("log_file: cannot open %s: %s", lf->path, strerror(errno));
        free(lf->buf);
        free(lf->path);
        free(lf);
        return VIGIL_EIO;
    }
    uv_timer_init(loop, &lf->timer);
    lf->timer.data = lf;
    uv_timer_start(&lf->timer, log_file__on_timer, LOG_FILE__FLUSH_MS, LOG_FILE__FLUSH_MS);
    uv_unref((uv_handle_t *)&lf->timer);
    *out = &lf->base;
    return 0;
}
