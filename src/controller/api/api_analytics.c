/* api_analytics.c: GET /api/analytics/... (contract "Analytics"; docs/api.md). Every node
 * answers for all of them: it answers from its own log store, asks every other member for
 * its part (GET /api/internal/analytics/..., the node-local variant, with this node's
 * credential, over the HTTP client the nodes already talk through), and merges; a member
 * that does not answer in time is named in "unreachable". */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/latency.h"
#include "common/timeutil.h"
#include "controller/api/api.h"

/* How long a member has to answer its part. */
#define API_ANALYTICS__PEER_MS 2000
/* The most points a metrics time series may have. */
#define API_ANALYTICS__MAX_POINTS 10000

enum api_analytics__kind { API_ANALYTICS_LOGS, API_ANALYTICS_SUMMARY, API_ANALYTICS_METRICS };

/* A request's parameters, checked. */
struct api_analytics__query {
    enum api_analytics__kind kind;
    char vs_uuid[OBJ_UUID_LEN + 1];
    char client_ip[INET6_ADDRSTRLEN];
    struct log_store_filter filter;
    int64_t limit;   /* logs: page_size */
    int64_t step_ms; /* metrics */
};

/* One merged answer in the making (owned by api_analytics__on_public until every part is in;
 * api_analytics__finish answers and frees it). The request's user slot is not used: it
 * holds rest's call (the caller's identity). */
struct api_analytics__merge {
    struct api_analytics *area;
    struct http_request *req;
    struct api_analytics__query q;
    json_t *parts;       /* the members' answers (and this node's), in arrival order */
    json_t *unreachable; /* [node ids] */
    unsigned waiting;
};

/* One member's call: its merge and id. */
struct api_analytics__call {
    struct api_analytics__merge *merge;
    uint64_t node_id;
};

/* --- parameters ---------------------------------------------------------------------- */

/* Parses the RFC 3339 parameter NAME of REQ into *MS (unchanged when absent). Returns 0 or
 * answers 400 and returns VIGIL_EINVAL. */
static int api_analytics__time(struct http_request *req, const char *name, int64_t *ms)
{
    const char *v = http_request_query(req, name);
    if (v != NULL && time_parse_rfc3339(v, ms) != 0) {
        http_request_respond_error(req, 400, "%s: not an RFC 3339 time (e.g. "
                                   "2026-12-04T06:00:00.000Z)", name);
        return VIGIL_EINVAL;
    }
    return 0;
}

/* A whole number parameter NAME in [LO, HI] into *OUT (unchanged when absent). */
static int api_analytics__number(struct http_request *req, const char *name, int64_t lo,
                                 int64_t hi, int64_t *out)
{
    const char *v = http_request_query(req, name);
    char *end;
    long long x;
    if (v == NULL)
        return 0;
    x = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        http_request_respond_error(req, 400, "%s: must be a whole number from %lld to %lld", name,
                                   (long long)lo, (long long)hi);
        return VIGIL_EINVAL;
    }
    *out = x;
    return 0;
}

/* The filter parameters of REQ into Q: since, until, status_class, client_ip, and for logs
 * page_size, for metrics step (metrics refuse status_class and client_ip). Returns 0, or
 * answered 400 and VIGIL_EINVAL. */
