#include "controller/consensus/raft_log_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"

#define RAFT_LOG_CHECK__FORMAT 1
#define RAFT_LOG_CHECK__PREAMBLE 8      /* the two CRCs */
#define RAFT_LOG_CHECK__ENTRY_HEADER 16 /* term, type, unused, size */
/* libraft's own bound on a batch's entry count (8 MiB / 32 bytes). */
#define RAFT_LOG_CHECK__MAX_ENTRIES ((uint64_t)(8 * 1024 * 1024) / 32)

/* --- CRC-32 as libraft computes it (MSB first, polynomial 0x04C11DB7) ----------------- */

static uint32_t raft_log_check__table[256];
static bool raft_log_check__table_ready;

static void raft_log_check__make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i << 24;
        for (int bit = 0; bit < 8; bit++)
            r = (r & 0x80000000u) ? (r << 1) ^ 0x04C11DB7u : r << 1;
        raft_log_check__table[i] = r;
    }
    raft_log_check__table_ready = true;
}

uint32_t raft_log_check_crc32(const void *data, size_t len, uint32_t crc)
{
    const unsigned char *p = data;
    if (!raft_log_check__table_ready)
        raft_log_check__make_table();
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ raft_log_check__table[((crc >> 24) ^ p[i]) & 0xff];
    return crc;
}

/* --- one segment ----------------------------------------------------------------------- */

static uint64_t raft_log_check__u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t raft_log_check__u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* If a whole valid batch starts at byte AT of P[0..LEN), returns the offset just past it
 * and its entry count in *N; returns 0 otherwise. */
static size_t raft_log_check__batch(const unsigned char *p, size_t len, size_t at, uint64_t *n)
{
    const unsigned char *header = p + at + RAFT_LOG_CHECK__PREAMBLE;
    size_t header_len, data_at;
    uint64_t count, data_len = 0;

    if (at > len || len - at < RAFT_LOG_CHECK__PREAMBLE + 8)
        return 0;
    count = raft_log_check__u64(header);
    if (count == 0 || count > RAFT_LOG_CHECK__MAX_ENTRIES)
        return 0;
    header_len = 8 + RAFT_LOG_CHECK__ENTRY_HEADER * (size_t)count;
    if (header_len > len - at - RAFT_LOG_CHECK__PREAMBLE)
        return 0;
    if (raft_log_check_crc32(header, header_len, 0) != raft_log_check__u32(p + at))
        return 0;
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = header + 8 + RAFT_LOG_CHECK__ENTRY_HEADER * i;
        if (e[8] != RAFT_COMMAND && e[8] != RAFT_BARRIER && e[8] != RAFT_CHANGE)
            return 0;
        data_len += raft_log_check__u32(e + 12);
    }
    data_at = at + RAFT_LOG_CHECK__PREAMBLE + header_len;
    if (data_len > len - data_at)
        return 0;
    if (raft_log_check_crc32(p + data_at, (size_t)data_len, 0) != raft_log_check__u32(p + at + 4))
        return 0;
    *n = count;
    return data_at + (size_t)data_len;
}

