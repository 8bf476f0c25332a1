/* metrics.c: vigild's counters and histograms (see metrics.h). */
#include "controller/metrics/metrics.h"

#include <string.h>
#include <uv.h>

#include "common/prom_text.h"

#define METRICS__STATUS_MAX 600

static const char *const metrics__proposal_names[METRICS_PROPOSAL__COUNT] = {
    "committed", "failed", "not_leader", "no_space", "no_quorum", "shutdown", "other"};
static const char *const metrics__auth_names[METRICS_AUTH__COUNT] = {"unauthenticated",
                                                                     "forbidden", "csrf"};
static const char *const metrics__path_names[METRICS_PATH__COUNT] = {
    "healthz", "metrics",  "auth", "cluster", "objects", "events",
    "analytics", "stream", "internal", "ui", "other"};

/* Each histogram's name, help and bounds (seconds). */
static const double metrics__fast_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                              0.005,  0.01,    0.025,  0.05,  0.1,
                                              0.25,   0.5,     1,      2.5,   5,  10};
static const double metrics__slow_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                              1,     2.5,   5,    10,   30,  60};
static const struct {
    const char *name, *help;
    const double *bounds;
    size_t n;
} metrics__durations[METRICS_DURATION__COUNT] = {
    {"vigil_write_duration_seconds",
     "Writes on the leader: from the proposal to its entry committed and applied",
     metrics__fast_bounds, sizeof metrics__fast_bounds / sizeof metrics__fast_bounds[0]},
    {"vigil_fsm_apply_duration_seconds", "One raft entry applied to the store",
     metrics__fast_bounds, sizeof metrics__fast_bounds / sizeof metrics__fast_bounds[0]},
    {"vigil_snapshot_take_duration_seconds",
     "A snapshot taken: the store copied, hashed and handed to raft", metrics__slow_bounds,
     sizeof metrics__slow_bounds / sizeof metrics__slow_bounds[0]},
    {"vigil_snapshot_restore_duration_seconds", "A snapshot installed into the store",
     metrics__slow_bounds, sizeof metrics__slow_bounds / sizeof metrics__slow_bounds[0]},
};

static struct {
    int ready;
    uint64_t proposals[METRICS_PROPOSAL__COUNT];
    uint64_t leader_changes;
    uint64_t auth_failures[METRICS_AUTH__COUNT];
    uint64_t events_recorded;
    uint64_t api_requests[METRICS_PATH__COUNT][METRICS__STATUS_MAX];
    struct prom_histogram durations[METRICS_DURATION__COUNT];
} metrics__r;

/* The histograms get their bounds at their first use (the counters start at zero). */
static void metrics__ready(void)
{
    if (metrics__r.ready)
        return;
    for (int i = 0; i < METRICS_DURATION__COUNT; i++)
        prom_histogram_init(&metrics__r.durations[i], metrics__durations[i].bounds,
                            metrics__durations[i].n);
    metrics__r.ready = 1;
}

void metrics_reset(void)
{
    memset(&metrics__r, 0, sizeof metrics__r);
    metrics__ready();
}

