/* api_stream.h: GET /api/stream, the live stream (contract "Web UI and live stream";
 * docs/api.md). Server-Sent Events over the API's HTTP server:
 *   - a "snapshot" message on connect and then every second: {"runtime", "nodes",
 *     "serviceengines", "virtualservices"} as GET /api/cluster/runtime, GET /api/cluster,
 *     GET /api/serviceengine and GET /api/virtualservice show them. One snapshot is built
 *     per second per node and sent to every stream (never one per client);
 *   - an "event" message, "id: <seq>" (the event's replicated seq, store.h: the same on
 *     every node), for each new event as this node applies it, in seq order, once;
 *   - Last-Event-ID (header, or ?last_event_id=): the events after that seq come first,
 *     with no gap and no repeat, then the live ones;
 *   - ": ping" every API_STREAM_PING_MS.
 * Each client has API_STREAM_BUFFER_BYTES of unsent data at most: one that does not read
 * is dropped, never waited for. At most API_STREAM_MAX_CLIENTS streams per node (503
 * beyond). Loop thread only. */
#ifndef VIGIL_API_STREAM_H
#define VIGIL_API_STREAM_H

#include <uv.h>

#include "controller/api/api.h"

#define API_STREAM_MAX_CLIENTS 256
#define API_STREAM_BUFFER_BYTES ((size_t)1024 * 1024)
#define API_STREAM_SNAPSHOT_MS 1000
#define API_STREAM_PING_MS 15000

struct api_stream;

/* Creates the stream area on LOOP over STORE (it takes the store's one event watch),
 * building snapshots from CLUSTER and OBJECTS (the areas whose GET answers they show).
 * All borrowed; they must outlive it. Returns NULL when out of memory. */
struct api_stream *api_stream_new(uv_loop_t *loop, struct store *store,
                                  struct api_cluster *cluster, struct api_objects *objects);

/* Adds the route "stream" (exact) to REST. Returns 0 or VIGIL_ETOOBIG (the table is full). */
int api_stream_register(struct rest *rest, struct api_stream *area);

/* Ends every stream (each finishes once what it was sent is out), refuses new ones (503),
 * gives the store's event watch back and frees AREA once its timer closed (from the loop).
 * Call it before the HTTP server closes. */
void api_stream_close(struct api_stream *area);

#endif
