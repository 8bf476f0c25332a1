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
#include "controller/metrics/metrics.h"
#include "controller/store/store_events.h"

/* A uuid derived from KEY, the same on every replica. */
static void store_events__uuid(const char *key, char out[37])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key), NULL, 0);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x40);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

int store_events_insert(struct store_db *db, const char *key, const char *event_id,
                                int64_t time_ms, const char *module, const char *obj_type,
                                const char *obj_name, const char *description, json_t *details)
{
    char uuid[37];
    char *text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    int err;

    if (text == NULL)
        return VIGIL_EIO;
    store_events__uuid(key, uuid);
    err = store_db_write(db, "INSERT OR IGNORE INTO events(uuid, key, event_id, time_ms, module,"
                             " obj_type, obj_name, description, details) VALUES(?,?,?,?,?,?,?,?,?)",
                         STORE_DB_BIND(STORE_DB_TEXT(uuid), STORE_DB_TEXT(key),
                                       STORE_DB_TEXT(event_id), STORE_DB_INT(time_ms),
                                       STORE_DB_TEXT(module), STORE_DB_TEXT(obj_type),
                                       STORE_DB_TEXT(obj_name), STORE_DB_TEXT(description),
                                       STORE_DB_TEXT(text)));
    free(text);
    if (err != 0)
        return err;
    if (store_db_changes(db) > 0)
        metrics_count_event_recorded();
    /* Keep the newest STORE_EVENTS_KEEP (or what store_set_events_keep said). */
    return store_db_write(db, "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?",
                          STORE_DB_BIND(STORE_DB_INT(db->events_keep > 0 ? db->events_keep
                                                                          : STORE_EVENTS_KEEP)));
}

/* A node's name and IP from its record ("node-ID" and "" before it registered). */
static void store_events__node_label(struct store_db *db, int64_t id, char *name, size_t nlen,
                                     char *ip, size_t iplen)
{
    sqlite3_stmt *st = store_db_statement(db, "SELECT name, raft_address FROM nodes WHERE id=?",
                                          STORE_DB_BIND(STORE_DB_INT(id)));
    snprintf(name, nlen, "node-%lld", (long long)id);
    ip[0] = '\0';
    if (st == NULL)
        return;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *addr = (const char *)sqlite3_column_text(st, 1);
        const char *colon = strrchr(addr, ':');
        snprintf(name, nlen, "%s", sqlite3_column_text(st, 0));
        snprintf(ip, iplen, "%.*s", colon ? (int)(colon - addr) : (int)strlen(addr), addr);
    }
    store_db_release(db, st);
}

/* Records the CLUSTERMGR event EVENT_ID of node ID (KEY dedupes it): "Controller node
 * <name> <WHAT>" with the node's name, IP and ROLE as details. */
static int store_events__node_event(struct store_db *db, json_int_t id, const char *key,
                                    const char *event_id, json_int_t time_ms, const char *what,
                                    const char *role)
{
    char name[128], ip[64], desc[300];
    json_t *details;
    int err;

    store_events__node_label(db, id, name, sizeof name, ip, sizeof ip);
    snprintf(desc, sizeof desc, "Controller node %s %s", name, what);
    details = json_pack("{s:s, s:s, s:s}", "node_name", name, "ip", ip, "role", role);
    err = store_events_insert(db, key, event_id, time_ms, "CLUSTERMGR", "CONTROLLER_NODE", name,
                               desc, details);
    json_decref(details);
    return err;
}