/* PATH is NAME or starts with NAME/. */
static int metrics__under(const char *path, const char *name)
{
    size_t n = strlen(name);
    return strncmp(path, name, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

enum metrics_path_class metrics_path_class_of(const char *path)
{
    static const struct {
        const char *prefix;
        enum metrics_path_class cls;
    } table[] = {
        {"/api/healthz", METRICS_PATH_HEALTHZ},     {"/metrics", METRICS_PATH_METRICS},
        {"/api/login", METRICS_PATH_AUTH},          {"/api/logout", METRICS_PATH_AUTH},
        {"/api/session", METRICS_PATH_AUTH},        {"/api/user", METRICS_PATH_AUTH},
        {"/api/token", METRICS_PATH_AUTH},          {"/api/cluster", METRICS_PATH_CLUSTER},
        {"/api/pool", METRICS_PATH_OBJECTS},        {"/api/healthmonitor", METRICS_PATH_OBJECTS},
        {"/api/virtualservice", METRICS_PATH_OBJECTS},
        {"/api/serviceengine", METRICS_PATH_OBJECTS},
        {"/api/event", METRICS_PATH_EVENTS},        {"/api/analytics", METRICS_PATH_ANALYTICS},
        {"/api/stream", METRICS_PATH_STREAM},       {"/api/internal", METRICS_PATH_INTERNAL},
        {"/ui", METRICS_PATH_UI},
    };
    if (strcmp(path, "/") == 0)
        return METRICS_PATH_UI;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (metrics__under(path, table[i].prefix))
            return table[i].cls;
    return METRICS_PATH_OTHER;
}

void metrics_count_proposal(enum metrics_proposal_outcome outcome)
{
    if ((unsigned)outcome < METRICS_PROPOSAL__COUNT)
        metrics__r.proposals[outcome]++;
}

void metrics_observe(enum metrics_duration which, double seconds)
{
    metrics__ready();
    if ((unsigned)which < METRICS_DURATION__COUNT)
        prom_histogram_observe(&metrics__r.durations[which], seconds < 0 ? 0 : seconds);
}

void metrics_count_leader_change(void)
{
    metrics__r.leader_changes++;
}

void metrics_count_auth_failure(enum metrics_auth_failure why)
{
    if ((unsigned)why < METRICS_AUTH__COUNT)
        metrics__r.auth_failures[why]++;
}

void metrics_count_api_request(enum metrics_path_class cls, unsigned status)
{
    if ((unsigned)cls >= METRICS_PATH__COUNT)
        cls = METRICS_PATH_OTHER;
    metrics__r.api_requests[cls][status >= 100 && status < METRICS__STATUS_MAX ? status : 0]++;
}

void metrics_count_event_recorded(void)
{
    metrics__r.events_recorded++;
}

double metrics_seconds_since(uint64_t start_ns)
{
    uint64_t now = uv_hrtime();
    return now > start_ns ? (double)(now - start_ns) / 1e9 : 0.0;
}

/* One family whose samples are COUNTS[i] labelled KEY="NAMES[i]". */
static void metrics__by_name(FILE *out, const char *name, const char *help, const char *key,
                             const char *const names[], const uint64_t counts[], size_t n)
{
    prom_text_family(out, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        char labels[128];
        const char *const keys[] = {key}, *values[] = {names[i]};
        prom_text_sample_u64(out, name, prom_text_labels(labels, sizeof labels, keys, values, 1),
                             counts[i]);
    }
}

void metrics_render(FILE *out)
{
    metrics__ready();
    metrics__by_name(out, "vigil_raft_proposals_total",
                     "Proposals made on this node, by outcome", "outcome",
                     metrics__proposal_names, metrics__r.proposals, METRICS_PROPOSAL__COUNT);
    prom_text_family(out, "vigil_raft_leader_changes_total", "counter",
                     "Times the leader this node knows changed to another node");
    prom_text_sample_u64(out, "vigil_raft_leader_changes_total", NULL, metrics__r.leader_changes);
    metrics__by_name(out, "vigil_api_auth_failures_total",
                     "Requests the API's gate refused, by reason", "reason", metrics__auth_names,
                     metrics__r.auth_failures, METRICS_AUTH__COUNT);
    prom_text_family(out, "vigil_events_recorded_total", "counter",
                     "Events this node's store recorded (applied from the log)");
    prom_text_sample_u64(out, "vigil_events_recorded_total", NULL, metrics__r.events_recorded);
    prom_text_family(out, "vigil_api_requests_total", "counter",
                     "API answers by path class and HTTP status code");
    for (int c = 0; c < METRICS_PATH__COUNT; c++) {
        for (int s = 0; s < METRICS__STATUS_MAX; s++) {
            char labels[128], code[8];
            const char *const keys[] = {"path_class", "code"};
            const char *values[] = {metrics__path_names[c], code};
            if (metrics__r.api_requests[c][s] == 0)
                continue;
            snprintf(code, sizeof code, "%d", s);
            prom_text_sample_u64(out, "vigil_api_requests_total",
                                 prom_text_labels(labels, sizeof labels, keys, values, 2),
                                 metrics__r.api_requests[c][s]);
        }
    }
    for (int i = 0; i < METRICS_DURATION__COUNT; i++) {
        prom_text_family(out, metrics__durations[i].name, "histogram", metrics__durations[i].help);
        prom_text_histogram(out, metrics__durations[i].name, NULL, &metrics__r.durations[i]);
    }
}
