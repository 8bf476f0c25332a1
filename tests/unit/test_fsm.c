/* test_fsm.c: the raft state machine over the store (controller/fsm.c): payload encoding,
 * apply / snapshot / restore on their own, and three replicas on raft's in-memory fixture
 * (deterministic simulated time) through failover and snapshot installs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "common/errors.h"
#include "common/objects.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/consensus/fsm.h"
#include "controller/store/store.h"

#define N_SERVERS 3
#define STEP_MS 20000 /* simulated time allowed for one wait */

/* ---------------------------------------------------------------------------------- */
/* Helpers                                                                             */

/* Everything the store answers through its public queries. */
static json_t *dump(struct store *s)
{
    static const char *const meta[] = {"cluster_uuid", "cluster_name", "leader"};
    json_t *d = json_object(), *m = json_object();
    int64_t total;

    for (int t = 0; t < OBJ__COUNT; t++)
        json_object_set_new(d, obj_type_name((enum obj_type)t),
                            store_object_list(s, (enum obj_type)t, 0, 1000000, &total));
    json_object_set_new(d, "nodes", store_nodes(s));
    json_object_set_new(d, "events", store_events_list(s, NULL, 0, 0, 1000000, &total));
    json_object_set_new(d, "se_connected", store_se_connected(s));
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        char *v = store_meta_get(s, meta[i]);
        json_object_set_new(m, meta[i], v != NULL ? json_string(v) : json_null());
        free(v);
    }
    json_object_set_new(d, "meta", m);
    return d;
}

static void assert_same_store(struct store *a, struct store *b, const char *what)
{
    json_t *da = dump(a), *db = dump(b);
    if (!json_equal(da, db)) {
        char *ta = json_dumps(da, JSON_COMPACT | JSON_SORT_KEYS);
        char *tb = json_dumps(db, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s: stores differ\n  %s\n  %s", what, ta, tb);
    }
    json_decref(da);
    json_decref(db);
}

/* Command K of a deterministic sequence: creates, updates, deletes, events, node records
 * and SE runtime records, with texts of many lengths (so payloads of many odd sizes). */
static json_t *make_command(unsigned k)
{
    char uuid[37], other[37], name[96], pad[64];
    unsigned n = k % 41;

    memset(pad, 'a' + (int)(k % 26), n);
    pad[n] = '\0';
    snprintf(uuid, sizeof uuid, "20000000-0000-4000-8000-%012u", k);
    switch (k % 7) {
    case 0:
        snprintf(name, sizeof name, "hm-%u-%s", k, pad);
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "op", "object_create", "type",
                         "healthmonitor", "uuid", uuid, "object", "name", name, "type",
                         "HEALTH_MONITOR_TCP");
    case 1:
        /* a pool that refers to the monitor of command k - 1 */
        snprintf(other, sizeof other, "20000000-0000-4000-8000-%012u", k - 1);
        snprintf(name, sizeof name, "pool-%u%s", k, pad);
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:[{s:s, s:i}], s:[s]}}", "op",
                         "object_create", "type", "pool", "uuid", uuid, "object", "name", name,
                         "description", pad, "servers", "ip", "127.0.0.1", "port",
                         (int)(9000 + k), "health_monitor_refs", other);
    case 2:
        snprintf(name, sizeof name, "event %u %s", k, pad);
        return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:{s:s, s:i}}", "op",
                         "event_record", "key", name, "event_id", k % 2 ? "SE_UP" : "SE_DOWN",
                         "time", (json_int_t)(1795845600000LL + k), "module", "SEMGR",
                         "obj_type", "SE", "obj_name", pad, "description", name, "details",
                         "pad", pad, "k", (int)k);
    case 3:
        /* rename the pool of command k - 2 (an odd name length every time) */
        snprintf(other, sizeof other, "20000000-0000-4000-8000-%012u", k - 2);
        snprintf(name, sizeof name, "renamed-%u-%s", k, pad);
        return json_pack("{s:s, s:s, s:s, s:{s:s}}", "op", "object_update", "type", "pool",
                         "uuid", other, "object", "name", name);
    case 4:
        snprintf(name, sizeof name, "node-%u%s", k, pad);
        return json_pack("{s:s, s:{s:i, s:s, s:s, s:s, s:s, s:s}}", "op", "node_register",
                         "node", "id", (int)(k % 5) + 1, "name", name, "raft_address",
                         "127.0.0.1:7000", "api_address", "127.0.0.1:8080", "se_address",
                         "127.0.0.1:5098", "se_host_key", pad);
    case 5:
        /* every other time delete the pool of command k - 4, else the monitor of command
         * k - 5 (refused while that pool still holds it) */
        snprintf(other, sizeof other, "20000000-0000-4000-8000-%012u", k % 2 ? k - 4 : k - 5);
        return json_pack("{s:s, s:s, s:s}", "op", "object_delete", "type",
                         k % 2 ? "pool" : "healthmonitor", "uuid", other);
    default:
        if (k % 2)
            return json_pack("{s:s, s:I, s:s, s:I, s:s}", "op", "node_joined", "id",
                             (json_int_t)(k % 3) + 1, "boot", pad, "time",
                             (json_int_t)(1795845600000LL + k), "role", "CLUSTER_FOLLOWER");
        return json_pack("{s:s, s:s, s:b, s:i, s:I, s:s}", "op", "se_runtime", "uuid", uuid,
                         "connected", 1, "controller_node", 1, "time",
                         (json_int_t)(1795845600000LL + k), "se_state", pad);
    }
}

