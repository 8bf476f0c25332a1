/* api_cluster.c: GET /api/cluster and GET /api/cluster/runtime. */
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "controller/api/api.h"
#include "controller/api/write_path.h"

json_t *api_cluster_doc(struct api_cluster *area)
{
    char *name = store_meta_get(area->store, "cluster_name");
    char *uuid = store_meta_get(area->store, "cluster_uuid");
    json_t *out = json_pack("{s:s, s:o, s:o, s:o}", "name",
                            name != NULL ? name : area->cluster_name, "uuid",
                            uuid != NULL ? json_string(uuid) : json_null(), "virtual_ip",
                            area->vip[0] ? json_string(area->vip) : json_null(),
                            "nodes", store_nodes(area->store));
    free(name);
    free(uuid);
    return out;
}

/* The contract's cluster "state" for this node's status and membership. */
static const char *api__cluster_state(const struct status_machine *sm, unsigned members,
                                      unsigned active)
{
    switch (sm->current) {
    case STATUS_NOT_RESPONSIVE:
        return sm->history_len <= 1 ? "CLUSTER_STARTING_UP" : "CLUSTER_DOWN";
    case STATUS_READY:
        if (members <= 1)
            return "CLUSTER_UP_NO_HA";
        return active >= members ? "CLUSTER_UP_HA_ACTIVE" : "CLUSTER_UP_HA_COMPROMISED";
    default:
        return "CLUSTER_UP_HA_NOT_READY";
    }
}

/* What a peer's last report (PS's) says of itself in its node_states entry: KEY's value
 * (borrowed from the report), or NULL. */
static json_t *api__peer_self_field(const struct peer_state *ps, const char *key)
{
    json_t *rec;
    size_t i;
    if (ps == NULL || ps->report == NULL)
        return NULL;
    json_array_foreach(json_object_get(ps->report, "node_states"), i, rec)
    {
        if ((uint64_t)json_integer_value(json_object_get(rec, "id")) == ps->id)
            return json_object_get(rec, key);
    }
    return NULL;
}

/* The name of member ID in NAMES (the store's node records), or "". */
static const char *api__node_name(json_t *names, uint64_t id)
{
    json_t *rec;
    size_t j;
    json_array_foreach(names, j, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if ((uint64_t)json_integer_value(json_object_get(rec, "id")) == id && name != NULL)
            return name;
    }
    return "";
}

/* Member M's entry of node_states: role and state, applied index, and for the dashboard
 * when it was last heard from, since when it runs, and whether it holds the cluster IP
 * (a peer's from its last report; null when never heard). *ACTIVE is counted up when it
 * is active. */
static json_t *api__node_state(struct api_cluster *area, const struct cluster_member *m,
                               uint64_t leader, json_t *names, unsigned *active)
{
    json_t *node = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)m->id, "name",
                             api__node_name(names, m->id), "role",
                             m->id == leader ? "CLUSTER_LEADER" : "CLUSTER_FOLLOWER");
    char ts[TIME_RFC3339_LEN];

    if (m->id == area->node_id) {
        json_object_set_new(node, "state",
                            json_string(leader != 0 ? "CLUSTER_ACTIVE" : "CLUSTER_STARTING"));
        json_object_set_new(node, "applied_index",
                            json_integer((json_int_t)cluster_applied_index(area->cluster)));
        time_format_rfc3339(time_now_ms(), ts);
        json_object_set_new(node, "last_contact", json_string(ts));
        time_format_rfc3339(area->started_ms, ts);
        json_object_set_new(node, "up_since", json_string(ts));
        json_object_set_new(node, "holds_cluster_ip", json_boolean(vip_held(area->vip_mgr)));
        (*active)++;
    } else {
        const struct peer_state *ps = peers_get(area->peers, m->id);
        int up = ps != NULL && ps->reachable;
        json_t *up_since = up ? api__peer_self_field(ps, "up_since") : NULL;
        json_t *holds = up ? api__peer_self_field(ps, "holds_cluster_ip") : NULL;
        json_object_set_new(node, "state", json_string(up ? "CLUSTER_ACTIVE" : "CLUSTER_INACTIVE"));
        json_object_set_new(node, "applied_index",
                            ps != NULL && ps->ever_reachable
                                ? json_integer((json_int_t)ps->applied_index)
                                : json_null());
        if (ps != NULL && ps->last_ok_ms != 0) {
            time_format_rfc3339(time_now_ms() - (time_mono_ms() - ps->last_ok_ms), ts);
            json_object_set_new(node, "last_contact", json_string(ts));
        } else {
            json_object_set_new(node, "last_contact", json_null());
        }
        json_object_set_new(node, "up_since", json_is_string(up_since) ? json_copy(up_since)
                                                                       : json_null());
        json_object_set_new(node, "holds_cluster_ip", json_boolean(json_is_true(holds)));
        if (up)
            (*active)++;
    }
    return node;
}

