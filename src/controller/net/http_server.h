/* http_server.h: an HTTP/1.1 server driven from a libuv loop (libmicrohttpd underneath,
 * with no thread of its own). Each request's body is collected (up to a limit), then the
 * handler is called once. The handler answers at once or later (after raft commits, for
 * example) with http_request_respond*(); until then the connection is suspended.
 *
 * Everything runs on the loop's thread. */
#ifndef VIGIL_HTTP_SERVER_H
#define VIGIL_HTTP_SERVER_H

#include <stddef.h>
#include <jansson.h>
#include <uv.h>

#include "common/netaddr.h"

struct http_server;
struct http_request;

/* Called once per complete request. REQ stays valid until it has been answered. */
typedef void (*http_handler_fn)(struct http_request *req, void *data);

/* Binds and listens on ADDR now. Returns the socket, or -1 with a reason in ERR. */
int http_server_listen(const struct netaddr *addr, char *err, size_t errlen);

/* Binds ADDR now (so a port in use is found at start) without listening: until
 * http_server_start_fd listens on it, a client's connection is refused at once instead of
 * waiting in the backlog of a server that cannot answer yet (a TLS node that has no
 * certificate yet). Returns the socket, or -1 with a reason in ERR. */
int http_server_bind(const struct netaddr *addr, char *err, size_t errlen);

/* Listens and serves on FD (from http_server_listen or _bind; the server owns it from now
 * on, also when this fails), over TLS when
 * CERT_PEM and KEY_PEM (copied) are given. MAX_BODY bounds request bodies (a larger one
 * gets 413 without reaching HANDLER). Returns NULL on failure with a one-line reason in
 * ERR. The server is owned by the caller, released by http_server_close. */
struct http_server *http_server_start_fd(uv_loop_t *loop, int fd, const char *cert_pem,
                                         const char *key_pem, size_t max_body,
                                         http_handler_fn handler, void *data, char *err,
                                         size_t errlen);

/* Serves CERT_PEM (a PEM chain, the server's certificate first) and KEY_PEM (copied) from
 * the next TLS handshake on; connections open keep theirs. Only for a server started with
 * TLS (one per process). Returns 0, VIGIL_EINVAL (not a PEM
 * certificate and key) or VIGIL_ENOMEM; SERVER is then unchanged. */
int http_server_set_cert(struct http_server *server, const char *cert_pem, const char *key_pem);

/* Tells CB(DATA, REQ, STATUS) of every answer SERVER gives, as it is given (REQ borrowed
 * for the call: its method and path can be read): how the layers above count requests
 * (GET /metrics) without the server knowing them. CB NULL: nothing is told. Loop thread. */
typedef void (*http_answered_fn)(void *data, const struct http_request *req, unsigned status);
void http_server_set_answered_cb(struct http_server *server, http_answered_fn cb, void *data);

/* Stops accepting, answers nothing further, closes every connection and frees SERVER;
 * DONE(data) is called from the loop once all its handles are closed. Requests not yet
 * answered must have been answered before (their memory goes with the server). */
void http_server_close(struct http_server *server, void (*done)(void *data), void *data);

/* Request accessors. Returned strings are borrowed from REQ. */
const char *http_request_method(const struct http_request *req);
const char *http_request_path(const struct http_request *req);
const char *http_request_query(const struct http_request *req, const char *key); /* or NULL */
const char *http_request_header(const struct http_request *req, const char *name); /* or NULL */
const char *http_request_body(const struct http_request *req, size_t *len);
/* The client's address as "A.B.C.D" (static per request). */
const char *http_request_peer(const struct http_request *req);

/* Per-request slot for the handler's own state. FREE_FN (may be NULL) releases USER when
 * the request is freed. */
void http_request_set_user(struct http_request *req, void *user, void (*free_fn)(void *user));
void *http_request_user(const struct http_request *req);

/* True when REQ came over TLS. */
int http_request_is_tls(const struct http_request *req);

/* Adds a response header (NAME and VALUE copied) to the answer REQ will get. */
void http_request_add_header(struct http_request *req, const char *name, const char *value);

/* Answers REQ with STATUS and BODY (stolen; NULL for no body) as application/json.
 * Must be called exactly once per request, from the loop thread, at any time after the
 * handler was entered. After it REQ must not be used. */
void http_request_respond(struct http_request *req, unsigned status, json_t *body);

/* Answers with a body of any type. DATA is copied. */
void http_request_respond_raw(struct http_request *req, unsigned status,
                              const char *content_type, const void *data, size_t len);

/* Answers with DATA (borrowed: static, or outliving the server) sent as it is, uncopied. */
void http_request_respond_static(struct http_request *req, unsigned status,
                                 const char *content_type, const void *data, size_t len);

/* Answers {"error": MESSAGE} with STATUS; printf-style. */
void http_request_respond_error(struct http_request *req, unsigned status, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

/* --- streamed answers (Server-Sent Events and the like) -----------------------------------
 *
 * An answer whose body is written piece by piece for as long as the client stays. Writes
 * are buffered per stream, never block and never wait for the client: MHD takes the bytes
 * when the socket can take them, and while nothing is pending the connection is suspended
 * (no CPU, no MHD timeout; also no notice of a client that left, so a writer that wants
 * to learn of it soon writes something now and then). */
struct http_stream;

/* Called once when the client's connection ended (it closed, an error, MHD's timeout, the
 * server closing) while the caller still held STREAM; STREAM must not be used after it.
 * Never called from inside an http_stream_* call; from http_server_close, yes. */
typedef void (*http_stream_gone_fn)(struct http_stream *stream, void *data);

/* Answers REQ with status 200 and a body of unknown length (chunked) of CONTENT_TYPE,
 * the headers added to REQ, and "Cache-Control: no-store". CAP_BYTES bounds what may wait
 * unsent (see http_stream_write). Returns the stream (borrowed from the server; the
 * caller holds it until GONE(STREAM, DATA) or its own http_stream_end), or NULL when the
 * client left already or memory ran out (REQ was then answered 500 or freed). Either way
 * REQ must not be used after this call. */
struct http_stream *http_request_respond_stream(struct http_request *req,
                                                const char *content_type, size_t cap_bytes,
                                                http_stream_gone_fn gone, void *data);

/* Queues LEN bytes of DATA (copied) for the client. Returns 0; VIGIL_ETOOBIG when they would
 * take the bytes waiting past the stream's cap: the client is not reading, and is dropped
 * (nothing more is sent, the connection closes soon); VIGIL_ESHUTDOWN when it was dropped
 * or ended before; VIGIL_ENOMEM. After an error but ENOMEM only http_stream_end is left. */
int http_stream_write(struct http_stream *stream, const void *data, size_t len);

/* How many bytes wait unsent in STREAM's buffer (not those in the socket's). */
size_t http_stream_pending(const struct http_stream *stream);

/* The caller lets go of STREAM (GONE will not be called; the handle must not be used
 * again): the answer ends once what is pending was sent (a dropped one: at once). */
void http_stream_end(struct http_stream *stream);

#endif