/* ---------------------------------------------------------------------------------- */
/* Encoding                                                                            */

static void test_encode(void **state)
{
    (void)state;
    for (unsigned n = 0; n < 40; n++) {
        char text[64];
        json_t *cmd;
        struct raft_buffer buf = {NULL, 0};
        const unsigned char *p;
        char *expect;
        size_t len;

        memset(text, 'x', n);
        text[n] = '\0';
        cmd = json_pack("{s:s}", "s", text); /* {"s":"xx..."}: 8 + n bytes of JSON */
        assert_int_equal(fsm_encode(cmd, &buf), 0);
        expect = json_dumps(cmd, JSON_COMPACT);
        len = strlen(expect);
        p = buf.base;
        assert_non_null(p);
        assert_int_equal(buf.len % 8, 0);
        assert_true(buf.len >= FSM_HEADER_SIZE + len);
        assert_true(buf.len < FSM_HEADER_SIZE + len + 8);
        assert_memory_equal(p, "VGC1", 4);
        assert_int_equal((size_t)p[4] | (size_t)p[5] << 8 | (size_t)p[6] << 16 | (size_t)p[7] << 24,
                         len);
        assert_memory_equal(p + FSM_HEADER_SIZE, expect, len);
        for (size_t i = FSM_HEADER_SIZE + len; i < buf.len; i++)
            assert_int_equal(p[i], 0);
        free(expect);
        json_decref(cmd);
        raft_free(buf.base);
    }
}

/* A payload longer than 255 bytes: the length spans several header bytes. */
static void test_encode_long(void **state)
{
    char *big = malloc(70001), *expect;
    json_t *cmd;
    struct raft_buffer buf;
    const unsigned char *p;
    size_t len;
    (void)state;

    memset(big, 'y', 70000);
    big[70000] = '\0';
    cmd = json_pack("{s:s}", "big", big);
    assert_int_equal(fsm_encode(cmd, &buf), 0);
    expect = json_dumps(cmd, JSON_COMPACT);
    len = strlen(expect);
    p = buf.base;
    assert_int_equal(buf.len % 8, 0);
    assert_int_equal((size_t)p[4] | (size_t)p[5] << 8 | (size_t)p[6] << 16 | (size_t)p[7] << 24,
                     len);
    assert_memory_equal(p + FSM_HEADER_SIZE, expect, len);
    raft_free(buf.base);
    free(expect);
    free(big);
    json_decref(cmd);
}

/* ---------------------------------------------------------------------------------- */
/* The FSM callbacks on their own                                                      */

struct one {
    struct store *store;
    struct fsm_state state;
    struct raft_fsm fsm;
};

static struct one *one_open(void)
{
    struct one *o = calloc(1, sizeof *o);
    assert_non_null(o);
    assert_int_equal(store_open(&o->store), 0);
    fsm_init(&o->fsm, &o->state, o->store);
    assert_int_equal(o->fsm.version, 3);
    assert_non_null(o->fsm.snapshot_async);
    assert_ptr_equal(o->fsm.data, &o->state);
    assert_ptr_equal(o->state.store, o->store);
    return o;
}

