/* api_stream.c: GET /api/stream, the live stream (api_stream.h). */
#include "controller/api/api_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/net/sse.h"

/* Events read from the store at once, and pages a catching-up client gets per turn (while
 * its buffer is under a quarter full). */
#define API_STREAM__PAGE 256
#define API_STREAM__CATCH_UP_PAGES 8
/* The objects of each type a snapshot shows (the API's largest page). */
#define API_STREAM__SNAPSHOT_OBJECTS 1000

/* One client: its stream and the seq of the last event it was sent (or told to start
 * after). */
struct api__client {
    struct api__client *prev, *next;
    struct api_stream *area;
    struct http_stream *stream; /* held until gone or dropped */
    uint64_t cursor;
    char peer[48];
};

struct api_stream {
    uv_loop_t *loop;
    struct store *store;          /* borrowed */
    struct api_cluster *cluster;  /* borrowed */
    struct api_objects *objects;  /* borrowed */
    uv_timer_t tick;              /* snapshots and pings, while a client is connected */
    int ticking;
    int closing;
    int64_t last_ping_ms;
    struct api__client *clients;
    unsigned n_clients;
    uint64_t seq;                 /* the newest event seq the clients were offered */
    struct buf snapshot;          /* the shared snapshot message of this second */
    int snapshot_fresh;           /* SNAPSHOT was built since the last tick */
};

/* --- clients --------------------------------------------------------------------------- */

static void api__client_unlink(struct api__client *c)
{
    struct api_stream *area = c->area;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        area->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    area->n_clients--;
    free(c);
}

/* The client's connection ended (it left, or the server closes). */
static void api__on_gone(struct http_stream *stream, void *data)
{
    api__client_unlink(data);
}

/* Ends C's stream and forgets C (a client over its buffer, or the area closing). */
static void api__client_end(struct api__client *c, const char *why)
{
    if (why != NULL)
        vlog_warn("stream: dropping the client at %s: %s", c->peer, why);
    http_stream_end(c->stream);
    api__client_unlink(c);
}

/* Sends LEN bytes of TEXT to C; a client that cannot take them is dropped. Returns 0, or
 * -1 when C is gone (freed). */
static int api__send(struct api__client *c, const char *text, size_t len)
{
    int rv = http_stream_write(c->stream, text, len);
    if (rv == 0)
        return 0;
    api__client_end(c, rv == VIGIL_ETOOBIG ? "it does not read (over its buffer's cap)"
                                           : vigil_strerror(rv));
    return -1;
}

/* --- messages -------------------------------------------------------------------------- */

/* Appends the "event" message of ITEM ({"seq", "event"} from store_events_after) to OUT
 * and returns its seq (0 when it could not be framed). */
static uint64_t api__frame_event(struct buf *out, json_t *item)
{
    json_int_t seq = json_integer_value(json_object_get(item, "seq"));
    char *text = json_dumps(json_object_get(item, "event"), JSON_COMPACT | JSON_ENSURE_ASCII);
    int rv = text != NULL && seq > 0
                 ? sse_append_message(out, "event", (uint64_t)seq, text, strlen(text))
                 : VIGIL_ENOMEM;
    free(text);
    return rv == 0 ? (uint64_t)seq : 0;
}