static int api_analytics__filter(struct http_request *req, struct api_analytics__query *q)
{
    const char *cls = http_request_query(req, "status_class");
    const char *ip = http_request_query(req, "client_ip");
    int64_t now = time_now_ms(), step_s = 60;
    unsigned char addr[sizeof(struct in6_addr)];

    q->filter.vs_uuid = q->vs_uuid;
    q->filter.since_ms = q->kind == API_ANALYTICS_METRICS ? now - 3600 * 1000 : 0;
    q->filter.until_ms = q->kind == API_ANALYTICS_METRICS ? now : INT64_MAX / 2;
    q->limit = 100;
    if (api_analytics__time(req, "since", &q->filter.since_ms) != 0 ||
        api_analytics__time(req, "until", &q->filter.until_ms) != 0 ||
        api_analytics__number(req, "page_size", 1, 1000, &q->limit) != 0 ||
        api_analytics__number(req, "step", 1, 86400, &step_s) != 0)
        return VIGIL_EINVAL;
    if (q->filter.since_ms > q->filter.until_ms) {
        http_request_respond_error(req, 400, "since: after until");
        return VIGIL_EINVAL;
    }
    q->step_ms = step_s * 1000;
    if (q->kind == API_ANALYTICS_METRICS &&
        (q->filter.until_ms - q->filter.since_ms) / q->step_ms >= API_ANALYTICS__MAX_POINTS) {
        http_request_respond_error(req, 400, "step: gives more than %d points from since to "
                                   "until; choose a larger step", API_ANALYTICS__MAX_POINTS);
        return VIGIL_EINVAL;
    }
    if (q->kind == API_ANALYTICS_METRICS && (cls != NULL || ip != NULL)) {
        /* The metrics are the SEs' per-second aggregates: neither is in them. */
        http_request_respond_error(req, 400, "%s: metrics cannot be filtered by %s (they are "
                                   "per-second aggregates of a virtual service); the logs "
                                   "endpoint can", cls != NULL ? "status_class" : "client_ip",
                                   cls != NULL ? "status class" : "client IP");
        return VIGIL_EINVAL;
    }
    if (cls != NULL) {
        if (strlen(cls) != 3 || cls[0] < '2' || cls[0] > '5' || strcmp(cls + 1, "xx") != 0) {
            http_request_respond_error(req, 400, "status_class: must be 2xx, 3xx, 4xx or 5xx");
            return VIGIL_EINVAL;
        }
        q->filter.status_class = cls[0] - '0';
    }
    if (ip != NULL) {
        if (strlen(ip) >= sizeof q->client_ip ||
            (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
            http_request_respond_error(req, 400, "client_ip: not an IP address");
            return VIGIL_EINVAL;
        }
        snprintf(q->client_ip, sizeof q->client_ip, "%s", ip);
        q->filter.client_ip = q->client_ip;
    }
    return 0;
}

/* SUB ("logs/virtualservice/<uuid>", "logs/summary", "metrics/virtualservice/<uuid>") and
 * REQ's parameters into Q. Returns 1 (Q is good), 0 (no such path), -1 (answered 400). */
static int api_analytics__parse(struct http_request *req, const char *sub,
                                struct api_analytics__query *q)
{
    static const char logs_vs[] = "logs/virtualservice/", metrics_vs[] = "metrics/virtualservice/";
    const char *uuid = NULL;

    memset(q, 0, sizeof *q);
    if (strcmp(sub, "logs/summary") == 0) {
        q->kind = API_ANALYTICS_SUMMARY;
        return 1;
    }
    if (strncmp(sub, logs_vs, sizeof logs_vs - 1) == 0) {
        q->kind = API_ANALYTICS_LOGS;
        uuid = sub + sizeof logs_vs - 1;
    } else if (strncmp(sub, metrics_vs, sizeof metrics_vs - 1) == 0) {
        q->kind = API_ANALYTICS_METRICS;
        uuid = sub + sizeof metrics_vs - 1;
    } else {
        return 0;
    }
    if (!obj_uuid_valid(uuid)) {
        http_request_respond_error(req, 400, "virtual service: '%.80s' is not a uuid", uuid);
        return -1;
    }
    snprintf(q->vs_uuid, sizeof q->vs_uuid, "%s", uuid);
    return api_analytics__filter(req, q) == 0 ? 1 : -1;
}

/* --- this node's part ---------------------------------------------------------------- */

/* This node's answer to Q from its own store, or NULL (no store, or it failed). */
static json_t *api_analytics__local(struct api_analytics *area, const struct api_analytics__query *q)
{
    int64_t total = 0;
    json_t *list;

    if (area->log_store == NULL)
        return NULL;
    switch (q->kind) {
    case API_ANALYTICS_SUMMARY:
        list = log_store_summary(area->log_store);
        return list != NULL ? api_collection(list, (int64_t)json_array_size(list)) : NULL;
    case API_ANALYTICS_LOGS:
        list = log_store_query(area->log_store, &q->filter, q->limit, &total);
        return list != NULL ? api_collection(list, total) : NULL;
    case API_ANALYTICS_METRICS:
        return log_store_metrics(area->log_store, &q->filter, q->step_ms);
    }
    return NULL;
}

/* --- merging --------------------------------------------------------------------------- */

/* Newest first: timestamp descending, then se_name, then seq descending. */
static int api_analytics__newer(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *tx = json_string_value(json_object_get(x, "timestamp"));
    const char *ty = json_string_value(json_object_get(y, "timestamp"));
    int c = strcmp(ty != NULL ? ty : "", tx != NULL ? tx : "");
    json_int_t sx, sy;
    if (c != 0)
        return c;
    c = strcmp(json_string_value(json_object_get(x, "se_name")) ?: "",
               json_string_value(json_object_get(y, "se_name")) ?: "");
    if (c != 0)
        return c;
    sx = json_integer_value(json_object_get(x, "seq"));
    sy = json_integer_value(json_object_get(y, "seq"));
    return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static json_t *api_analytics__merge_logs(json_t *parts, int64_t limit)
{
    json_t *all = json_array(), *part, *r, **sorted, *out = json_array();
    json_int_t total = 0;
    size_t i, j, n;

    json_array_foreach(parts, i, part) {
        total += json_integer_value(json_object_get(part, "count"));
        json_array_foreach(json_object_get(part, "results"), j, r)
            json_array_append(all, r);
    }
    n = json_array_size(all);
    sorted = calloc(n ? n : 1, sizeof *sorted);
    for (i = 0; sorted != NULL && i < n; i++)
        sorted[i] = json_array_get(all, i);
    if (sorted != NULL)
        qsort(sorted, n, sizeof *sorted, api_analytics__newer);
    for (i = 0; sorted != NULL && i < n && (int64_t)i < limit; i++)
        json_array_append(out, sorted[i]);
    free(sorted);
    json_decref(all);
    return json_pack("{s:I, s:o}", "count", total, "results", out);
}

static json_t *api_analytics__merge_summary(json_t *parts)
{
    json_t *by_name = json_object(), *part, *r, *list = json_array(), *m;
    const char *name;
    size_t i, j;

    json_array_foreach(parts, i, part) {
        json_array_foreach(json_object_get(part, "results"), j, r) {
            const char *se = json_string_value(json_object_get(r, "se_name"));
            json_t *first = json_object_get(r, "first_seq"), *last = json_object_get(r, "last_seq");
            if (se == NULL)
                continue;
            m = json_object_get(by_name, se);
            if (m == NULL) {
                json_object_set_new(by_name, se, json_deep_copy(r));
                continue;
            }
            json_object_set_new(m, "records", json_integer(json_integer_value(json_object_get(m, "records")) +
                                                           json_integer_value(json_object_get(r, "records"))));
            json_object_set_new(m, "duplicates_rejected",
                                json_integer(json_integer_value(json_object_get(m, "duplicates_rejected")) +
                                             json_integer_value(json_object_get(r, "duplicates_rejected"))));
            if (json_is_integer(first) && (!json_is_integer(json_object_get(m, "first_seq")) ||
                                           json_integer_value(first) < json_integer_value(json_object_get(m, "first_seq"))))
                json_object_set(m, "first_seq", first);
            if (json_is_integer(last) && (!json_is_integer(json_object_get(m, "last_seq")) ||
                                          json_integer_value(last) > json_integer_value(json_object_get(m, "last_seq"))))
                json_object_set(m, "last_seq", last);
        }
    }
    json_object_foreach(by_name, name, m) {
        json_int_t n = json_integer_value(json_object_get(m, "records"));
        json_int_t span = json_integer_value(json_object_get(m, "last_seq")) -
                          json_integer_value(json_object_get(m, "first_seq")) + 1;
        json_object_set_new(m, "missing", json_integer(n > 0 && span > n ? span - n : 0));
        json_array_append(list, m);
    }
    json_decref(by_name);
    return api_collection(list, (int64_t)json_array_size(list));
}

/* Adds the integer members of FROM to those of INTO (both objects). */
static void api_analytics__add_counts(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v) {
        if (json_is_integer(v))
            json_object_set_new(into, k, json_integer(json_integer_value(json_object_get(into, k)) +
                                                      json_integer_value(v)));
    }
}

/* The latency at quantile P of HIST (buckets summed over the nodes), or null. */
static json_t *api_analytics__quantile(int64_t *hist, int64_t n, double p)
{
    int64_t rank = (int64_t)ceil(p * (double)n), seen = 0;
    if (n == 0)
        return json_null();
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank)
            return json_real(round(latency_bucket_upper(b) * 1000) / 1000);
    }
    return json_null();
}

