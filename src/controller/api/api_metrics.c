/* api_metrics.c: GET /metrics, this node's Prometheus text (contract "REST API": every
 * node, authenticated like the API, read-only suffices). The counters and histograms come
 * from the metrics module (controller/metrics/), the gauges from the parts, read now. */
#include <stdlib.h>
#include <string.h>

#include "common/prom_text.h"
#include "common/version.h"
#include "controller/api/api.h"
#include "controller/metrics/metrics.h"
#include "controller/se_channel/ssh_server.h"
#include "controller/status/status.h"

static void api_metrics__gauge(FILE *out, const char *name, const char *help, uint64_t value)
{
    prom_text_family(out, name, "gauge", help);
    prom_text_sample_u64(out, name, NULL, value);
}

/* One family of 0/1 samples labelled KEY="NAMES[i]", 1 where NAMES[i] is CURRENT. */
static void api_metrics__one_of(FILE *out, const char *name, const char *help, const char *key,
                                const char *const names[], size_t n, const char *current)
{
    prom_text_family(out, name, "gauge", help);
    for (size_t i = 0; i < n; i++) {
        char labels[128];
        const char *const keys[] = {key}, *values[] = {names[i]};
        prom_text_sample_u64(out, name, prom_text_labels(labels, sizeof labels, keys, values, 1),
                             strcmp(names[i], current) == 0);
    }
}

static void api_metrics__raft(FILE *out, struct api_metrics *area)
{
    static const char *const roles[] = {"follower", "candidate", "leader", "unavailable"};
    uint64_t entries, bytes, snapshot_index;

    api_metrics__one_of(out, "vigil_raft_role", "This node's raft role (1 for the current one)",
                        "role", roles, 4, cluster_role_name(area->cluster));
    api_metrics__gauge(out, "vigil_raft_term", "The raft term this node is in",
                       cluster_term(area->cluster));
    api_metrics__gauge(out, "vigil_raft_leader_id", "The leader's node id (0: none known)",
                       cluster_leader(area->cluster, NULL));
    api_metrics__gauge(out, "vigil_raft_commit_index", "The highest log index known committed",
                       cluster_commit_index(area->cluster));
    api_metrics__gauge(out, "vigil_raft_applied_index", "The highest log index applied here",
                       cluster_applied_index(area->cluster));
    cluster_log_size(area->cluster, &entries, &bytes, &snapshot_index);
    api_metrics__gauge(out, "vigil_raft_log_entries",
                       "Raft log entries held since the last snapshot", entries);
    api_metrics__gauge(out, "vigil_raft_log_bytes", "Payload bytes of those entries", bytes);
    api_metrics__gauge(out, "vigil_raft_snapshot_index",
                       "The log index the last snapshot covers (0: none)", snapshot_index);
}

static void api_metrics__status_and_sessions(FILE *out, struct api_metrics *area)
{
    const char *statuses[STATUS__COUNT];
    const struct status_machine *sm = status_driver_status(area->status);
    unsigned counts[SSH_SESSION__COUNT];

    for (int i = 0; i < STATUS__COUNT; i++)
        statuses[i] = status_name((enum cluster_status)i);
    api_metrics__one_of(out, "vigil_cluster_status",
                        "The cluster status as this node sees it (1 for the current one)",
                        "status", statuses, STATUS__COUNT, status_name(sm->current));
    prom_text_family(out, "vigil_se_sessions", "gauge",
                     "Service Engine sessions on this node, by state");
    memset(counts, 0, sizeof counts);
    if (area->se_server != NULL)
        ssh_server_session_states(area->se_server, counts);
    for (int i = 0; i < SSH_SESSION__COUNT; i++) {
        char labels[64];
        const char *const keys[] = {"state"};
        const char *values[] = {ssh_session_state_name((enum ssh_session_state)i)};
        prom_text_sample_u64(out, "vigil_se_sessions",
                             prom_text_labels(labels, sizeof labels, keys, values, 1), counts[i]);
    }
}

static int api_metrics__handle(void *data, struct http_request *req, const char *sub)
{
    struct api_metrics *area = data;
    const char *method = http_request_method(req);
    char *text = NULL, id[24], labels[400];
    const char *const keys[] = {"node_id", "name", "version"};
    const char *values[] = {id, area->node_name, VIGIL_VERSION};
    size_t len = 0;
    FILE *out;

    (void)sub;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /metrics", method);
        return 1;
    }
    out = open_memstream(&text, &len);
    if (out == NULL) {
        http_request_respond_error(req, 500, "out of memory");
        return 1;
    }
    snprintf(id, sizeof id, "%llu", (unsigned long long)area->node_id);
    prom_text_family(out, "vigil_node_info", "gauge", "This node: its id, name and version");
    prom_text_sample_u64(out, "vigil_node_info",
                         prom_text_labels(labels, sizeof labels, keys, values, 3), 1);
    api_metrics__raft(out, area);
    api_metrics__status_and_sessions(out, area);
    metrics_render(out);
    if (fclose(out) != 0 || text == NULL) {
        free(text);
        http_request_respond_error(req, 500, "out of memory");
        return 1;
    }
    http_request_respond_raw(req, 200, PROM_TEXT_CONTENT_TYPE, text, len);
    free(text);
    return 1;
}

int api_metrics_register(struct rest *rest, struct api_metrics *area)
{
    return rest_add_route(rest, "/metrics", REST_MATCH_ROOT, api_metrics__handle, area);
}