static void one_close(struct one *o)
{
    fsm_close(&o->state);
    store_close(o->store);
    free(o);
}

/* Applies BUF through the FSM; returns the result's outcome. */
static enum store_outcome one_apply_buf(struct one *o, const struct raft_buffer *buf)
{
    void *result = NULL;
    assert_int_equal(o->fsm.apply(&o->fsm, buf, &result), 0);
    assert_ptr_equal(result, &o->state.last);
    assert_int_equal(o->state.last.n, 1);
    assert_ptr_equal(o->state.last.results, o->state.results);
    return o->state.results[0].outcome;
}

static enum store_outcome one_apply(struct one *o, json_t *cmd)
{
    struct raft_buffer buf;
    enum store_outcome outcome;
    assert_int_equal(fsm_encode(cmd, &buf), 0);
    outcome = one_apply_buf(o, &buf);
    raft_free(buf.base);
    return outcome;
}

static void test_apply_direct(void **state)
{
    struct one *o = one_open();
    json_t *cmd, *before;
    struct raft_buffer buf;
    unsigned char raw[64];
    (void)state;

    cmd = make_command(0);
    assert_int_equal(one_apply(o, cmd), STORE_CREATED);
    assert_non_null(o->state.results[0].body);
    assert_int_equal(one_apply(o, cmd), STORE_CONFLICT); /* the same again: the uuid exists */
    assert_null(o->state.results[0].body);
    json_decref(cmd);

    before = dump(o->store);
    /* No header. */
    memset(raw, 0, sizeof raw);
    memcpy(raw, "{\"op\":1}", 8);
    buf.base = raw;
    buf.len = 16;
    assert_int_equal(one_apply_buf(o, &buf), STORE_INVALID);
    assert_non_null(strstr(o->state.results[0].error, "malformed"));
    /* Shorter than a header. */
    buf.len = 4;
    memcpy(raw, "VGC1", 4);
    assert_int_equal(one_apply_buf(o, &buf), STORE_INVALID);
    /* A header announcing more than the entry holds. */
    memcpy(raw, "VGC1\x30\0\0\0{}", 10);
    buf.len = 16;
    assert_int_equal(one_apply_buf(o, &buf), STORE_INVALID);
    assert_non_null(strstr(o->state.results[0].error, "truncated"));
    memcpy(raw, "VGC1\xff\xff\xff\xff", 8);
    assert_int_equal(one_apply_buf(o, &buf), STORE_INVALID);
    /* A well-framed entry that is no command. */
    cmd = json_pack("{s:s}", "op", "no_such_op");
    assert_int_equal(one_apply(o, cmd), STORE_INVALID);
    assert_non_null(strstr(o->state.results[0].error, "unknown"));
    json_decref(cmd);
    /* The length in the header is what counts: padding after it is ignored, and bytes
     * beyond it are not part of the command. */
    {
        const char *text = "{\"op\":\"cluster_init\",\"uuid\":\"u\",\"name\":\"n\"}GARBAGE";
        size_t len = strlen(text) - 7;
        unsigned char entry[128] = "VGC1";
        entry[4] = (unsigned char)len;
        memcpy(entry + 8, text, strlen(text));
        buf.base = entry;
        buf.len = (8 + strlen(text) + 7) & ~(size_t)7;
        json_t *now = dump(o->store);
        /* None of the refused entries above changed anything. */
        if (!json_equal(now, before))
            fail_msg("a refused entry changed the store");
        json_decref(now);
        assert_int_equal(one_apply_buf(o, &buf), STORE_OK);
        now = dump(o->store);
        assert_string_equal(json_string_value(json_object_get(json_object_get(now, "meta"),
                                                              "cluster_name")),
                            "n");
        json_decref(now);
    }
    json_decref(before);
    one_close(o);
}