/* Oldest first: "time_ms" ascending. */
static int api_analytics__older(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "time_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "time_ms"));
    return x < y ? -1 : x > y;
}

/* Replaces POINT's "latency_histogram" (buckets summed over the nodes) by its
 * "latency_p50_ms" and "latency_p99_ms" (null without requests). */
static void api_analytics__point_latency(json_t *point)
{
    int64_t hist[LATENCY_BUCKETS] = {0}, n = 0;
    const char *k;
    json_t *v;

    json_object_foreach(json_object_get(point, "latency_histogram"), k, v) {
        long b = strtol(k, NULL, 10);
        if (b >= 0 && b < LATENCY_BUCKETS && json_is_integer(v)) {
            hist[b] += json_integer_value(v);
            n += json_integer_value(v);
        }
    }
    json_object_del(point, "latency_histogram");
    json_object_set_new(point, "latency_p50_ms", api_analytics__quantile(hist, n, 0.50));
    json_object_set_new(point, "latency_p99_ms", api_analytics__quantile(hist, n, 0.99));
}

/* The merged POINTS (an object of series points, in the order the parts brought them)
 * into SERIES in time order, each with "time" (RFC 3339) for "time_ms" and its latency
 * percentiles for its histogram. */
static void api_analytics__series_in_order(json_t *points, json_t *series)
{
    size_t n = json_object_size(points), i = 0;
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted), *p;
    const char *k;

    if (sorted == NULL)
        return;
    json_object_foreach(points, k, p)
        sorted[i++] = p;
    qsort(sorted, n, sizeof *sorted, api_analytics__older);
    for (i = 0; i < n; i++) {
        char ts[TIME_RFC3339_LEN];
        time_format_rfc3339(json_integer_value(json_object_get(sorted[i], "time_ms")), ts);
        json_object_set_new(sorted[i], "time", json_string(ts));
        json_object_del(sorted[i], "time_ms");
        api_analytics__point_latency(sorted[i]);
        json_array_append(series, sorted[i]);
    }
    free(sorted);
}

