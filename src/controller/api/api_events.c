/* api_events.c: GET /api/event (contract "Events"). */
#include <string.h>

#include "common/timeutil.h"
#include "controller/api/api.h"

static int api__events(void *data, struct http_request *req, const char *sub)
{
    struct api_events *area = data;
    const char *event_id = http_request_query(req, "event_id");
    const char *since = http_request_query(req, "since");
    int64_t since_ms = 0, offset, limit, total;
    (void)sub;
    json_t *list;

    if (strcmp(http_request_method(req), "GET") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /api/event",
                                   http_request_method(req));
        return 1;
    }
    if (since != NULL && time_parse_rfc3339(since, &since_ms) != 0) {
        http_request_respond_error(req, 400, "since: not an RFC 3339 time");
        return 1;
    }
    if (event_id != NULL && (event_id[0] == '\0' || strlen(event_id) > 64)) {
        http_request_respond_error(req, 400, "event_id: must be 1 to 64 characters");
        return 1;
    }
    if (api_paging(req, &offset, &limit) != 0)
        return 1;
    list = store_events_list(area->store, event_id, since_ms, offset, limit, &total);
    http_request_respond(req, 200, api_collection(list, total));
    return 1;
}

int api_events_register(struct rest *rest, struct api_events *area)
{
    return rest_add_route(rest, "event", REST_MATCH_EXACT, api__events, area);
}
