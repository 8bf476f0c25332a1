/* log_seq.c: block-reserved sequence numbers persisted in DIR/FILE (log_seq.h). */
#include "se/log_seq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/vlog.h"

struct log_seq {
    char *path;
    uint64_t next;
    uint64_t limit; /* first number not reserved on disk */
};

/* Writes V into the file through a temporary file and rename, with fsync. */
static int log_seq__store(const struct log_seq *s, uint64_t v)
{
    char tmp[4096];
    char text[32];
    int fd, n;

    snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    n = snprintf(text, sizeof text, "%" PRIu64 "\n", v);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return VIGIL_EIO;
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return VIGIL_EIO;
    }
    close(fd);
    if (rename(tmp, s->path) != 0) {
        unlink(tmp);
        return VIGIL_EIO;
    }
    return 0;
}

int log_seq_open(const char *dir, const char *file, struct log_seq **out)
{
    struct log_seq *s = calloc(1, sizeof *s);
    char text[64];
    FILE *f;

    if (s == NULL)
        return VIGIL_ENOMEM;
    if (asprintf(&s->path, "%s/%s", dir, file) < 0) {
        free(s);
        return VIGIL_ENOMEM;
    }
    s->next = 1;
    f = fopen(s->path, "r");
    if (f != NULL) {
        char *end;
        unsigned long long v;
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        errno = 0;
        v = strtoull(text, &end, 10);
        if (n == 0 || end == text || errno != 0 || (*end != '\n' && *end != '\0') || v == 0) {
            vlog_error("log_seq: %s holds no sequence number", s->path);
            free(s->path);
            free(s);
            return VIGIL_ECORRUPT;
        }
        s->next = v;
    } else if (errno != ENOENT) {
        free(s->path);
        free(s);
        return VIGIL_EIO;
    }
    s->limit = s->next + LOG_SEQ_BLOCK;
    if (log_seq__store(s, s->limit) != 0) {
        vlog_error("log_seq: cannot write %s: %s", s->path, strerror(errno));
        free(s->path);
        free(s);
        return VIGIL_EIO;
    }
    *out = s;
    return 0;
}

uint64_t log_seq_next(struct log_seq *s)
{
    if (s->next >= s->limit) {
        if (log_seq__store(s, s->limit + LOG_SEQ_BLOCK) != 0)
            vlog_error("log_seq: cannot reserve a block in %s: %s", s->path, strerror(errno));
        s->limit += LOG_SEQ_BLOCK;
    }
    return s->next++;
}

void log_seq_close(struct log_seq *s)
{
    if (s == NULL)
        return;
    if (log_seq__store(s, s->next) != 0)
        vlog_error("log_seq: cannot write %s: %s", s->path, strerror(errno));
    free(s->path);
    free(s);
}