/* Rebuilds the shared snapshot message from the areas' own GET answers. */
static void api__build_snapshot(struct api_stream *area)
{
    int64_t total;
    json_t *doc = api_cluster_doc(area->cluster);
    json_t *snap = json_pack(
        "{s:{s:O, s:O}, s:o, s:O, s:o, s:o}", "cluster", "name", json_object_get(doc, "name"),
        "virtual_ip", json_object_get(doc, "virtual_ip"), "runtime",
        api_cluster_runtime(area->cluster), "nodes", json_object_get(doc, "nodes"),
        "serviceengines",
        api_objects_list(area->objects, OBJ_SERVICEENGINE, 0, API_STREAM__SNAPSHOT_OBJECTS,
                         &total),
        "virtualservices",
        api_objects_list(area->objects, OBJ_VIRTUALSERVICE, 0, API_STREAM__SNAPSHOT_OBJECTS,
                         &total));
    char *text = snap != NULL ? json_dumps(snap, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

    json_decref(doc);
    json_decref(snap);
    area->snapshot.len = 0;
    if (text == NULL || sse_append_message(&area->snapshot, "snapshot", 0, text,
                                           strlen(text)) != 0)
        vlog_error("stream: out of memory building a snapshot");
    free(text);
    area->snapshot_fresh = 1;
}

/* Appends a "gap" message to OUT when LIST (store_events_after's, after CURSOR) does not
 * start right after CURSOR: the events between were pruned (the store keeps the newest
 * STORE_EVENTS_KEEP), so a client resuming from CURSOR can tell it missed some. */
static void api__frame_gap(struct buf *out, uint64_t cursor, json_t *list)
{
    uint64_t first = (uint64_t)json_integer_value(json_object_get(json_array_get(list, 0), "seq"));
    char text[160];

    if (first == 0 || first == cursor + 1)
        return;
    snprintf(text, sizeof text, "{\"after\":%llu,\"next\":%llu,\"missed\":%llu}",
             (unsigned long long)cursor, (unsigned long long)first,
             (unsigned long long)(first - cursor - 1));
    if (sse_append_message(out, "gap", 0, text, strlen(text)) != 0)
        vlog_error("stream: out of memory framing a gap");
}

/* Sends C the events after its cursor, up to the area's newest, while its buffer has room
 * (a quarter of its cap) and for a few pages at most: a client far behind catches up over
 * the next turns, never with one burst. Returns 0, or -1 when C was dropped. */
static int api__catch_up(struct api__client *c)
{
    struct api_stream *area = c->area;
    for (int page = 0; page < API_STREAM__CATCH_UP_PAGES && c->cursor < area->seq &&
                       http_stream_pending(c->stream) < API_STREAM_BUFFER_BYTES / 4;
         page++) {
        json_t *list = store_events_after(area->store, c->cursor, API_STREAM__PAGE), *item;
        struct buf out = {0};
        uint64_t last = c->cursor;
        size_t i;
        int rv = 0;

        api__frame_gap(&out, c->cursor, list);
        json_array_foreach(list, i, item)
        {
            if ((uint64_t)json_integer_value(json_object_get(item, "seq")) > area->seq)
                break;
            last = api__frame_event(&out, item);
            if (last == 0)
                break;
        }
        json_decref(list);
        if (last == 0 || last == c->cursor) {
            /* nothing left (the rest was pruned) or no memory: live from here */
            buf_free(&out);
            c->cursor = area->seq;
            break;
        }
        c->cursor = last;
        rv = api__send(c, out.data, out.len);
        buf_free(&out);
        if (rv != 0)
            return -1;
    }
    return 0;
}

/* --- what every client gets ------------------------------------------------------------ */

/* The store applied an entry that recorded events: each live client (its cursor at the
 * area's last newest seq or past it) gets them, framed once for all; a client behind, or
 * every client after a jump of more than a page (a snapshot install), catches up. */
static void api__on_events(void *data)
{
    struct api_stream *area = data;
    uint64_t newest = store_events_newest_seq(area->store), before = area->seq;
    struct buf out = {0};
    json_t *list = NULL, *item;
    size_t i, *ends = NULL, n = 0;
    uint64_t *seqs = NULL;

    area->seq = newest;
    if (area->clients == NULL || newest <= before)
        return;
    if (newest - before <= API_STREAM__PAGE) {
        list = store_events_after(area->store, before, API_STREAM__PAGE);
        ends = calloc(json_array_size(list) + 1, sizeof *ends);
        seqs = calloc(json_array_size(list) + 1, sizeof *seqs);
        json_array_foreach(list, i, item)
        {
            if (ends == NULL || seqs == NULL || (seqs[n] = api__frame_event(&out, item)) == 0)
                break;
            ends[n++] = out.len;
        }
    }
    for (struct api__client *c = area->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->cursor >= before && n > 0) {
            size_t from = 0, k = 0; /* skip what C has (it resumed past BEFORE) */
            while (k < n && seqs[k] <= c->cursor)
                from = ends[k++];
            if (k < n && api__send(c, out.data + from, ends[n - 1] - from) != 0)
                continue;
            if (seqs[n - 1] > c->cursor)
                c->cursor = seqs[n - 1];
        }
        api__catch_up(c);
    }
    json_decref(list);
    free(ends);
    free(seqs);
    buf_free(&out);
}

/* Every second while there are clients: the shared snapshot to each, the catching-up ones
 * a few more pages, and a ping every API_STREAM_PING_MS. */