int store_events_record(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *key, *event_id, *module, *obj_type, *obj_name, *description;
    json_int_t time_ms;
    json_t *details;

    if (json_unpack(cmd, "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o}", "key", &key, "event_id",
                    &event_id, "time", &time_ms, "module", &module, "obj_type", &obj_type,
                    "obj_name", &obj_name, "description", &description, "details", &details) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    return store_events_insert(db, key, event_id, time_ms, module, obj_type, obj_name,
                                description, details);
}

/* A leave of an older incarnation, reported after its successor joined (an observer's
 * report that waited for quorum): recorded with its real time, once, unless a leave of
 * that incarnation is recorded already. Presence stays with the successor. */
static int store_events__stale_left(struct store_db *db, json_int_t id, const char *boot,
                                    json_int_t time_ms, const char *role)
{
    char prefix[160], key[200];

    snprintf(prefix, sizeof prefix, "left:%lld:%s:", (long long)id, boot);
    if (store_db_has_row(db, "SELECT 1 FROM events WHERE key >= ?1 AND key < ?1 || '~' LIMIT 1",
                         STORE_DB_BIND(STORE_DB_TEXT(prefix))))
        return 0;
    snprintf(key, sizeof key, "%slate", prefix);
    return store_events__node_event(db, id, key, "CONTROLLER_NODE_LEFT", time_ms,
                                    "left the cluster", role);
}

/* Presence of a node: joined / left, deduped on (present, boot). */
static int store_events__presence(struct store_db *db, json_t *cmd, int joined,
                                  struct store_result *res)
{
    json_int_t id, time_ms;
    const char *boot, *role;
    sqlite3_stmt *st;
    int have = 0, present = 0;
    long long changes = 0, since_ms = 0;
    char old_boot[64] = "", key[200];

    if (json_unpack(cmd, "{s:I, s:s, s:I, s:s}", "id", &id, "boot", &boot, "time", &time_ms,
                    "role", &role) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    st = store_db_statement(db, "SELECT present, boot, changes, time_ms FROM presence WHERE id=?",
                            STORE_DB_BIND(STORE_DB_INT(id)));
    if (st == NULL)
        return VIGIL_EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        have = 1;
        present = sqlite3_column_int(st, 0);
        snprintf(old_boot, sizeof old_boot, "%s", sqlite3_column_text(st, 1));
        changes = sqlite3_column_int64(st, 2);
        since_ms = sqlite3_column_int64(st, 3);
    }
    store_db_release(db, st);

    /* An observation of this incarnation no newer than its last recorded move is no move:
     * an observer's report that came late (it waited for quorum, or was sent again after
     * an unknown outcome) after another observer's report of the move back. Without this,
     * a leave observed, then a rejoin, then that leave again recorded the leave twice
     * (fault campaign seed 268886, 20% packet loss on every node). */
    if (have && strcmp(old_boot, boot) == 0 && time_ms <= since_ms &&
        (joined ? !present : present))
        return 0;
    if (joined) {
        /* Same incarnation still present: nothing happened. */
        if (have && present && strcmp(old_boot, boot) == 0)
            return 0;
    } else {
        /* An older incarnation's leave, observed before its successor joined. */
        if (have && strcmp(old_boot, boot) != 0)
            return time_ms <= since_ms ? store_events__stale_left(db, id, boot, time_ms, role)
                                       : 0;
        /* Only the incarnation that is present can leave. */
        if (!have || !present)
            return 0;
    }
    /* CHANGES numbers the moves, so each leave and rejoin of one incarnation (a partition
     * that heals, twice) is an occurrence of its own. */
    changes++;
    if (store_db_write(db, "INSERT OR REPLACE INTO presence(id, present, boot, time_ms, "
                           "changes) VALUES(?,?,?,?,?)",
                       STORE_DB_BIND(STORE_DB_INT(id), STORE_DB_INT(joined), STORE_DB_TEXT(boot),
                                     STORE_DB_INT(time_ms), STORE_DB_INT(changes))) != 0)
        return VIGIL_EIO;
    /* A node's first appearance (cluster formation) is no rejoin. */
    if (joined && !have)
        return 0;
    snprintf(key, sizeof key, "%s:%lld:%s:%lld", joined ? "joined" : "left", (long long)id, boot,
             changes);
    return store_events__node_event(db, id, key,
                                    joined ? "CONTROLLER_NODE_JOINED" : "CONTROLLER_NODE_LEFT",
                                    time_ms, joined ? "joined the cluster" : "left the cluster",
                                    role);
}

int store_events_node_joined(struct store_db *db, json_t *cmd, struct store_result *res)
{
    return store_events__presence(db, cmd, 1, res);
}

int store_events_node_left(struct store_db *db, json_t *cmd, struct store_result *res)
{
    return store_events__presence(db, cmd, 0, res);
}

/* A leader committed the first entry of its term: a failover when the recorded leader
 * is another incarnation or term. */
int store_events_leader_elected(struct store_db *db, json_t *cmd, struct store_result *res)
{
    json_int_t id, term, time_ms;
    const char *boot;
    char *prev_text;
    json_t *prev = NULL, *now;
    int err = 0;

    if (json_unpack(cmd, "{s:I, s:s, s:I, s:I}", "leader", &id, "boot", &boot, "term", &term,
                    "time", &time_ms) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    prev_text = store_db_text(db, "SELECT value FROM meta WHERE key='leader'", NULL);
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
        store_events__node_label(db, id, name, sizeof name, ip, sizeof ip);
        store_events__node_label(db, json_integer_value(json_object_get(prev, "leader")), pname,
                                 sizeof pname, pip, sizeof pip);
        snprintf(key, sizeof key, "failover:%lld:%s:%lld", (long long)id, boot, (long long)term);
        snprintf(desc, sizeof desc, "Controller node %s took over as leader from %s", name, pname);
        details = json_pack("{s:s, s:s}", "leader_node", name, "previous_leader_node", pname);
        err = store_events_insert(db, key, "CONTROLLER_LEADER_FAILOVER", time_ms, "CLUSTERMGR",
                                   "CONTROLLER_NODE", name, desc, details);
        json_decref(details);
    }
    json_decref(prev);
    if (err != 0)
        return err;
    now = json_pack("{s:I, s:s, s:I}", "leader", id, "boot", boot, "term", term);
    prev_text = json_dumps(now, JSON_COMPACT);
    json_decref(now);
    err = store_db_write(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('leader', ?)",
                         STORE_DB_BIND(STORE_DB_TEXT(prev_text)));
    free(prev_text);
    return err;
}

int store_events_se_runtime(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *uuid, *state = NULL;
    int connected;
    json_int_t node = 0, time_ms;
    const struct store_db_value *values;

    if (json_unpack(cmd, "{s:s, s:b, s?I, s:I, s?s}", "uuid", &uuid, "connected", &connected,
                    "controller_node", &node, "time", &time_ms, "se_state", &state) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    values = STORE_DB_BIND(STORE_DB_TEXT(uuid), STORE_DB_INT(node), STORE_DB_INT(time_ms),
                           STORE_DB_TEXT(state));
    if (connected)
        return store_db_write(db, "INSERT OR REPLACE INTO se_runtime(uuid, connected, "
                                  "controller_node, since_ms, last_heartbeat_ms, se_state) "
                                  "VALUES(?1, 1, ?2, ?3, ?3, ?4)", values);
    return store_db_write(db, "UPDATE se_runtime SET connected=0, se_state=?4, "
                              "last_heartbeat_ms=?3 WHERE uuid=?1 AND (?2 = 0 OR "
                              "controller_node=?2)", values);
}

/* --- queries ---------------------------------------------------------------------- */

/* The contract's event object of the row ST stands on (columns: uuid, event_id, time_ms,
 * module, obj_type, obj_name, description, details, from FIRST on). Owned by the caller. */
static json_t *store_events__row(sqlite3_stmt *st, int first)
{
    char ts[TIME_RFC3339_LEN];
    json_t *details = json_loads((const char *)sqlite3_column_text(st, first + 7), 0, NULL);
    time_format_rfc3339(sqlite3_column_int64(st, first + 2), ts);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "uuid",
                     sqlite3_column_text(st, first), "event_id", sqlite3_column_text(st, first + 1),
                     "report_timestamp", ts, "module", sqlite3_column_text(st, first + 3),
                     "obj_type", sqlite3_column_text(st, first + 4), "obj_name",
                     sqlite3_column_text(st, first + 5), "event_description",
                     sqlite3_column_text(st, first + 6), "event_details",
                     details != NULL ? details : json_object());
}

json_t *store_events_list(struct store *store, const char *event_id, int64_t since_ms,
                          int64_t offset, int64_t limit, int64_t *total)
{
    json_t *list = json_array();
    sqlite3_stmt *st;

    *total = store_db_int64(&store->db, "SELECT count(*) FROM events WHERE (?1 IS NULL OR "
                                        "event_id=?1) AND time_ms >= ?2",
                            STORE_DB_BIND(STORE_DB_TEXT(event_id), STORE_DB_INT(since_ms)), 0);
    st = store_db_statement(
        &store->db, "SELECT uuid, event_id, time_ms, module, obj_type, obj_name, description,"
                    " details FROM events WHERE (?1 IS NULL OR event_id=?1) AND time_ms >= ?2"
                    " ORDER BY time_ms, seq LIMIT ?3 OFFSET ?4",
        STORE_DB_BIND(STORE_DB_TEXT(event_id), STORE_DB_INT(since_ms), STORE_DB_INT(limit),
                      STORE_DB_INT(offset)));
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, store_events__row(st, 0));
    store_db_release(&store->db, st);
    return list;
}

