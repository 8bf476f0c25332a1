/* store_events.c: the store's event log, node presence, leader record and SE runtime
 * records. Dedupe happens here, at apply time, so that an occurrence reported by several
 * nodes (or again by a new leader) is recorded once. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/store-int.h"

/* A uuid derived from KEY, the same on every replica. */
static void store__event_uuid(const char *key, char out[37])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key), NULL, 0);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x40);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

/* Records one event unless its KEY is recorded already. DETAILS is borrowed. */
static int store__event_insert(struct store *store, const char *key, const char *event_id,
                               int64_t time_ms, const char *module, const char *obj_type,
                               const char *obj_name, const char *description, json_t *details)
{
    sqlite3_stmt *st = store__stmt(
        store, "INSERT OR IGNORE INTO events(uuid, key, event_id, time_ms, module, obj_type,"
               " obj_name, description, details) VALUES(?,?,?,?,?,?,?,?,?)");
    char uuid[37];
    char *text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    if (st == NULL || text == NULL) {
        store__release(store, st);
        free(text);
        return VIGIL_EIO;
    }
    store__event_uuid(key, uuid);
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, time_ms);
    sqlite3_bind_text(st, 5, module, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, obj_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, obj_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, description, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    store__release(store, st);
    free(text);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    /* Keep the newest STORE_EVENTS_KEEP. */
    st = store__stmt(store, "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_int64(st, 1, STORE_EVENTS_KEEP);
    rc = sqlite3_step(st);
    store__release(store, st);
    return rc == SQLITE_DONE ? 0 : VIGIL_EIO;
}

/* A node's name and IP from its record ("node-ID" and "" before it registered). */
static void store__node_label(struct store *store, int64_t id, char *name, size_t nlen, char *ip,
                              size_t iplen)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT name, raft_address FROM nodes WHERE id=?");
    snprintf(name, nlen, "node-%lld", (long long)id);
    ip[0] = '\0';
    if (st == NULL)
        return;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *addr = (const char *)sqlite3_column_text(st, 1);
        const char *colon = strrchr(addr, ':');
        snprintf(name, nlen, "%s", sqlite3_column_text(st, 0));
        snprintf(ip, iplen, "%.*s", colon ? (int)(colon - addr) : (int)strlen(addr), addr);
    }
    store__release(store, st);
}

static int store__cmd_event_record(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *key, *event_id, *module, *obj_type, *obj_name, *description;
    json_int_t time_ms;
    json_t *details;

    if (json_unpack(cmd, "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o}", "key", &key, "event_id",
                    &event_id, "time", &time_ms, "module", &module, "obj_type", &obj_type,
                    "obj_name", &obj_name, "description", &description, "details", &details) != 0)
        return VIGIL_EINVAL;
    res->status = 200;
    return store__event_insert(store, key, event_id, time_ms, module, obj_type, obj_name,
                               description, details);
}

/* A leave of an older incarnation, reported after its successor joined (an observer's
 * report that waited for quorum): recorded with its real time, once, unless a leave of
 * that incarnation is recorded already. Presence stays with the successor. */
static int store__stale_left(struct store *store, json_int_t id, const char *boot,
                             json_int_t time_ms, const char *role)
{
    char prefix[160], key[200], name[128], ip[64], desc[300];
    sqlite3_stmt *st;
    int seen = 0, err;
    json_t *details;

    snprintf(prefix, sizeof prefix, "left:%lld:%s:", (long long)id, boot);
    st = store__stmt(store, "SELECT 1 FROM events WHERE key >= ?1 AND key < ?1 || '~' LIMIT 1");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    seen = sqlite3_step(st) == SQLITE_ROW;
    store__release(store, st);
    if (seen)
        return 0;
    store__node_label(store, id, name, sizeof name, ip, sizeof ip);
    snprintf(key, sizeof key, "%slate", prefix);
    snprintf(desc, sizeof desc, "Controller node %s left the cluster", name);
    details = json_pack("{s:s, s:s, s:s}", "node_name", name, "ip", ip, "role", role);
    err = store__event_insert(store, key, "CONTROLLER_NODE_LEFT", time_ms, "CLUSTERMGR",
                              "CONTROLLER_NODE", name, desc, details);
    json_decref(details);
    return err;
}

/* Presence of a node: joined / left, deduped on (present, boot). */
static int store__cmd_presence(struct store *store, json_t *cmd, int joined,
                               struct store_result *res)
{
    json_int_t id, time_ms;
    const char *boot, *role;
    sqlite3_stmt *st;
    int have = 0, present = 0, rc;
    long long changes = 0, since_ms = 0;
    char old_boot[64] = "", name[128], ip[64], key[200], desc[300];