static bool raft_log_check__zeros(const unsigned char *p, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* The first offset after AT (8-aligned, as every batch is) where a valid batch starts, or 0. */
static size_t raft_log_check__next_valid(const unsigned char *p, size_t len, size_t at)
{
    uint64_t n;
    for (size_t y = at + 8; y + RAFT_LOG_CHECK__PREAMBLE + 8 <= len; y += 8)
        if (raft_log_check__batch(p, len, y, &n) != 0)
            return y;
    return 0;
}

/* A closed segment's entry count as its name says, or 0 when the name is not one. */
static uint64_t raft_log_check__closed_count(const char *name)
{
    unsigned long long first, last;
    int used = 0;
    if (sscanf(name, "%16llu-%16llu%n", &first, &last, &used) != 2 || name[used] != '\0' ||
        last < first)
        return 0;
    return (uint64_t)(last - first + 1);
}

int raft_log_check_segment(const char *name, const unsigned char *data, size_t len, bool open,
                           struct raft_log_check_result *out, char *err, size_t errlen)
{
    size_t at = 8, end, valid;
    uint64_t format, n;

    memset(out, 0, sizeof *out);
    out->valid_end = 8;
    if (open && (len == 0 || raft_log_check__zeros(data, 0, len)))
        return 0; /* preallocated, never written: libraft removes it */
    if (len < 8) {
        snprintf(err, errlen, "%s: %zu bytes, shorter than the 8-byte format header", name, len);
        return VIGIL_ECORRUPT;
    }
    format = raft_log_check__u64(data);
    if (format != RAFT_LOG_CHECK__FORMAT) {
        snprintf(err, errlen, "%s: unknown format version %llu at byte 0", name,
                 (unsigned long long)format);
        return VIGIL_ECORRUPT;
    }
    while (at < len && (end = raft_log_check__batch(data, len, at, &n)) != 0) {
        out->entries += n;
        at = end;
    }
    out->valid_end = at;
    if (!open) {
        uint64_t named = raft_log_check__closed_count(name);
        if (at != len) {
            snprintf(err, errlen, "%s: damaged batch at byte %zu of %zu", name, at, len);
            return VIGIL_ECORRUPT;
        }
        if (named != 0 && named != out->entries) {
            snprintf(err, errlen, "%s: holds %llu entries, its name says %llu", name,
                     (unsigned long long)out->entries, (unsigned long long)named);
            return VIGIL_ECORRUPT;
        }
        return 0;
    }
    if (at >= len || raft_log_check__zeros(data, at, len))
        return 0; /* the preallocated zeros after the last write */
    valid = raft_log_check__next_valid(data, len, at);
    if (valid != 0) {
        snprintf(err, errlen, "%s: damaged batch at byte %zu of %zu, a valid batch follows at "
                 "byte %zu (libraft would silently drop every entry from there on)",
                 name, at, len, valid);
        return VIGIL_ECORRUPT;
    }
    out->torn = true;
    return 0;
}

/* --- a directory ----------------------------------------------------------------------- */

/* Reads DIR/NAME whole into *DATA (owned by the caller, free()) and *LEN. */
static int raft_log_check__read(const char *dir, const char *name, unsigned char **data,
                                size_t *len, char *err, size_t errlen)
{
    char path[1024];
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read raft segment %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return VIGIL_EIO;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        close(fd);
        snprintf(err, errlen, "out of memory reading %s", path);
        return VIGIL_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) {
            snprintf(err, errlen, "cannot read raft segment %s: %s", path,
                     r == 0 ? "file shrank while read" : strerror(errno));
            close(fd);
            free(buf);
            return VIGIL_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
}

/* A segment found in the directory. */
struct raft_log_check__file {
    char name[64];
    bool open;
    unsigned long long counter; /* open segments' load order */
};

/* Segment names of DIR into *FILES (owned by the caller), closed ones first, open ones in
 * counter order (how libraft loads them). */
static int raft_log_check__list(const char *dir, struct raft_log_check__file **files, size_t *n,
                                char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0;

    *files = NULL;
    *n = 0;
    if (d == NULL)
        return 0; /* no raft state yet */
    while ((e = readdir(d)) != NULL) {
        struct raft_log_check__file f;
        int used = 0;
        memset(&f, 0, sizeof f);
        if (strlen(e->d_name) >= sizeof f.name)
            continue;
        if (sscanf(e->d_name, "open-%llu%n", &f.counter, &used) == 1 && e->d_name[used] == '\0')
            f.open = true;
        else if (raft_log_check__closed_count(e->d_name) == 0)
            continue;
        snprintf(f.name, sizeof f.name, "%s", e->d_name);
        if (*n == cap) {
            struct raft_log_check__file *more;
            cap = cap ? 2 * cap : 16;
            more = realloc(*files, cap * sizeof *more);
            if (more == NULL) {
                closedir(d);
                snprintf(err, errlen, "out of memory listing %s", dir);
                return VIGIL_ENOMEM;
            }
            *files = more;
        }
        (*files)[(*n)++] = f;
    }
    closedir(d);
    return 0;
}

static int raft_log_check__order(const void *a, const void *b)
{
    const struct raft_log_check__file *x = a, *y = b;
    if (x->open != y->open)
        return x->open ? 1 : -1;
    if (x->open)
        return x->counter < y->counter ? -1 : x->counter > y->counter;
    return strcmp(x->name, y->name);
}

int raft_log_check_dir(const char *dir, char *err, size_t errlen)
{
    struct raft_log_check__file *files;
    const char *torn_name = NULL;
    size_t n, torn_at = 0;
    char why[512];
    int rv = raft_log_check__list(dir, &files, &n, err, errlen);

    if (rv != 0)
        return rv;
    if (n > 0) /* qsort(NULL, 0, ...) is undefined (UBSan) */
        qsort(files, n, sizeof *files, raft_log_check__order);
    for (size_t i = 0; i < n && rv == 0; i++) {
        struct raft_log_check_result res;
        unsigned char *data;
        size_t len;
        rv = raft_log_check__read(dir, files[i].name, &data, &len, err, errlen);
        if (rv != 0)
            break;
        rv = raft_log_check_segment(files[i].name, data, len, files[i].open, &res, why,
                                    sizeof why);
        free(data);
        if (rv != 0) {
            snprintf(err, errlen, "damaged raft log: %s/%s", dir, why);
        } else if (torn_name != NULL && res.entries > 0) {
            snprintf(err, errlen, "damaged raft log: %s/%s: damaged batch at byte %zu, and %s "
                     "after it holds entries (libraft would silently drop them)",
                     dir, torn_name, torn_at, files[i].name);
            rv = VIGIL_ECORRUPT;
        } else if (res.torn) {
            torn_name = files[i].name;
            torn_at = res.valid_end;
        }
    }
    free(files);
    return rv;
}