/* A heap that remembers what was freed, to check buffer ownership. */
#define TRACK_MAX 64
static void *track_freed[TRACK_MAX];
static unsigned track_n;
static void *track_malloc(void *d, size_t n) { (void)d; return malloc(n); }
static void *track_calloc(void *d, size_t m, size_t n) { (void)d; return calloc(m, n); }
static void *track_realloc(void *d, void *p, size_t n) { (void)d; return realloc(p, n); }
static void *track_aligned_alloc(void *d, size_t a, size_t n) { (void)d; return aligned_alloc(a, n); }
static void track_aligned_free(void *d, size_t a, void *p) { (void)d; (void)a; free(p); }
static void track_free(void *d, void *p)
{
    (void)d;
    if (p != NULL && track_n < TRACK_MAX)
        track_freed[track_n++] = p;
    free(p);
}
static int track_was_freed(void *p)
{
    for (unsigned i = 0; i < track_n; i++)
        if (track_freed[i] == p)
            return 1;
    return 0;
}

/* A batch entry: every command gets its own outcome, in order; a refused or unknown one
 * changes nothing while the others stand; the result equals applying them one by one. */
static void test_apply_batch(void **state)
{
    struct one *o = one_open(), *ref = one_open();
    json_t *cmds[6], *dup, *want, *got;
    char *texts[6];
    const char *ctexts[6];
    size_t lens[6];
    enum store_outcome expect[6] = {STORE_CREATED, STORE_CREATED, STORE_CONFLICT,
                                   STORE_INVALID, STORE_CREATED, STORE_NOT_FOUND};
    struct raft_buffer buf;
    void *result = NULL;
    struct fsm_result *out;
    (void)state;

    cmds[0] = make_command(0);               /* a monitor */
    cmds[1] = make_command(1);               /* a pool referring to it */
    dup = json_deep_copy(cmds[0]);            /* the monitor's uuid again: a conflict */
    cmds[2] = dup;
    cmds[3] = json_pack("{s:s}", "op", "no_such_op");
    cmds[4] = make_command(7);
    cmds[5] = json_pack("{s:s, s:s, s:s}", "op", "object_delete", "type", "pool", "uuid",
                        "20000000-0000-4000-8000-999999999999");
    for (int i = 0; i < 6; i++) {
        texts[i] = json_dumps(cmds[i], JSON_COMPACT);
        ctexts[i] = texts[i];
        lens[i] = strlen(texts[i]);
    }
    assert_int_equal(fsm_encode_batch_at(ctexts, lens, 0, 0, &buf), VIGIL_EINVAL);
    assert_int_equal(fsm_encode_batch_at(ctexts, lens, FSM_BATCH_MAX + 1, 0, &buf), VIGIL_EINVAL);
    assert_int_equal(fsm_encode_batch_at(ctexts, lens, 6, 0, &buf), 0);
    assert_int_equal(buf.len % 8, 0);
    assert_int_equal(o->fsm.apply(&o->fsm, &buf, &result), 0);
    raft_free(buf.base);
    out = result;
    assert_ptr_equal(out, &o->state.last);
    assert_int_equal(out->n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(out->results[i].outcome, expect[i]);
        assert_int_equal(out->results[i].body != NULL, expect[i] == STORE_CREATED);
    }
    assert_non_null(strstr(out->results[3].error, "unknown"));
    /* the same commands one by one give the same database */
    for (int i = 0; i < 6; i++)
        assert_int_equal(one_apply(ref, cmds[i]), expect[i]);
    want = dump(ref->store);
    got = dump(o->store);
    assert_true(json_equal(want, got));
    json_decref(want);
    json_decref(got);

    /* one command is encoded as itself, not as a batch of one */
    assert_int_equal(fsm_encode_batch_at(ctexts, lens, 1, 0, &buf), 0);
    assert_memory_equal((const char *)buf.base + FSM_HEADER_SIZE, texts[0], lens[0]);
    raft_free(buf.base);

    /* a batch entry with more commands than FSM_BATCH_MAX (no leader makes one) is
     * refused whole, the same way on every node */
    {
        json_t *big = json_pack("{s:s, s:[]}", "op", "batch", "cmds");
        json_t *before = dump(o->store), *after;
        for (int i = 0; i <= FSM_BATCH_MAX; i++)
            json_array_append_new(json_object_get(big, "cmds"), make_command(100 + 7 * (unsigned)i));
        assert_int_equal(one_apply(o, big), STORE_INVALID);
        after = dump(o->store);
        assert_true(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        json_decref(big);
    }
    for (int i = 0; i < 6; i++) {
        free(texts[i]);
        json_decref(cmds[i]);
    }
    one_close(o);
    one_close(ref);
}

static void test_snapshot_restore_direct(void **state)
{
    struct one *a = one_open(), *b = one_open();
    struct raft_buffer *bufs = NULL, copy;
    json_t *at_snapshot;
    unsigned n = 0;
    (void)state;

    for (unsigned k = 0; k < 50; k++) {
        json_t *cmd = make_command(k);
        one_apply(a, cmd);
        json_decref(cmd);
    }
    {
        json_t *cmd = make_command(0);
        assert_int_equal(one_apply(b, cmd), STORE_CREATED); /* b has something of its own */
        json_decref(cmd);
    }
    assert_int_equal(a->fsm.snapshot(&a->fsm, &bufs, &n), 0);
    assert_int_equal(n, 2); /* our header (length, hash), then the database */
    assert_non_null(bufs);
    {
        /* Version 3: the hash is filled in by snapshot_async (off the loop); a header
         * without it is refused. */
        struct raft_buffer early = {raft_malloc(bufs[0].len + bufs[1].len),
                                    bufs[0].len + bufs[1].len};
        memcpy(early.base, bufs[0].base, bufs[0].len);
        memcpy((char *)early.base + bufs[0].len, bufs[1].base, bufs[1].len);
        assert_int_not_equal(b->fsm.restore(&b->fsm, &early), 0);
        raft_free(early.base); /* on failure raft frees it */
    }
    /* Writes after the snapshot was taken (the loop goes on while the worker hashes) do
     * not change its copy. */
    at_snapshot = dump(a->store);
    {
        json_t *cmd = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:i, s:i, s:i, s:i}}", "op",
                                "object_create", "type", "healthmonitor", "uuid",
                                "6d1f0c1e-8a6f-4b59-9d0e-4b7f2c0a9e11", "object", "name",
                                "after-snapshot", "type", "HEALTH_MONITOR_TCP", "send_interval",
                                5, "receive_timeout", 4, "successful_checks", 2,
                                "failed_checks", 2);
        assert_int_equal(one_apply(a, cmd), STORE_CREATED);
        json_decref(cmd);
    }
    assert_int_equal(a->fsm.snapshot_async(&a->fsm, &bufs, &n), 0);
    /* raft hands restore the buffers joined, in a buffer of its own that restore owns. */
    copy.len = bufs[0].len + bufs[1].len;
    copy.base = raft_malloc(copy.len);
    memcpy(copy.base, bufs[0].base, bufs[0].len);
    memcpy((char *)copy.base + bufs[0].len, bufs[1].base, bufs[1].len);
    {
        /* One flipped byte anywhere in the database is refused (the hash). */
        struct raft_buffer bad = {raft_malloc(copy.len), copy.len};
        memcpy(bad.base, copy.base, copy.len);
        ((unsigned char *)bad.base)[copy.len / 2] ^= 0x40;
        assert_int_not_equal(b->fsm.restore(&b->fsm, &bad), 0);
        raft_free(bad.base); /* on failure raft frees it */
    }
    assert_int_equal(a->fsm.snapshot_finalize(&a->fsm, &bufs, &n), 0);
    assert_null(bufs);
    assert_int_equal(n, 0);
    {
        /* On success the buffer is the FSM's: freed by restore (valgrind would see a leak
         * otherwise). */
        struct raft_heap heap = {.malloc = track_malloc, .free = track_free,
                                 .calloc = track_calloc, .realloc = track_realloc,
                                 .aligned_alloc = track_aligned_alloc,
                                 .aligned_free = track_aligned_free};
        int rv;
        track_n = 0;
        raft_heap_set(&heap);
        rv = b->fsm.restore(&b->fsm, &copy);
        raft_heap_set_default();
        assert_int_equal(rv, 0);
        assert_true(track_was_freed(copy.base));
    }
    {
        json_t *restored = dump(b->store);
        assert_true(json_equal(restored, at_snapshot));
        json_decref(restored);
        json_decref(at_snapshot);
    }
    one_close(a);
    one_close(b);
}