    if (json_unpack(cmd, "{s:I, s:s, s:I, s:s}", "id", &id, "boot", &boot, "time", &time_ms,
                    "role", &role) != 0)
        return VIGIL_EINVAL;
    res->status = 200;
    st = store__stmt(store, "SELECT present, boot, changes, time_ms FROM presence WHERE id=?");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        have = 1;
        present = sqlite3_column_int(st, 0);
        snprintf(old_boot, sizeof old_boot, "%s", sqlite3_column_text(st, 1));
        changes = sqlite3_column_int64(st, 2);
        since_ms = sqlite3_column_int64(st, 3);
    }
    store__release(store, st);

    if (joined) {
        /* Same incarnation still present: nothing happened. */
        if (have && present && strcmp(old_boot, boot) == 0)
            return 0;
    } else {
        /* An older incarnation's leave, observed before its successor joined. */
        if (have && strcmp(old_boot, boot) != 0)
            return time_ms <= since_ms ? store__stale_left(store, id, boot, time_ms, role) : 0;
        /* Only the incarnation that is present can leave. */
        if (!have || !present)
            return 0;
    }
    /* CHANGES numbers the moves, so each leave and rejoin of one incarnation (a partition
     * that heals, twice) is an occurrence of its own. */
    changes++;
    st = store__stmt(store, "INSERT OR REPLACE INTO presence(id, present, boot, time_ms, "
                               "changes) VALUES(?,?,?,?,?)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, joined);
    sqlite3_bind_text(st, 3, boot, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, time_ms);
    sqlite3_bind_int64(st, 5, changes);
    rc = sqlite3_step(st);
    store__release(store, st);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    /* A node's first appearance (cluster formation) is no rejoin. */
    if (joined && !have)
        return 0;
    store__node_label(store, id, name, sizeof name, ip, sizeof ip);
    snprintf(key, sizeof key, "%s:%lld:%s:%lld", joined ? "joined" : "left", (long long)id, boot,
             changes);
    snprintf(desc, sizeof desc, "Controller node %s %s the cluster", name,
             joined ? "joined" : "left");
    {
        json_t *details = json_pack("{s:s, s:s, s:s}", "node_name", name, "ip", ip, "role", role);
        int err = store__event_insert(store, key,
                                      joined ? "CONTROLLER_NODE_JOINED" : "CONTROLLER_NODE_LEFT",
                                      time_ms, "CLUSTERMGR", "CONTROLLER_NODE", name, desc, details);
        json_decref(details);
        return err;
    }
}

/* A leader committed the first entry of its term: a failover when the recorded leader
 * is another incarnation or term. */
static int store__cmd_leader_elected(struct store *store, json_t *cmd, struct store_result *res)
{
    json_int_t id, term, time_ms;
    const char *boot;
    char *prev_text;
    json_t *prev = NULL, *now;
    int err = 0;

    if (json_unpack(cmd, "{s:I, s:s, s:I, s:I}", "leader", &id, "boot", &boot, "term", &term,
                    "time", &time_ms) != 0)
        return VIGIL_EINVAL;
    res->status = 200;
    prev_text = NULL;
    {
        sqlite3_stmt *st = store__stmt(store, "SELECT value FROM meta WHERE key='leader'");
        if (st == NULL)
            return VIGIL_EIO;
        if (sqlite3_step(st) == SQLITE_ROW)
            prev_text = strdup((const char *)sqlite3_column_text(st, 0));
        store__release(store, st);
    }
    if (prev_text != NULL)
        prev = json_loads(prev_text, 0, NULL);
    free(prev_text);
    if (prev != NULL && json_integer_value(json_object_get(prev, "leader")) == id &&
        json_integer_value(json_object_get(prev, "term")) == term &&
        strcmp(json_string_value(json_object_get(prev, "boot")) ?: "", boot) == 0) {
        json_decref(prev);
        return 0; /* reported twice */
    }
    if (prev != NULL && json_integer_value(json_object_get(prev, "term")) > term) {
        json_decref(prev);
        return 0; /* a late report from an older term: a newer leader is recorded */
    }
    if (prev != NULL) {
        char name[128], ip[64], pname[128], pip[64], key[200], desc[400];
        json_t *details;
        store__node_label(store, id, name, sizeof name, ip, sizeof ip);
        store__node_label(store, json_integer_value(json_object_get(prev, "leader")), pname,
                          sizeof pname, pip, sizeof pip);
        snprintf(key, sizeof key, "failover:%lld:%s:%lld", (long long)id, boot, (long long)term);
        snprintf(desc, sizeof desc, "Controller node %s took over as leader from %s", name, pname);
        details = json_pack("{s:s, s:s}", "leader_node", name, "previous_leader_node", pname);
        err = store__event_insert(store, key, "CONTROLLER_LEADER_FAILOVER", time_ms, "CLUSTERMGR",
                                  "CONTROLLER_NODE", name, desc, details);
        json_decref(details);
    }
    json_decref(prev);
    if (err != 0)
        return err;
    now = json_pack("{s:I, s:s, s:I}", "leader", id, "boot", boot, "term", term);
    prev_text = json_dumps(now, JSON_COMPACT);
    json_decref(now);
    err = store__meta_set(store, "leader", prev_text);
    free(prev_text);
    return err;
}

