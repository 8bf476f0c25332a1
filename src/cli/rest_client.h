/* rest_client.h: the CLI's only way to talk to a controller: JSON over the REST API with
 * libcurl's easy interface (no HTTP written by hand). Every request has a deadline,
 * redirects are never followed (a 3xx is reported as an error naming where it pointed),
 * and the --token / --cacert / --insecure settings apply to every request.
 *
 * The CLI is single-threaded and has no event loop: every function here blocks on the
 * calling thread until its request is done or its deadline passes. */
#ifndef VIGIL_CLI_REST_CLIENT_H
#define VIGIL_CLI_REST_CLIENT_H

#include <stddef.h>

#include <jansson.h>

struct rest_client_options {
    const char *controller_url; /* "http[s]://host[:port][/prefix]"; copied */
    const char *token;          /* NULL: no Authorization header; copied */
    const char *basic_user;     /* with basic_password: HTTP Basic instead of the token */
    const char *basic_password; /* copied, and wiped when the client is freed */
    const char *cacert;         /* NULL: the system's CA store; copied */
    int insecure;               /* 1: no certificate or host name verification */
    long timeout_s;             /* deadline of each request, connect to last byte */
};

/* One HTTP answer. Filled by rest_client_request; release with rest_response_clear. */
struct rest_response {
    long status;     /* HTTP status code */
    char *body;      /* the body, NUL-terminated (also when empty); owned */
    size_t body_len; /* bytes in body, without the NUL */
    json_t *json;    /* the body parsed as JSON; NULL when empty or not JSON; owned */
};

struct rest_client;

/* A client for OPTIONS (borrowed; everything is copied). Returns NULL when out of memory
 * or when libcurl cannot start. The caller frees it with rest_client_free. Call
 * curl_global_init once before the first one. */
struct rest_client *rest_client_create(const struct rest_client_options *options);

/* Frees CLIENT (owned by the caller); NULL is fine. */
void rest_client_free(struct rest_client *client);

/* The message of the last failure on CLIENT (borrowed, valid until the next call), e.g.
 * "cannot reach http://127.0.0.1:8080: Connection refused" or
 * "POST /api/pool: HTTP 409: name pool-a is taken". "" when none. */
const char *rest_client_error(const struct rest_client *client);

/* The HTTP status of the last answer CLIENT received (0 when the last request got none,
 * e.g. the controller was unreachable). A 401 there means the credentials were refused. */
long rest_client_last_status(const struct rest_client *client);

/* Sends METHOD PATH (PATH starts with "/api/", with its query already escaped) with BODY
 * (borrowed, JSON text, or NULL for none) and fills RESPONSE (owned by the caller, cleared
 * first). Returns 0 when any HTTP answer but a redirect arrived, whatever its status;
 * VIGIL_EIO when the controller could not be reached or the exchange failed,
 * VIGIL_ETIMEDOUT when the deadline passed, VIGIL_ETOOBIG when the answer is over the
 * size limit, VIGIL_EINVAL for a redirect (the message names the target), VIGIL_ENOMEM.
 * The failure's message is in rest_client_error. */
int rest_client_request(struct rest_client *client, const char *method, const char *path,
                        const char *body, struct rest_response *response);

/* Like rest_client_request, but also fails with VIGIL_EIO when the status is not 2xx
 * (the message carries the API's {"error"} text and outcome) and, when NEED_JSON is set,
 * when the body is not JSON. On failure RESPONSE is cleared. */
int rest_client_call(struct rest_client *client, const char *method, const char *path,
                     const char *body, int need_json, struct rest_response *response);

/* Every element of the collection at PATH (no query), with QUERY (already escaped,
 * "a=b&c=d", or NULL) added to each page's request, following pages of PAGE_SIZE until
 * `count` elements arrived or a page is empty. Sets *RESULTS to a new array (owned by
 * the caller, json_decref) and *COUNT to the last page's `count`. Returns 0 or a
 * negative VIGIL_E* (message in rest_client_error; *RESULTS is then NULL). */
int rest_client_get_all(struct rest_client *client, const char *path, const char *query,
                        int page_size, json_t **results, json_int_t *count);

/* TEXT escaped for a URL query value (malloc'ed, the caller frees it), NULL when out of
 * memory. */
char *rest_client_escape(struct rest_client *client, const char *text);

/* Frees what RESPONSE owns and zeroes it; safe on a zeroed or cleared response. */
void rest_response_clear(struct rest_response *response);

#endif