json_t *api_cluster_runtime(struct api_cluster *area)
{
    const struct status_machine *sm = status_driver_status(area->status);
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(area->cluster, members, CLUSTER_MAX_NODES);
    uint64_t leader = cluster_leader(area->cluster, NULL);
    json_t *nodes = json_array(), *names = store_nodes(area->store);
    unsigned active = 0;
    char since[TIME_RFC3339_LEN];

    for (unsigned i = 0; i < n; i++)
        json_array_append_new(nodes, api__node_state(area, &members[i], leader, names, &active));
    json_decref(names);
    time_format_rfc3339(sm->since_ms, since);
    return json_pack("{s:I, s:o, s:I, s:{s:s, s:s, s:s, s:s}, s:o, s:o}", "node_id",
                     (json_int_t)area->node_id, "leader_id",
                     leader ? json_integer((json_int_t)leader) : json_null(), "term",
                     (json_int_t)cluster_term(area->cluster), "cluster_state", "status",
                     status_name(sm->current), "state", api__cluster_state(sm, n, active),
                     "since", since, "reason", sm->reason, "node_states", nodes,
                     "status_history", status_history_json(sm));
}

/* This node's report for the liveness channel (GET /api/internal/peer): the runtime view
 * plus what only peers need. */
static json_t *api__peer_report(struct api_cluster *area)
{
    json_t *report = api_cluster_runtime(area);
    int64_t led = status_driver_led_since_ms(area->status);
    json_object_set_new(report, "applied_index",
                        json_integer((json_int_t)cluster_applied_index(area->cluster)));
    json_object_set_new(report, "commit_index",
                        json_integer((json_int_t)cluster_commit_index(area->cluster)));
    json_object_set_new(report, "errors", json_array());
    if (area->rebuild_report != NULL && area->rebuild_report[0] != '\0')
        json_array_append_new(json_object_get(report, "errors"),
                              json_string(area->rebuild_report));
    json_object_set_new(report, "boot", json_string(area->boot));
    json_object_set_new(report, "se_ready",
                        json_boolean(area->se_sessions != NULL && se_sessions_ready(area->se_sessions)));
    if (led != 0) {
        char ts[TIME_RFC3339_LEN];
        time_format_rfc3339(led, ts);
        json_object_set_new(report, "led_since", json_string(ts));
    }
    return report;
}

/* True if this node leads and hears from the very incarnation a "node_left" CMD names
 * (its own, or a peer whose report answered within the liveness window with that boot). A
 * node that was cut off (paused, partitioned) finds every peer's last answer too old when
 * it resumes and reports them all as gone; such a report is not recorded: the leader's
 * own view decides, and it reports what it sees itself. A report about an earlier
 * incarnation (the node restarted since) is a real departure and goes on. */
static int api__leader_hears(struct api_cluster *area, const json_t *cmd)
{
    const struct peer_state *ps;
    json_int_t id = json_integer_value(json_object_get(cmd, "id"));
    const char *boot = json_string_value(json_object_get(cmd, "boot"));
    if (!cluster_is_leader(area->cluster) || id <= 0 || boot == NULL)
        return 0;
    if ((uint64_t)id == area->node_id)
        return strcmp(boot, area->boot) == 0; /* reported gone, and leading */
    ps = peers_get(area->peers, (uint64_t)id);
    return ps != NULL && ps->reachable && strcmp(boot, ps->boot) == 0;
}

/* The ops nodes may send each other through the leader (POST /api/internal/command). */
static const char *const api__internal_ops[] = {
    "node_register", "cluster_init", "event_record", "node_joined", "node_left",
    "leader_elected", "se_runtime", "se_session", "se_sessions_reset", "session_revoke", NULL};

static int api__internal_op_allowed(const char *op)
{
    for (int i = 0; op != NULL && api__internal_ops[i] != NULL; i++)
        if (strcmp(op, api__internal_ops[i]) == 0)
            return 1;
    return 0;
}

/* Checks the group CMD ({"op": "observations", "cmds": [...]}, a node's queued
 * observations, events.h) and drops from it the node_left reports this leader knows to be
 * wrong. Returns NULL when the group is valid, else the reason (a static string). */
