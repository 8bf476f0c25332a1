/* vs_reports.h: what the SEs connected to this node say of their virtual services (the
 * "vs" list of each SE HEARTBEAT: health and counters, engine_vs_runtime in vigil-se), kept
 * per SE, and the runtime a virtual service shows (GET /api/virtualservice, the stream's
 * snapshot): its health over the SEs that serve it and its request and error rates, from
 * the counters of each SE's last two heartbeats. Nothing here is replicated: each node
 * shows what its own sessions heard (every SE has a session to every node). Loop thread
 * only; owned by se_sessions. */
#ifndef VIGIL_SE_CHANNEL_VS_REPORTS_H
#define VIGIL_SE_CHANNEL_VS_REPORTS_H

#include <stdint.h>
#include <jansson.h>

struct vs_reports;

/* An empty set (owned by the caller, vs_reports_free), or NULL (out of memory). */
struct vs_reports *vs_reports_new(void);

void vs_reports_free(struct vs_reports *r);

/* SE SE_UUID (borrowed) reported LIST (borrowed; its HEARTBEAT's "vs", which may be
 * malformed: what is not an object with a string "uuid" is skipped) at NOW_MS (monotonic):
 * it replaces that SE's report, the previous one kept for the rates. */
void vs_reports_put(struct vs_reports *r, const char *se_uuid, const json_t *list,
                    int64_t now_ms);

/* SE SE_UUID's session here closed: its reports are dropped. */
void vs_reports_forget(struct vs_reports *r, const char *se_uuid);

/* The runtime of virtual service VS_UUID from the SEs' latest reports (an SE whose session
 * went silent is forgotten when the session closes, after its miss limit) (a new object): {"health": "UP" | "DEGRADED" (some SEs or servers down) | "DOWN" |
 * "DISABLED", "service_engines" (SEs reporting it), "servers_up", "servers" (summed over
 * them), "requests_per_s", "errors_per_s" (5xx; null until an SE reported twice)}; or
 * NULL when no SE reported it. */
json_t *vs_reports_runtime(const struct vs_reports *r, const char *vs_uuid);

#endif
