/* rebuild.c: vigild --rebuild; see rebuild.h. */
#include "controller/rebuild.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "common/errors.h"

/* libraft 0.15's uv metadata file: format 1, version, term, voted_for, each 64-bit
 * little-endian (uv_metadata.c); the higher version of metadata1/metadata2 wins. */
#define REBUILD__METADATA_FORMAT 1

struct rebuild__probe {
    unsigned pending;
    struct rebuild_leader *found;
    char heard[700];
};

struct rebuild__ask {
    struct rebuild__probe *probe;
    uint64_t id;
};

static void rebuild__heard(struct rebuild__probe *pr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rebuild__heard(struct rebuild__probe *pr, const char *fmt, ...)
{
    size_t used = strlen(pr->heard);
    va_list ap;
    if (used + 3 >= sizeof pr->heard)
        return;
    if (used > 0) {
        strcpy(pr->heard + used, "; ");
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(pr->heard + used, sizeof pr->heard - used, fmt, ap);
    va_end(ap);
}

static void rebuild__on_answer(void *data, int err, long status, const char *body, size_t len,
                               const char *headers)
{
    struct rebuild__ask *ask = data;
    struct rebuild__probe *pr = ask->probe;
    json_t *doc = err == 0 && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    (void)headers;

    pr->pending--;
    if (doc == NULL) {
        rebuild__heard(pr, "node %llu: %s", (unsigned long long)ask->id,
                       err != 0 ? vigil_strerror(err) : status != 200 ? "refused" : "bad answer");
    } else {
        json_int_t node = json_integer_value(json_object_get(doc, "node_id"));
        json_int_t leader = json_integer_value(json_object_get(doc, "leader_id"));
        json_int_t term = json_integer_value(json_object_get(doc, "term"));
        const char *st = json_string_value(
            json_object_get(json_object_get(doc, "cluster_state"), "status"));
        rebuild__heard(pr, "node %llu: leader %lld, term %lld, %s", (unsigned long long)ask->id,
                       (long long)leader, (long long)term, st != NULL ? st : "?");
        if (pr->found->id == 0 && node > 0 && (uint64_t)node == ask->id && leader == node &&
            term > 0 && st != NULL && strcmp(st, "Not Responsive") != 0) {
            pr->found->id = (uint64_t)node;
            pr->found->term = (uint64_t)term;
            snprintf(pr->found->status, sizeof pr->found->status, "%s", st);
        }
        json_decref(doc);
    }
    free(ask);
}

int rebuild_find_leader(uv_loop_t *loop, struct http_client *client, const char *data_dir,
                        uint64_t self_id, const char *scheme, const char *node_header,
                        unsigned timeout_ms, struct rebuild_leader *leader, char *err,
                        size_t errlen)
{
    struct rebuild__probe pr;
    const char *headers[2] = {node_header != NULL && node_header[0] ? node_header : NULL, NULL};
    char path[700];
    json_t *nodes, *rec;
    size_t i;

    memset(leader, 0, sizeof *leader);
    memset(&pr, 0, sizeof pr);
    pr.found = leader;
    snprintf(path, sizeof path, "%s/nodes.json", data_dir);
    nodes = json_load_file(path, 0, NULL);
    if (!json_is_array(nodes)) {
        json_decref(nodes);
        snprintf(err, errlen, "--rebuild: %s is missing or unreadable: this node does not "
                 "know where the other nodes are", path);
        return VIGIL_EINVAL;
    }
    json_array_foreach(nodes, i, rec) {
        json_int_t id = json_integer_value(json_object_get(rec, "id"));
        const char *api = json_string_value(json_object_get(rec, "api_address"));
        char url[300];
        struct rebuild__ask *ask;
        if (id <= 0 || (uint64_t)id == self_id || api == NULL || strlen(api) > 200)
            continue;
        ask = malloc(sizeof *ask);
        if (ask == NULL)
            continue;
        ask->probe = &pr;
        ask->id = (uint64_t)id;
        snprintf(url, sizeof url, "%s://%s/api/internal/peer", scheme, api);
        if (http_client_request(client, "GET", url, headers, NULL, 0, timeout_ms,
                                rebuild__on_answer, ask) == 0)
            pr.pending++;
        else
            free(ask);
    }
    json_decref(nodes);
    /* Every request ends within TIMEOUT_MS (the client's own deadline). */
    while (pr.pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    if (leader->id != 0)
        return 0;
    snprintf(err, errlen, "--rebuild refused: no leader with quorum answered (%s); the "
             "damaged state was not touched", pr.heard[0] ? pr.heard : "no other node listed");
    return VIGIL_ENOQUORUM;
}

static void rebuild__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int rebuild__sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    int rv = 0;
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        rv = -errno;
    close(fd);
    return rv;
}

static int rebuild__write_metadata(const char *raft_dir, uint64_t term, uint64_t vote)
{
    unsigned char buf[32];
    char path[700];
    int fd, rv = 0;

    rebuild__put64(buf, REBUILD__METADATA_FORMAT);
    rebuild__put64(buf + 8, 1); /* version 1: metadata1 */
    rebuild__put64(buf + 16, term);
    rebuild__put64(buf + 24, vote);
    snprintf(path, sizeof path, "%s/metadata1", raft_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fsync(fd) != 0)
        rv = errno != 0 ? -errno : -EIO;
    close(fd);
    return rv != 0 ? rv : rebuild__sync_path(raft_dir, O_RDONLY | O_DIRECTORY);
}

int rebuild_set_aside(const char *data_dir, const char *raft_dir,
                      const struct rebuild_leader *leader, char *moved_to, size_t moved_len,
                      char *err, size_t errlen)
{
    char stamp[32], target[800];
    time_t now = time(NULL);
    struct tm tm;
    int rv;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(moved_to, moved_len, "%s/damaged-%s", data_dir, stamp);
    if (mkdir(moved_to, 0700) != 0) {
        rv = -errno;
        snprintf(err, errlen, "--rebuild: cannot create %s: %s", moved_to, strerror(-rv));
        return rv;
    }
    snprintf(target, sizeof target, "%s/raft", moved_to);
    if (rename(raft_dir, target) != 0) {
        rv = -errno;
        snprintf(err, errlen, "--rebuild: cannot move %s to %s: %s", raft_dir, target,
                 strerror(-rv));
        return rv;
    }
    rv = mkdir(raft_dir, 0700) != 0 ? -errno : rebuild__sync_path(data_dir, O_RDONLY | O_DIRECTORY);
    if (rv != 0) {
        snprintf(err, errlen, "--rebuild: cannot create a new %s: %s", raft_dir, strerror(-rv));
        return rv;
    }
    rv = rebuild__write_metadata(raft_dir, leader->term, leader->id);
    if (rv != 0) {
        snprintf(err, errlen, "--rebuild: cannot write %s/metadata1: %s", raft_dir, strerror(-rv));
        return rv;
    }
    return 0;
}