static int store__cmd_se_runtime(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *uuid, *state = NULL;
    int connected;
    json_int_t node = 0, time_ms;
    sqlite3_stmt *st;
    int rc;

    if (json_unpack(cmd, "{s:s, s:b, s?I, s:I, s?s}", "uuid", &uuid, "connected", &connected,
                    "controller_node", &node, "time", &time_ms, "se_state", &state) != 0)
        return VIGIL_EINVAL;
    res->status = 200;
    if (connected)
        st = store__stmt(store, "INSERT OR REPLACE INTO se_runtime(uuid, connected, "
                                   "controller_node, since_ms, last_heartbeat_ms, se_state) "
                                   "VALUES(?1, 1, ?2, ?3, ?3, ?4)");
    else
        st = store__stmt(store, "UPDATE se_runtime SET connected=0, se_state=?4, "
                                   "last_heartbeat_ms=?3 WHERE uuid=?1 AND (?2 = 0 OR "
                                   "controller_node=?2)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, node);
    sqlite3_bind_int64(st, 3, time_ms);
    if (state != NULL)
        sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    rc = sqlite3_step(st);
    store__release(store, st);
    return rc == SQLITE_DONE ? 0 : VIGIL_EIO;
}

int store__events_apply(struct store *store, const char *op, json_t *cmd,
                        struct store_result *res)
{
    if (strcmp(op, "event_record") == 0)
        return store__cmd_event_record(store, cmd, res);
    if (strcmp(op, "node_joined") == 0)
        return store__cmd_presence(store, cmd, 1, res);
    if (strcmp(op, "node_left") == 0)
        return store__cmd_presence(store, cmd, 0, res);
    if (strcmp(op, "leader_elected") == 0)
        return store__cmd_leader_elected(store, cmd, res);
    if (strcmp(op, "se_runtime") == 0)
        return store__cmd_se_runtime(store, cmd, res);
    return VIGIL_EINVAL;
}

/* --- queries ---------------------------------------------------------------------- */

json_t *store_events_list(struct store *store, const char *event_id, int64_t since_ms,
                          int64_t offset, int64_t limit, int64_t *total)
{
    json_t *list = json_array();
    sqlite3_stmt *st;

    *total = 0;
    st = store__stmt(store, "SELECT count(*) FROM events WHERE (?1 IS NULL OR event_id=?1) "
                               "AND time_ms >= ?2");
    if (st == NULL)
        return list;
    if (event_id != NULL)
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    store__release(store, st);
    st = store__stmt(store,
                        "SELECT uuid, event_id, time_ms, module, obj_type, obj_name, description,"
                        " details FROM events WHERE (?1 IS NULL OR event_id=?1) AND time_ms >= ?2"
                        " ORDER BY time_ms, seq LIMIT ?3 OFFSET ?4");
    if (st == NULL)
        return list;
    if (event_id != NULL)
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char ts[TIME_RFC3339_LEN];
        json_t *details = json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);
        time_format_rfc3339(sqlite3_column_int64(st, 2), ts);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "uuid",
                            sqlite3_column_text(st, 0), "event_id", sqlite3_column_text(st, 1),
                            "report_timestamp", ts, "module", sqlite3_column_text(st, 3),
                            "obj_type", sqlite3_column_text(st, 4), "obj_name",
                            sqlite3_column_text(st, 5), "event_description",
                            sqlite3_column_text(st, 6), "event_details",
                            details != NULL ? details : json_object()));
    }
    store__release(store, st);
    return list;
}

json_t *store_se_connected(struct store *store)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store__stmt(
        store, "SELECT r.uuid, coalesce(o.name, r.uuid), r.since_ms, r.controller_node FROM "
               "se_runtime r LEFT JOIN objects o ON o.type = 3 AND o.uuid = r.uuid "
               "WHERE r.connected = 1 "
               "ORDER BY 2");
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I}", "uuid",
                                              sqlite3_column_text(st, 0), "name",
                                              sqlite3_column_text(st, 1), "since_ms",
                                              (json_int_t)sqlite3_column_int64(st, 2),
                                              "controller_node",
                                              (json_int_t)sqlite3_column_int64(st, 3)));
    store__release(store, st);
    return list;
}

json_t *store_se_runtime(struct store *store, const char *uuid)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT connected, controller_node, since_ms, "
                                             "last_heartbeat_ms, se_state FROM se_runtime WHERE uuid=?");
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:b, s:I, s:I, s:I, s:o}", "connected", sqlite3_column_int(st, 0),
                        "controller_node", (json_int_t)sqlite3_column_int64(st, 1), "since_ms",
                        (json_int_t)sqlite3_column_int64(st, 2), "last_heartbeat_ms",
                        (json_int_t)sqlite3_column_int64(st, 3), "se_state",
                        sqlite3_column_type(st, 4) == SQLITE_NULL
                            ? json_null()
                            : json_string((const char *)sqlite3_column_text(st, 4)));
    store__release(store, st);
    return out;
}