/* A damaged snapshot: restore fails with RAFT_CORRUPT, the store stays as it was, and the
 * buffer stays raft's: libraft 0.15 frees it itself when restore fails (raft_start:
 * snapshotDestroy; installSnapshotCb: "In case of error we must also free the snapshot
 * data buffer"), so an FSM that frees it too causes a double free. */
static void test_restore_damaged_direct(void **state)
{
    struct one *o = one_open();
    struct raft_heap heap = {.data = NULL,
                             .malloc = track_malloc,
                             .free = track_free,
                             .calloc = track_calloc,
                             .realloc = track_realloc,
                             .aligned_alloc = track_aligned_alloc,
                             .aligned_free = track_aligned_free};
    struct raft_buffer buf;
    json_t *before, *cmd = make_command(0);
    int rv, freed;
    (void)state;

    assert_int_equal(one_apply(o, cmd), STORE_CREATED);
    json_decref(cmd);
    before = dump(o->store);

    track_n = 0;
    raft_heap_set(&heap);
    buf.len = 4096;
    buf.base = raft_calloc(1, buf.len);
    memcpy(buf.base, "SQLite format 3", 16);
    rv = o->fsm.restore(&o->fsm, &buf);
    freed = track_was_freed(buf.base);
    raft_heap_set_default();
    assert_int_equal(rv, RAFT_CORRUPT);
    {
        json_t *now = dump(o->store);
        assert_true(json_equal(now, before));
        json_decref(now);
    }
    json_decref(before);
    if (!freed)
        raft_free(buf.base); /* what raft does after a failed restore */
    assert_false(freed);
    one_close(o);
}

