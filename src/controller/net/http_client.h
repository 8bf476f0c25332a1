/* http_client.h: asynchronous HTTP requests from the libuv loop (libcurl's multi interface
 * driven by uv_poll and uv_timer; connections are reused). Used between controller nodes:
 * forwarding writes to the leader and the liveness channel. All on the loop thread. */
#ifndef VIGIL_HTTP_CLIENT_H
#define VIGIL_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

struct http_client;

/* Outcome of a request. ERR is 0 when an HTTP answer arrived (STATUS, BODY of LEN bytes and
 * the raw response HEADERS block "Name: value\r\n...", all borrowed for the callback only);
 * otherwise VIGIL_ECONNREFUSED-like codes:
 *   HTTP_CLIENT_ENOTSENT  the request certainly did not reach the server (no connection)
 *   HTTP_CLIENT_EFAILED   it failed after it may have reached the server (timeout, reset)
 *   VIGIL_ESHUTDOWN       the client is closing */
enum { HTTP_CLIENT_ENOTSENT = -2001, HTTP_CLIENT_EFAILED = -2002 };
typedef void (*http_client_cb)(void *data, int err, long status, const char *body, size_t len,
                               const char *headers);

/* The value of header NAME (case-insensitive) in a HEADERS block, copied into OUT (LEN
 * bytes). Returns 1 if found, else 0. */
int http_client_header(const char *headers, const char *name, char *out, size_t len);

/* Returns a client owned by the caller (release with http_client_close), or NULL. */
struct http_client *http_client_new(uv_loop_t *loop);

/* Starts METHOD URL with HEADERS (NULL-terminated "Name: value" strings, copied) and BODY
 * (LEN bytes, copied; NULL for none). CB runs exactly once, later, on the loop; also with
 * VIGIL_ESHUTDOWN when the client closes first. Returns 0 or VIGIL_ENOMEM/ESHUTDOWN
 * (CB not called). */
int http_client_request(struct http_client *c, const char *method, const char *url,
                        const char *const *headers, const char *body, size_t len,
                        unsigned timeout_ms, http_client_cb cb, void *data);

/* Trusts exactly the certificate(s) in CA_PEM (borrowed, read at each request; NULL: the
 * system's CAs) for https requests. */
void http_client_set_ca(struct http_client *c, const char *const *ca_pem);

/* Fails every request in flight (their callbacks run with VIGIL_ESHUTDOWN), then frees C
 * once its handles are closed. */
void http_client_close(struct http_client *c);

#endif