uint64_t store_events_newest_seq(struct store *store)
{
    int64_t seq = store_db_int64(&store->db, "SELECT coalesce(max(seq), 0) FROM events", NULL, 0);
    return seq > 0 ? (uint64_t)seq : 0;
}

json_t *store_events_after(struct store *store, uint64_t seq, int64_t limit)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT seq, uuid, event_id, time_ms, module, obj_type, obj_name,"
                    " description, details FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        STORE_DB_BIND(STORE_DB_INT(seq > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)seq),
                      STORE_DB_INT(limit)));
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:I, s:o}", "seq",
                                              (json_int_t)sqlite3_column_int64(st, 0), "event",
                                              store_events__row(st, 1)));
    store_db_release(&store->db, st);
    return list;
}

json_t *store_se_connected(struct store *store)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT r.uuid, coalesce(o.name, r.uuid), max(r.since_ms, coalesce(("
                    "SELECT max(s.since_ms) FROM se_session s WHERE s.uuid = r.uuid), 0)), "
                    "r.controller_node "
                    "FROM se_runtime r LEFT JOIN objects o ON o.type = 3 AND o.uuid = r.uuid "
                    "WHERE r.connected = 1 ORDER BY 2", NULL);
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I}", "uuid",
                                              sqlite3_column_text(st, 0), "name",
                                              sqlite3_column_text(st, 1), "since_ms",
                                              (json_int_t)sqlite3_column_int64(st, 2),
                                              "controller_node",
                                              (json_int_t)sqlite3_column_int64(st, 3)));
    store_db_release(&store->db, st);
    return list;
}