/* ---------------------------------------------------------------------------------- */
/* Three replicas on raft's fixture                                                    */

struct server {
    struct store *store;
    struct fsm_state state;
    struct raft_fsm fsm;
    unsigned restores, snapshots;
};

struct cluster {
    struct raft_fixture f;
    struct server servers[N_SERVERS];
    struct store *oracle; /* every committed command applied directly, in order */
    raft_index last_index;
    unsigned proposed, applied, mismatched, failed;
};

struct pending {
    struct raft_apply req; /* first: the callback gets it back */
    struct cluster *c;
    enum store_outcome expect;
};

static int (*fsm_restore_orig)(struct raft_fsm *, struct raft_buffer *);
static int (*fsm_snapshot_orig)(struct raft_fsm *, struct raft_buffer *[], unsigned *);

static struct server *server_of(struct raft_fsm *fsm)
{
    return (struct server *)((char *)fsm - offsetof(struct server, fsm));
}

static int counting_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    server_of(fsm)->restores++;
    return fsm_restore_orig(fsm, buf);
}

static int counting_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    server_of(fsm)->snapshots++;
    return fsm_snapshot_orig(fsm, bufs, n);
}

static struct cluster *cluster_open(unsigned snapshot_threshold, unsigned snapshot_trailing)
{
    struct cluster *c = calloc(1, sizeof *c);
    struct raft_configuration conf;

    assert_non_null(c);
    assert_int_equal(store_open(&c->oracle), 0);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct server *s = &c->servers[i];
        assert_int_equal(store_open(&s->store), 0);
        fsm_init(&s->fsm, &s->state, s->store);
        /* The 0.15 fixture has async_work but leaves the io version 0, and raft_init
         * refuses a version 3 FSM (snapshot_async) unless it is 2 (as cluster.c does for
         * the uv backend); ioInit does not touch it, so set it before growing. */
        c->f.servers[i].io.version = 2;
        fsm_restore_orig = s->fsm.restore;
        fsm_snapshot_orig = s->fsm.snapshot;
        s->fsm.restore = counting_restore;
        s->fsm.snapshot = counting_snapshot;
        assert_int_equal(raft_fixture_grow(&c->f, &s->fsm), 0);
    }
    assert_int_equal(raft_fixture_configuration(&c->f, N_SERVERS, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        if (snapshot_threshold > 0) {
            raft_set_snapshot_threshold(r, snapshot_threshold);
            raft_set_snapshot_trailing(r, snapshot_trailing);
        }
    }
    assert_int_equal(raft_fixture_start(&c->f), 0);
    assert_true(raft_fixture_step_until_has_leader(&c->f, STEP_MS));
    return c;
}