static json_t *api_analytics__merge_metrics(json_t *parts, const struct api_analytics__query *q)
{
    json_t *totals = json_object(), *classes = json_object(), *points = json_object();
    json_t *part, *p, *series = json_array(), *out;
    int64_t *hist = calloc(LATENCY_BUCKETS, sizeof *hist), n = 0;
    const char *k;
    size_t i, j;
    json_t *v;

    json_array_foreach(parts, i, part) {
        json_t *copy = json_object();
        json_object_set(copy, "requests", json_object_get(part, "requests"));
        json_object_set(copy, "bytes_in", json_object_get(part, "bytes_in"));
        json_object_set(copy, "bytes_out", json_object_get(part, "bytes_out"));
        api_analytics__add_counts(totals, copy);
        json_decref(copy);
        api_analytics__add_counts(classes, json_object_get(part, "status_classes"));
        json_object_foreach(json_object_get(part, "latency_histogram"), k, v) {
            long b = strtol(k, NULL, 10);
            if (hist != NULL && b >= 0 && b < LATENCY_BUCKETS && json_is_integer(v)) {
                hist[b] += json_integer_value(v);
                n += json_integer_value(v);
            }
        }
        json_array_foreach(json_object_get(part, "series"), j, p) {
            char key[32];
            json_t *have;
            snprintf(key, sizeof key, "%020lld", (long long)json_integer_value(json_object_get(p, "time_ms")));
            have = json_object_get(points, key);
            if (have == NULL) {
                json_object_set_new(points, key, json_deep_copy(p));
            } else {
                api_analytics__add_counts(have, p);
                api_analytics__add_counts(json_object_get(have, "latency_histogram"),
                                          json_object_get(p, "latency_histogram"));
            }
        }
    }
    api_analytics__series_in_order(points, series);
    out = json_pack("{s:s, s:I, s:O, s:{s:O, s:O}, s:O, s:O, s:O, s:{s:o, s:o, s:o}, s:o}",
                    "virtualservice", q->vs_uuid, "step", (json_int_t)(q->step_ms / 1000),
                    "requests", json_object_get(totals, "requests") ?: json_integer(0), "errors",
                    "4xx", json_object_get(classes, "4xx") ?: json_integer(0), "5xx",
                    json_object_get(classes, "5xx") ?: json_integer(0), "status_classes", classes,
                    "bytes_in", json_object_get(totals, "bytes_in") ?: json_integer(0), "bytes_out",
                    json_object_get(totals, "bytes_out") ?: json_integer(0), "latency_ms", "p50",
                    api_analytics__quantile(hist, n, 0.50), "p90",
                    api_analytics__quantile(hist, n, 0.90), "p99",
                    api_analytics__quantile(hist, n, 0.99), "series", series);
    {
        char since[TIME_RFC3339_LEN], until[TIME_RFC3339_LEN];
        time_format_rfc3339(q->filter.since_ms, since);
        time_format_rfc3339(q->filter.until_ms, until);
        json_object_set_new(out, "since", json_string(since));
        json_object_set_new(out, "until", json_string(until));
    }
    free(hist);
    json_decref(totals);
    json_decref(classes);
    json_decref(points);
    json_object_set_new(out, "nodes", json_integer((json_int_t)json_array_size(parts)));
    return out;
}

