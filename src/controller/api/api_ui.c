/* api_ui.c: the web UI's files under /ui/ (api.h), from the table compiled into vigild
 * (ui_assets.h). A path is looked up by exact name in that table and nothing else: no
 * file system is read, so no path can escape it ("/ui/../x", "/ui/%2e%2e/x" and the like
 * are unknown names, answered 404). */
#include <string.h>

#include "controller/api/api.h"
#include "controller/api/ui_assets.h"

/* The page runs only its own script and style, talks only to its own origin, and cannot
 * be framed: the dashboard fetches nothing from anywhere else. uPlot sets element styles
 * from script (CSSOM), which style-src does not restrict. */
#define API_UI__CSP                                                                          \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "      \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "           \
    "frame-ancestors 'none'"

const struct ui_asset *api_ui_find(const char *name)
{
    if (name[0] == '\0')
        name = "index.html";
    for (const struct ui_asset *a = ui_assets; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* GET|HEAD /ui/<SUB>: the file SUB names ("" is index.html), 304 when the client's copy
 * (If-None-Match) is current, 404 for any other name, 405 for another method. Every file
 * is revalidated before use (no-cache: a new vigild's files are seen at once) and sent
 * with the headers that keep the page to itself. */
static int api_ui__file(void *area, struct http_request *req, const char *sub)
{
    const char *method = http_request_method(req);
    const char *seen = http_request_header(req, "If-None-Match");
    const struct ui_asset *a;

    (void)area;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /ui/", method);
        return 1;
    }
    a = api_ui_find(sub);
    if (a == NULL) {
        http_request_respond_error(req, 404, "no such file: /ui/%s", sub);
        return 1;
    }
    http_request_add_header(req, "Cache-Control", "no-cache");
    http_request_add_header(req, "ETag", a->etag);
    http_request_add_header(req, "X-Content-Type-Options", "nosniff");
    http_request_add_header(req, "Referrer-Policy", "no-referrer");
    http_request_add_header(req, "X-Frame-Options", "DENY");
    if (strncmp(a->content_type, "text/html", 9) == 0)
        http_request_add_header(req, "Content-Security-Policy", API_UI__CSP);
    if (seen != NULL && strcmp(seen, a->etag) == 0) {
        http_request_respond_raw(req, 304, NULL, "", 0);
        return 1;
    }
    http_request_respond_static(req, 200, a->content_type, a->data, a->len);
    return 1;
}

/* GET /ui: to /ui/, so the page's relative links resolve under it. */
static int api_ui__redirect(void *area, struct http_request *req, const char *sub)
{
    (void)area;
    (void)sub;
    http_request_add_header(req, "Location", "/ui/");
    http_request_respond(req, 302, NULL);
    return 1;
}

int api_ui_register(struct rest *rest)
{
    int rv = rest_add_route(rest, "/ui/", REST_MATCH_ROOT_PREFIX, api_ui__file, NULL);
    return rv != 0 ? rv : rest_add_route(rest, "/ui", REST_MATCH_ROOT, api_ui__redirect, NULL);
}