static void cluster_close(struct cluster *c)
{
    raft_fixture_close(&c->f); /* runs the callbacks of pending applies */
    for (unsigned i = 0; i < N_SERVERS; i++) {
        fsm_close(&c->servers[i].state);
        store_close(c->servers[i].store);
    }
    store_close(c->oracle);
    free(c);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct pending *p = (struct pending *)req;
    if (status == 0) {
        p->c->applied++;
        const struct fsm_result *out = result;
        if (out->n != 1 || out->results[0].outcome != p->expect)
            p->c->mismatched++;
    } else {
        p->c->failed++;
    }
    free(p);
}

static unsigned leader_index(struct cluster *c)
{
    unsigned i = raft_fixture_leader_index(&c->f);
    assert_true(i < N_SERVERS);
    return i;
}

/* Proposes command K on the leader and applies it to the oracle. */
static void propose(struct cluster *c, unsigned k)
{
    json_t *cmd = make_command(k);
    struct pending *p = calloc(1, sizeof *p);
    struct raft_buffer buf;
    struct store_result res;
    char *text = json_dumps(cmd, JSON_COMPACT);
    int rv;

    assert_non_null(p);
    assert_int_equal(store_apply(c->oracle, text, strlen(text), &res), 0);
    p->c = c;
    p->expect = res.outcome;
    store_result_clear(&res);
    free(text);
    assert_int_equal(fsm_encode(cmd, &buf), 0);
    json_decref(cmd);
    rv = raft_apply(raft_fixture_get(&c->f, leader_index(c)), &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        fail_msg("raft_apply: %s", raft_strerror(rv));
    }
    c->last_index = p->req.index;
    c->proposed++;
}

/* Steps until every live server applied everything proposed. */
static void wait_applied(struct cluster *c)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (!raft_fixture_alive(&c->f, i))
            continue;
        if (!raft_fixture_step_until_applied(&c->f, i, c->last_index, STEP_MS))
            fail_msg("server %u applied %llu of %llu", i,
                     (unsigned long long)raft_last_applied(raft_fixture_get(&c->f, i)),
                     (unsigned long long)c->last_index);
    }
}

/* Every live server's store equals the oracle's. */
static void assert_converged(struct cluster *c, const char *what)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        char label[96];
        if (!raft_fixture_alive(&c->f, i))
            continue;
        snprintf(label, sizeof label, "%s, server %u", what, i);
        assert_same_store(c->servers[i].store, c->oracle, label);
    }
    assert_int_equal(c->mismatched, 0);
}

/* Kills the leader and steps until another one is elected; returns the old index. */
static unsigned fail_over(struct cluster *c)
{
    unsigned old = leader_index(c);
    raft_fixture_kill(&c->f, old);
    assert_true(raft_fixture_step_until_has_no_leader(&c->f, STEP_MS));
    assert_true(raft_fixture_step_until_has_leader(&c->f, STEP_MS));
    assert_int_not_equal(leader_index(c), old);
    return old;
}

static void test_replicas_identical(void **state)
{
    struct cluster *c = cluster_open(0, 0);
    unsigned k = 0;
    (void)state;

    /* Batches proposed without stepping in between. */
    for (unsigned batch = 0; batch < 8; batch++) {
        for (unsigned j = 0; j < 1 + batch * 3; j++)
            propose(c, k++);
        wait_applied(c);
    }
    assert_converged(c, "after batches");
    assert_int_equal(c->applied, c->proposed);
    assert_int_equal(c->failed, 0);
    /* The workload did exercise refusals as well as successes. */
    {
        int64_t total;
        json_t *l = store_object_list(c->oracle, OBJ_POOL, 0, 1000, &total);
        assert_true(total > 5);
        json_decref(l);
        l = store_events_list(c->oracle, NULL, 0, 0, 1000, &total);
        assert_true(total > 5);
        json_decref(l);
    }
    cluster_close(c);
}

/* A follower that was down catches up from the log (no snapshots yet) with several odd
 * sized entries per AppendEntries. */