/* Every part is in: the merged answer, with "unreachable"; M is freed. */
static void api_analytics__finish(struct api_analytics__merge *m)
{
    json_t *out;
    switch (m->q.kind) {
    case API_ANALYTICS_LOGS:
        out = api_analytics__merge_logs(m->parts, m->q.limit);
        break;
    case API_ANALYTICS_SUMMARY:
        out = api_analytics__merge_summary(m->parts);
        break;
    default:
        out = api_analytics__merge_metrics(m->parts, &m->q);
    }
    json_object_set(out, "unreachable", m->unreachable);
    http_request_respond(m->req, 200, out); /* the request stays until answered */
    json_decref(m->parts);
    json_decref(m->unreachable);
    free(m);
}

static void api_analytics__on_part(void *data, int err, long status, const char *body,
                                   size_t len, const char *headers)
{
    struct api_analytics__call *call = data;
    struct api_analytics__merge *m = call->merge;
    json_t *part = err == 0 && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    (void)headers;

    if (json_is_object(part))
        json_array_append_new(m->parts, part);
    else {
        json_decref(part);
        json_array_append_new(m->unreachable, json_integer((json_int_t)call->node_id));
    }
    free(call);
    if (--m->waiting == 0)
        api_analytics__finish(m);
}

/* The query string of Q for the members (the parameters as this node read them). */
static void api_analytics__query_string(const struct api_analytics__query *q, char *out, size_t len)
{
    char since[TIME_RFC3339_LEN], until[TIME_RFC3339_LEN];
    int n;
    time_format_rfc3339(q->filter.since_ms, since);
    time_format_rfc3339(q->filter.until_ms < INT64_MAX / 4 ? q->filter.until_ms
                                                           : (int64_t)253402300799000, until);
    n = snprintf(out, len, "?since=%s&until=%s&page_size=%lld&step=%lld", since, until,
                 (long long)q->limit, (long long)(q->step_ms / 1000));
    if (q->filter.status_class > 0 && n > 0 && (size_t)n < len)
        n += snprintf(out + n, len - (size_t)n, "&status_class=%dxx", q->filter.status_class);
    if (q->filter.client_ip != NULL && n > 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, "&client_ip=%s", q->filter.client_ip);
}