static void api__on_tick(uv_timer_t *t)
{
    struct api_stream *area = t->data;
    int64_t now = time_mono_ms();
    int ping = now - area->last_ping_ms >= API_STREAM_PING_MS;
    struct buf comment = {0};

    if (area->clients == NULL) {
        uv_timer_stop(&area->tick);
        area->ticking = 0;
        return;
    }
    api__build_snapshot(area);
    if (ping) {
        area->last_ping_ms = now;
        sse_append_comment(&comment, "ping");
    }
    for (struct api__client *c = area->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (api__send(c, area->snapshot.data, area->snapshot.len) != 0)
            continue;
        if (ping && api__send(c, comment.data, comment.len) != 0)
            continue;
        api__catch_up(c);
    }
    buf_free(&comment);
    area->snapshot_fresh = 0;
}

/* --- GET /api/stream ------------------------------------------------------------------- */

/* The seq a client resumes after (Last-Event-ID, or ?last_event_id=): *OUT, 0 when it gave
 * none (then it starts with the next new event). Returns 0, or VIGIL_EINVAL. */
static int api__resume_point(struct http_request *req, int *given, uint64_t *out)
{
    const char *text = http_request_header(req, "Last-Event-ID");
    char *end;
    if (text == NULL)
        text = http_request_query(req, "last_event_id");
    *given = text != NULL && text[0] != '\0';
    *out = 0;
    if (!*given)
        return 0;
    errno = 0;
    *out = strtoull(text, &end, 10);
    return *end != '\0' || errno != 0 || text[0] == '-' ? VIGIL_EINVAL : 0;
}

static void api__connect(struct api_stream *area, struct http_request *req)
{
    struct api__client *c;
    uint64_t after;
    int given;

    if (area->closing) {
        http_request_respond_error(req, 503, "this node is stopping");
        return;
    }
    if (area->n_clients >= API_STREAM_MAX_CLIENTS) {
        http_request_respond_error(req, 503, "too many streams on this node (at most %u)",
                                   API_STREAM_MAX_CLIENTS);
        return;
    }
    if (api__resume_point(req, &given, &after) != 0) {
        http_request_respond_error(req, 400, "Last-Event-ID: not an event id (a whole number)");
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    c->area = area;
    c->cursor = given ? after : area->seq;
    snprintf(c->peer, sizeof c->peer, "%s", http_request_peer(req));
    http_request_add_header(req, "X-Accel-Buffering", "no");
    c->stream = http_request_respond_stream(req, "text/event-stream", API_STREAM_BUFFER_BYTES,
                                            api__on_gone, c);
    if (c->stream == NULL) {
        free(c);
        return;
    }
    c->next = area->clients;
    if (area->clients != NULL)
        area->clients->prev = c;
    area->clients = c;
    area->n_clients++;
    if (!area->snapshot_fresh)
        api__build_snapshot(area);
    if (api__send(c, area->snapshot.data, area->snapshot.len) != 0 || api__catch_up(c) != 0)
        return;
    if (!area->ticking) {
        area->ticking = 1;
        area->last_ping_ms = time_mono_ms();
        uv_timer_start(&area->tick, api__on_tick, API_STREAM_SNAPSHOT_MS, API_STREAM_SNAPSHOT_MS);
    }
}

static int api__on_stream(void *data, struct http_request *req, const char *sub)
{
    if (strcmp(http_request_method(req), "GET") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /api/stream",
                                   http_request_method(req));
        return 1;
    }
    api__connect(data, req);
    return 1;
}

int api_stream_register(struct rest *rest, struct api_stream *area)
{
    return rest_add_route(rest, "stream", REST_MATCH_EXACT, api__on_stream, area);
}

/* --- life ------------------------------------------------------------------------------ */

struct api_stream *api_stream_new(uv_loop_t *loop, struct store *store,
                                  struct api_cluster *cluster, struct api_objects *objects)
{
    struct api_stream *area = calloc(1, sizeof *area);
    if (area == NULL)
        return NULL;
    area->loop = loop;
    area->store = store;
    area->cluster = cluster;
    area->objects = objects;
    area->seq = store_events_newest_seq(store);
    uv_timer_init(loop, &area->tick);
    area->tick.data = area;
    store_set_event_watch(store, api__on_events, area);
    return area;
}

static void api__on_closed(uv_handle_t *h)
{
    struct api_stream *area = h->data;
    buf_free(&area->snapshot);
    free(area);
}

void api_stream_close(struct api_stream *area)
{
    area->closing = 1;
    store_set_event_watch(area->store, NULL, NULL);
    while (area->clients != NULL)
        api__client_end(area->clients, NULL);
    uv_close((uv_handle_t *)&area->tick, api__on_closed);
}