static void test_follower_catch_up_log(void **state)
{
    struct cluster *c = cluster_open(0, 0);
    unsigned k = 0, follower;
    (void)state;

    for (; k < 10; k++)
        propose(c, k);
    wait_applied(c);
    follower = (leader_index(c) + 1) % N_SERVERS;
    raft_fixture_kill(&c->f, follower);
    for (; k < 60; k++)
        propose(c, k);
    wait_applied(c);
    raft_fixture_revive(&c->f, follower);
    for (; k < 63; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "after catch-up");
    assert_int_equal(c->servers[follower].restores, 0);
    cluster_close(c);
}

static void test_leader_failover(void **state)
{
    struct cluster *c = cluster_open(0, 0);
    unsigned k = 0, old;
    (void)state;

    for (; k < 25; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "before failover");

    old = fail_over(c);
    for (; k < 60; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "two survivors");

    raft_fixture_revive(&c->f, old);
    for (; k < 65; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "old leader back");
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->applied, c->proposed);
    cluster_close(c);
}

/* Waits until the live leader has taken a snapshot since it had taken BEFORE and that
 * snapshot is written and the log compacted. Snapshots are asynchronous (FSM version 3:
 * hashed in the fixture's async work, 200 ms of simulated time, then written), so the log
 * is compacted later than the entries that triggered it were applied. Short in simulated
 * time: a server that is down longer than an election timeout starts an election when
 * revived, and the fixture has no pre-vote. */
static void wait_snapshot_written(struct cluster *c, unsigned before)
{
    unsigned leader = leader_index(c);
    assert_true(c->servers[leader].snapshots > before);
    raft_fixture_step_until_elapsed(&c->f, 250);
}

/* Small snapshot threshold: a server that missed entries already compacted away gets the
 * leader's snapshot (InstallSnapshot, restore) and ends identical. */
static void test_snapshot_install(void **state)
{
    struct cluster *c = cluster_open(8, 2);
    unsigned k = 0, follower, old, snaps;
    (void)state;

    for (; k < 12; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "start");

    /* Let every server finish its own (asynchronous) snapshot first: the fixture freezes a
     * killed server's pending work, and a revived server busy with its own snapshot turns
     * InstallSnapshot away until it is done (the fixture has no pre-vote, so its election
     * timer then disrupts the leader). */
    raft_fixture_step_until_elapsed(&c->f, 1000);

    /* A follower misses many entries, compacted away meanwhile. */
    follower = (leader_index(c) + 2) % N_SERVERS;
    raft_fixture_kill(&c->f, follower);
    snaps = c->servers[leader_index(c)].snapshots;
    for (; k < 60; k++)
        propose(c, k);
    wait_applied(c);
    wait_snapshot_written(c, snaps);
    raft_fixture_revive(&c->f, follower);
    propose(c, k++);
    wait_applied(c);
    assert_true(c->servers[follower].restores >= 1);
    assert_converged(c, "follower restored");

    /* The leader dies, misses the survivors' work, and comes back by snapshot too. */
    raft_fixture_step_until_elapsed(&c->f, 1000);
    old = fail_over(c);
    snaps = c->servers[leader_index(c)].snapshots;
    for (; k < 110; k++)
        propose(c, k);
    wait_applied(c);
    wait_snapshot_written(c, snaps);
    assert_converged(c, "survivors");
    {
        unsigned before = c->servers[old].restores;
        raft_fixture_revive(&c->f, old);
        propose(c, k++);
        wait_applied(c);
        assert_true(c->servers[old].restores > before);
    }
    assert_converged(c, "old leader restored");

    /* And things keep working on every replica afterwards. */
    for (; k < 130; k++)
        propose(c, k);
    wait_applied(c);
    assert_converged(c, "end");
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->applied, c->proposed);
    cluster_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_long),
        cmocka_unit_test(test_apply_direct),
        cmocka_unit_test(test_apply_batch),
        cmocka_unit_test(test_snapshot_restore_direct),
        cmocka_unit_test(test_restore_damaged_direct),
        cmocka_unit_test(test_replicas_identical),
        cmocka_unit_test(test_follower_catch_up_log),
        cmocka_unit_test(test_leader_failover),
        cmocka_unit_test(test_snapshot_install),
    };
    vlog_init("test_fsm", (enum vlog_level)(VLOG_ERROR + 1)); /* refusals are expected */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