static const char *api__observations_check(struct api_cluster *area, json_t *cmd)
{
    json_t *cmds = json_object_get(cmd, "cmds");
    size_t i = 0;

    if (!json_is_array(cmds) || json_array_size(cmds) == 0 ||
        json_array_size(cmds) > STORE_OBSERVATIONS_MAX)
        return "cmds: not a list of 1 to 256 commands";
    while (i < json_array_size(cmds)) {
        json_t *one = json_array_get(cmds, i);
        const char *op = json_string_value(json_object_get(one, "op"));
        if (!api__internal_op_allowed(op))
            return "cmds: holds a command that is not an internal command";
        if (strcmp(op, "node_left") == 0 && api__leader_hears(area, one))
            json_array_remove(cmds, i);
        else
            i++;
    }
    return NULL;
}

/* Commands nodes send each other through the leader (POST /api/internal/command): one, or
 * a group of them ("observations"; only from a node). */
static void api__internal_command(struct api_cluster *area, struct http_request *req)
{
    size_t len;
    const char *text = http_request_body(req, &len);
    json_t *cmd = json_loadb(text, len, 0, NULL);
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const struct auth_identity *id = rest_identity(req);
    int from_node = id == NULL || strcmp(id->role, "node") == 0;
    const char *refusal = NULL;

    if (op != NULL && strcmp(op, "observations") == 0)
        refusal = from_node ? api__observations_check(area, cmd) : "op: not an internal command";
    else if (!api__internal_op_allowed(op))
        refusal = "op: not an internal command";
    /* A person (an admin) may only record an SE's runtime here, for tools and tests. */
    else if (!from_node && strcmp(op, "se_runtime") != 0)
        refusal = "op: not an internal command";
    if (refusal != NULL) {
        json_decref(cmd);
        http_request_respond_error(req, 400, "%s", refusal);
        return;
    }
    if ((strcmp(op, "node_left") == 0 && api__leader_hears(area, cmd)) ||
        (strcmp(op, "observations") == 0 && json_array_size(json_object_get(cmd, "cmds")) == 0)) {
        json_decref(cmd);
        http_request_respond(req, 200, json_pack("{s:s, s:s}", "outcome", "ignored", "reason",
                                                 "the leader hears from that node itself"));
        return;
    }
    write_path_submit(area->write_path, req, cmd);
}

static void api__internal(struct api_cluster *area, struct http_request *req, const char *sub)
{
    const char *method = http_request_method(req);
    if (strcmp(sub, "peer") == 0 && strcmp(method, "GET") == 0) {
        http_request_respond(req, 200, api__peer_report(area));
        return;
    }
    if (strcmp(sub, "command") == 0 && strcmp(method, "POST") == 0) {
        api__internal_command(area, req);
        return;
    }
    http_request_respond_error(req, 404, "no such resource: %s", http_request_path(req));
}

static void api__cluster_handle(struct api_cluster *area, struct http_request *req, const char *sub)
{
    if (strcmp(http_request_method(req), "GET") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on %s", http_request_method(req),
                                   http_request_path(req));
        return;
    }
    if (sub[0] == '\0') {
        char *uuid = store_meta_get(area->store, "cluster_uuid");
        if (uuid == NULL) {
            /* A new cluster gets its identity from its first leader's first entries. */
            http_request_respond_error(req, 503, "the cluster is not initialised yet: no leader has "
                                                 "committed since bootstrap");
            return;
        }
        free(uuid);
        http_request_respond(req, 200, api_cluster_doc(area));
        return;
    }
    if (strcmp(sub, "runtime") == 0) {
        http_request_respond(req, 200, api_cluster_runtime(area));
        return;
    }
    http_request_respond_error(req, 404, "no such resource: %s", http_request_path(req));
}

static int api__on_cluster(void *area, struct http_request *req, const char *sub)
{
    api__cluster_handle(area, req, sub);
    return 1;
}

static int api__on_internal(void *area, struct http_request *req, const char *sub)
{
    api__internal(area, req, sub);
    return 1;
}

int api_cluster_register(struct rest *rest, struct api_cluster *area)
{
    int rv = rest_add_route(rest, "cluster", REST_MATCH_EXACT, api__on_cluster, area);
    if (rv == 0)
        rv = rest_add_route(rest, "internal", REST_MATCH_UNDER, api__on_internal, area);
    if (rv == 0)
        rv = rest_add_route(rest, "cluster", REST_MATCH_UNDER, api__on_cluster, area);
    return rv;
}