json_t *store_se_runtime(struct store *store, const char *uuid)
{
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT connected, coalesce((SELECT node FROM se_session s WHERE s.uuid = "
                    "r.uuid ORDER BY since_ms, node LIMIT 1), controller_node), since_ms, "
                    "last_heartbeat_ms, se_state, (SELECT count(*) FROM se_session s WHERE "
                    "s.uuid = r.uuid) FROM se_runtime r WHERE uuid=?",
        STORE_DB_BIND(STORE_DB_TEXT(uuid)));
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:b, s:I, s:I, s:I, s:o, s:I}", "connected", sqlite3_column_int(st, 0),
                        "controller_node", (json_int_t)sqlite3_column_int64(st, 1), "since_ms",
                        (json_int_t)sqlite3_column_int64(st, 2), "last_heartbeat_ms",
                        (json_int_t)sqlite3_column_int64(st, 3), "se_state",
                        sqlite3_column_type(st, 4) == SQLITE_NULL
                            ? json_null()
                            : json_string((const char *)sqlite3_column_text(st, 4)),
                        "sessions", (json_int_t)sqlite3_column_int64(st, 5));
    store_db_release(&store->db, st);
    return out;
}

bool store_se_session_recorded(struct store *store, const char *uuid, uint64_t node,
                               int64_t since_ms)
{
    return store_db_has_row(&store->db, "SELECT 1 FROM se_session WHERE uuid=? AND node=? AND "
                                        "since_ms=?",
                            STORE_DB_BIND(STORE_DB_TEXT(uuid), STORE_DB_INT((int64_t)node),
                                          STORE_DB_INT(since_ms))) != 0;
}
