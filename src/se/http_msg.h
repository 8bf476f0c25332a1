/* http_msg.h: one direction of an HTTP/1.x connection, parsed with http_parser, with the
 * message head rebuilt for forwarding and the body passed through as raw spans of the
 * caller's input (chunked framing included), so bodies are never copied here.
 *
 * The rebuilt head has the start line normalised to HTTP/1.1 and the hop-by-hop headers
 * removed when the head is complete (http_hop_strip: Connection, Keep-Alive,
 * Proxy-Connection, TE, Upgrade and the ones Connection names; a 1xx or 204 response also
 * loses its framing headers, and its body, like a 304's or a HEAD answer's, is skipped);
 * trailer fields are body bytes and leave the head alone. A chunked body's framing is also
 * read strictly (http_chunked.h) and refused when it breaks RFC 9112 or ends elsewhere
 * than where http-parser ends it. The caller appends its own header
 * lines (X-Forwarded-For, Connection) with http_msg_head_append and closes the head with
 * http_msg_head_end. Head buffers come from a free list, so steady traffic does not
 * allocate; http_msg_release gives a buffer back while the connection is idle.
 *
 * Everything runs on the SE loop thread (the free list is not thread-safe). */
#ifndef VIGIL_SE_HTTP_MSG_H
#define VIGIL_SE_HTTP_MSG_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se/http_chunked.h"

enum http_msg_phase { HTTP_MSG_PHASE_HEAD = 0, HTTP_MSG_PHASE_BODY, HTTP_MSG_PHASE_DONE };

/* What http_msg_feed found. */
enum http_msg_event {
    HTTP_MSG_NEED_MORE = 0, /* all input consumed, the message goes on */
    HTTP_MSG_HEAD_DONE,     /* the head is complete (phase is now BODY) */
    HTTP_MSG_COMPLETE,      /* the message ended (phase is now DONE) */
    HTTP_MSG_ERROR          /* bad syntax or over a limit: see error */
};

enum http_msg_error {
    HTTP_MSG_ERR_NONE = 0,
    HTTP_MSG_ERR_SYNTAX,    /* http_parser refused the input */
    HTTP_MSG_ERR_TOO_LARGE, /* the head is over the limit */
    HTTP_MSG_ERR_NOMEM
};

struct http_msg {
    http_parser parser;
    char *head;         /* rebuilt head, NUL-terminated; NULL while released */
    uint32_t head_len;
    uint32_t head_cap;
    uint32_t head_limit; /* largest head accepted (input bytes, about) */
    uint32_t raw_head_len; /* input bytes of the head */
    uint32_t field_start; /* offset of the header field being read */
    uint32_t fields_off;  /* offset of the first header line (the start line's end) */
    uint32_t url_off, url_len;      /* requests: the target inside head */
    uint32_t method_len;            /* requests: the method's length at head[0] */
    uint32_t key_off, key_len;      /* the value of key_header inside head */
    const char *key_header;         /* header whose value to remember (borrowed), or NULL */
    uint32_t host_off, host_len;    /* requests: the last Host value inside head, as read
                                     * (checked before the hop-by-hop lines go) */
    uint8_t last_cb;    /* 0 none, 1 url/status, 2 field, 3 value */
    uint8_t key_match;  /* the current header is key_header */
    uint8_t host_match; /* requests: the current header is Host */
    uint8_t hosts;      /* requests: Host lines seen (saturating) */
    uint8_t body_announced; /* responses: a 1xx or 204 said Transfer-Encoding or a
                             * Content-Length over 0; the body was skipped, but the server
                             * may still send it (do not reuse its connection) */
    uint8_t phase;      /* enum http_msg_phase */
    uint8_t skip_lf;    /* the next input byte is the head's last LF, already accounted */
    uint8_t no_body;    /* responses: the request was HEAD */
    uint8_t error;      /* enum http_msg_error */
    uint8_t started;    /* a byte of this message was seen */
    uint8_t te_lines;   /* Transfer-Encoding lines seen (saturating) */
    uint8_t te_match;   /* the current header is Transfer-Encoding */
    uint32_t te_off, te_len; /* the last Transfer-Encoding value inside head, as read */
    uint8_t chunked_check; /* the body is chunked: CHUNKED reads its framing too */
    struct http_chunked chunked;
};

/* Prepares M for messages of TYPE (HTTP_REQUEST or HTTP_RESPONSE) with heads up to
 * HEAD_LIMIT bytes. Does not allocate. */
void http_msg_init(struct http_msg *m, enum http_parser_type type, uint32_t head_limit);

/* Gets M ready for the next message on the same connection (keeps the parser's
 * connection state). */
void http_msg_next(struct http_msg *m);

/* Gives M's head buffer back to the free list (M may be reused afterwards). */
void http_msg_release(struct http_msg *m);

/* Feeds LEN bytes of DATA (borrowed). Writes into *CONSUMED how many input bytes were
 * used and into *BODY / *BODY_LEN the raw body bytes among them (a span of DATA, maybe
 * empty), which the caller forwards as they are. Stops after an event: the caller feeds
 * the rest of the input again (after HEAD_DONE) or keeps it for the next message (after
 * COMPLETE). LEN 0 means the peer closed its side (end of a read-until-close body). */
enum http_msg_event http_msg_feed(struct http_msg *m, const char *data, size_t len,
                                  size_t *consumed, const char **body, size_t *body_len);

/* After the head: removes every header line named NAME (case-insensitive) from the
 * rebuilt head and returns their values joined by ", " (http_hop_take), a new string the
 * caller frees ("" when none), or NULL when out of memory (the head is then unchanged).
 * The key header's span follows the move (gone with its line). */
char *http_msg_take_header(struct http_msg *m, const char *name);

/* Appends LEN bytes of TEXT to the rebuilt head (after HEAD_DONE, before http_msg_head_end).
 * Returns 0 or VIGIL_ENOMEM. */
int http_msg_head_append(struct http_msg *m, const char *text, size_t len);

/* Closes the rebuilt head with the empty line. Returns 0 or VIGIL_ENOMEM. */
int http_msg_head_end(struct http_msg *m);

/* After HEAD_DONE: the value of the header named M->key_header (matched case-insensitively;
 * the last one when it repeats), without surrounding spaces and tabs, as a span of M->head
 * (borrowed, valid until the head changes) of *LEN bytes. NULL when M->key_header is NULL,
 * the header is absent or its value is empty. */
const char *http_msg_key_value(const struct http_msg *m, size_t *len);

/* For a response whose head is complete: true when its body ends only when the server
 * closes (no Content-Length, not chunked, and a status that has a body). */
bool http_msg_needs_eof(const struct http_msg *m);

/* Frees the free list's spare buffers (at exit, for leak checkers). */
void http_msg_free_cache(void);

#endif