/* Asks member ID (its API address from the store) for its part of M: SUB with QUERY. A
 * member that cannot be asked counts as unreachable at once. */
static void api_analytics__ask(struct api_analytics__merge *m, uint64_t id, const char *sub,
                               const char *query)
{
    struct api_analytics *area = m->area;
    char addr[128], url[600];
    const char *headers[2] = {area->node_header != NULL && area->node_header[0] ? area->node_header
                                                                                : NULL, NULL};
    struct api_analytics__call *call = malloc(sizeof *call);

    if (call == NULL || !store_node_api_address(area->store, id, addr, sizeof addr)) {
        free(call);
        json_array_append_new(m->unreachable, json_integer((json_int_t)id));
        return;
    }
    call->merge = m;
    call->node_id = id;
    snprintf(url, sizeof url, "%s://%s/api/internal/analytics/%s%s", area->scheme, addr, sub, query);
    m->waiting++;
    if (http_client_request(area->client, "GET", url, headers, NULL, 0, API_ANALYTICS__PEER_MS,
                            api_analytics__on_part, call) != 0) {
        m->waiting--;
        free(call);
        json_array_append_new(m->unreachable, json_integer((json_int_t)id));
    }
}

/* --- routes ------------------------------------------------------------------------------ */

/* GET /api/analytics/SUB: this node's part and every other member's, merged. */
static int api_analytics__on_public(void *data, struct http_request *req, const char *sub)
{
    struct api_analytics *area = data;
    struct cluster_member members[CLUSTER_MAX_NODES];
    struct api_analytics__merge *m;
    char query[400];
    unsigned n;
    int parsed;
    json_t *own;

    if (strcmp(http_request_method(req), "GET") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /api/analytics",
                                   http_request_method(req));
        return 1;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        http_request_respond_error(req, 503, "out of memory");
        return 1;
    }
    parsed = api_analytics__parse(req, sub, &m->q);
    if (parsed <= 0) {
        free(m);
        if (parsed == 0)
            http_request_respond_error(req, 404, "no such analytics resource");
        return 1;
    }
    m->area = area;
    m->req = req;
    m->parts = json_array();
    m->unreachable = json_array();
    own = api_analytics__local(area, &m->q);
    if (own != NULL)
        json_array_append_new(m->parts, own);
    else
        json_array_append_new(m->unreachable, json_integer((json_int_t)area->node_id));
    api_analytics__query_string(&m->q, query, sizeof query);
    n = cluster_members(area->cluster, members, CLUSTER_MAX_NODES);
    m->waiting = 1; /* held until every call started */
    for (unsigned i = 0; i < n; i++)
        if (members[i].id != area->node_id)
            api_analytics__ask(m, members[i].id, sub, query);
    if (--m->waiting == 0)
        api_analytics__finish(m);
    return 1;
}

/* GET /api/internal/analytics/SUB: this node's own part, in the mergeable form (the
 * nodes' credential only: auth_authorize). */
static int api_analytics__on_internal(void *data, struct http_request *req, const char *sub)
{
    struct api_analytics *area = data;
    struct api_analytics__query q;
    int parsed;
    json_t *own;

    if (strcmp(http_request_method(req), "GET") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed here", http_request_method(req));
        return 1;
    }
    parsed = api_analytics__parse(req, sub, &q);
    if (parsed <= 0) {
        if (parsed == 0)
            http_request_respond_error(req, 404, "no such analytics resource");
        return 1;
    }
    own = api_analytics__local(area, &q);
    if (own == NULL)
        http_request_respond_error(req, 503, "this node has no log store");
    else
        http_request_respond(req, 200, own);
    return 1;
}

int api_analytics_register(struct rest *rest, struct api_analytics *area)
{
    int rv = rest_add_route(rest, "internal/analytics", REST_MATCH_UNDER, api_analytics__on_internal,
                            area);
    return rv != 0 ? rv : rest_add_route(rest, "analytics", REST_MATCH_UNDER,
                                         api_analytics__on_public, area);
}
