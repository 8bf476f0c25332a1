/* metrics.h: vigild's counters and histograms, counted into by the layers above (the store,
 * consensus, the API) through the small functions below, and rendered as Prometheus text
 * by GET /metrics (api/api_metrics.c, which adds the gauges it reads from the parts at
 * scrape time). Layer 0.5: it includes only src/common/, so that every controller layer
 * may count into it. One registry per process, counting since its start. Loop thread only
 * (no locks: vigild has one loop). */
#ifndef VIGIL_CONTROLLER_METRICS_H
#define VIGIL_CONTROLLER_METRICS_H

#include <stdint.h>
#include <stdio.h>

/* What became of a proposal (cluster_propose), one label value each. */
enum metrics_proposal_outcome {
    METRICS_PROPOSAL_COMMITTED,       /* applied, its callback got a result */
    METRICS_PROPOSAL_FAILED,          /* in the log, but raft failed it (lost leadership...) */
    METRICS_PROPOSAL_NOT_LEADER,      /* refused before the log: not the leader */
    METRICS_PROPOSAL_NO_SPACE,        /* refused before the log: the disk is full */
    METRICS_PROPOSAL_NO_QUORUM,       /* refused before the log: raft would not take it */
    METRICS_PROPOSAL_SHUTDOWN,        /* refused before the log: the node is stopping */
    METRICS_PROPOSAL_OTHER,           /* refused before the log: out of memory, ... */
    METRICS_PROPOSAL__COUNT
};

/* The duration histograms, in seconds. */
enum metrics_duration {
    METRICS_WRITE,            /* a proposal on the leader, from cluster_propose to applied */
    METRICS_APPLY,            /* one raft entry applied to the store (fsm apply) */
    METRICS_SNAPSHOT_TAKE,    /* a snapshot taken: from the store's copy to its finalize */
    METRICS_SNAPSHOT_RESTORE, /* a snapshot installed into the store */
    METRICS_DURATION__COUNT
};

/* Why the API's gate refused a request. */
enum metrics_auth_failure {
    METRICS_AUTH_UNAUTHENTICATED, /* no, bad or expired credentials (401) or a lockout */
    METRICS_AUTH_FORBIDDEN,       /* authenticated, but the role may not (403) */
    METRICS_AUTH_CSRF,            /* a browser session's write without its CSRF proof */
    METRICS_AUTH__COUNT
};

/* The API's path classes (the label path_class of vigil_api_requests_total). */
enum metrics_path_class {
    METRICS_PATH_HEALTHZ,
    METRICS_PATH_METRICS,
    METRICS_PATH_AUTH,      /* login, logout, session, user, token */
    METRICS_PATH_CLUSTER,
    METRICS_PATH_OBJECTS,   /* pool, healthmonitor, virtualservice, serviceengine */
    METRICS_PATH_EVENTS,
    METRICS_PATH_ANALYTICS,
    METRICS_PATH_STREAM,
    METRICS_PATH_INTERNAL,  /* the nodes' own channel */
    METRICS_PATH_UI,
    METRICS_PATH_OTHER,
    METRICS_PATH__COUNT
};

/* The class of PATH (borrowed; an API path without its query). */
enum metrics_path_class metrics_path_class_of(const char *path);

/* Each of these counts one occurrence; a value out of its enum's range is ignored (or, for
 * the path class, counted as "other"). Cheap (an array slot), loop thread. */

/* A proposal ended with OUTCOME (cluster.c: refused at once, or its entry's callback). */
void metrics_count_proposal(enum metrics_proposal_outcome outcome);
/* One duration of WHICH, SECONDS long (a negative one, a clock step, counts as 0). */
void metrics_observe(enum metrics_duration which, double seconds);
/* The leader this node knows changed to a new one (not to "none"). */
void metrics_count_leader_change(void);
/* The API's gate refused a request for WHY (rest.c). */
void metrics_count_auth_failure(enum metrics_auth_failure why);
/* One answer of the API: STATUS (100..599; others count as 0) to a path of CLASS. */
void metrics_count_api_request(enum metrics_path_class cls, unsigned status);
/* An event the store recorded (applied; a duplicate it dropped does not count). */
void metrics_count_event_recorded(void);

/* The seconds since START_NS (a uv_hrtime() reading) until now. */
double metrics_seconds_since(uint64_t start_ns);

/* Writes every counter and histogram above as Prometheus text families into OUT
 * (borrowed), with their HELP and TYPE lines; families with no sample yet still appear. */
void metrics_render(FILE *out);

/* Sets every count back to zero (unit tests). */
void metrics_reset(void);

#endif
