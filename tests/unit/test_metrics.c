/* test_metrics.c: vigild's counters and histograms (controller/metrics/metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/metrics/metrics.h"

static char *render(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    metrics_render(f);
    fclose(f);
    return text;
}

static void test_path_classes(void **state)
{
    static const struct {
        const char *path;
        enum metrics_path_class cls;
    } cases[] = {
        {"/api/healthz", METRICS_PATH_HEALTHZ},   {"/metrics", METRICS_PATH_METRICS},
        {"/api/login", METRICS_PATH_AUTH},        {"/api/token/abc", METRICS_PATH_AUTH},
        {"/api/cluster/runtime", METRICS_PATH_CLUSTER},
        {"/api/pool/x", METRICS_PATH_OBJECTS},    {"/api/serviceengine", METRICS_PATH_OBJECTS},
        {"/api/poolx", METRICS_PATH_OTHER},       {"/api/event", METRICS_PATH_EVENTS},
        {"/api/analytics/logs/summary", METRICS_PATH_ANALYTICS},
        {"/api/stream", METRICS_PATH_STREAM},     {"/api/internal/peer", METRICS_PATH_INTERNAL},
        {"/", METRICS_PATH_UI},                   {"/ui/app.js", METRICS_PATH_UI},
        {"/nothing", METRICS_PATH_OTHER},         {"/metricsx", METRICS_PATH_OTHER},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (metrics_path_class_of(cases[i].path) != cases[i].cls)
            fail_msg("%s: class %d, not %d", cases[i].path, metrics_path_class_of(cases[i].path),
                     cases[i].cls);
}

static void test_counts_render(void **state)
{
    char *t;
    (void)state;
    metrics_reset();
    metrics_count_proposal(METRICS_PROPOSAL_COMMITTED);
    metrics_count_proposal(METRICS_PROPOSAL_COMMITTED);
    metrics_count_proposal(METRICS_PROPOSAL_NO_SPACE);
    metrics_count_proposal(METRICS_PROPOSAL__COUNT); /* out of range: ignored */
    metrics_count_api_request(METRICS_PATH_OBJECTS, 201);
    metrics_count_api_request(METRICS_PATH_OBJECTS, 201);
    metrics_count_api_request(METRICS_PATH_METRICS, 9999); /* counted as code 0 */
    metrics_count_auth_failure(METRICS_AUTH_CSRF);
    metrics_count_leader_change();
    metrics_count_event_recorded();
    metrics_observe(METRICS_WRITE, 0.003);
    metrics_observe(METRICS_WRITE, -1); /* a clock step: counted as 0 */
    t = render();
    assert_non_null(strstr(t, "vigil_raft_proposals_total{outcome=\"committed\"} 2\n"));
    assert_non_null(strstr(t, "vigil_raft_proposals_total{outcome=\"no_space\"} 1\n"));
    assert_non_null(strstr(t, "vigil_api_requests_total{path_class=\"objects\",code=\"201\"} 2\n"));
    assert_non_null(strstr(t, "vigil_api_requests_total{path_class=\"metrics\",code=\"0\"} 1\n"));
    assert_non_null(strstr(t, "vigil_api_auth_failures_total{reason=\"csrf\"} 1\n"));
    assert_non_null(strstr(t, "vigil_raft_leader_changes_total 1\n"));
    assert_non_null(strstr(t, "vigil_events_recorded_total 1\n"));
    assert_non_null(strstr(t, "vigil_write_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(t, "vigil_write_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(t, "vigil_write_duration_seconds_count 2\n"));
    assert_non_null(strstr(t, "# TYPE vigil_snapshot_restore_duration_seconds histogram\n"));
    free(t);
    metrics_reset();
    t = render();
    assert_non_null(strstr(t, "vigil_raft_proposals_total{outcome=\"committed\"} 0\n"));
    assert_null(strstr(t, "vigil_api_requests_total{"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_classes),
        cmocka_unit_test(test_counts_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
