/* se_frame.h: the frames of the controller-SE channel, the one codec both sides use.
 *
 * The channel is an SSH session (the SE authenticates with its ed25519 key) with one
 * channel running the subsystem SE_FRAME_SUBSYSTEM. Each direction is a stream of frames:
 *
 *   bytes 0-1  magic "VF"
 *   byte  2    protocol version, SE_FRAME_VERSION
 *   byte  3    type, enum se_frame_type
 *   bytes 4-7  payload length, unsigned 32-bit big-endian, at most SE_FRAME_MAX_PAYLOAD
 *   then       the payload: one JSON object (UTF-8), the type's fields (docs/architecture.md,
 *              "The SE channel")
 *
 * A receiver refuses a frame with another magic or version, an unknown type, a length over
 * its limit (checked from the header alone: an oversized frame is never buffered) or a
 * payload that is not a JSON object; the session is then closed with the reason logged.
 * Pure functions and a decoder its owner embeds: any thread, one owner. */
#ifndef VIGIL_COMMON_SE_FRAME_H
#define VIGIL_COMMON_SE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "common/buf.h"

#define SE_FRAME_SUBSYSTEM "vigil-se"
#define SE_FRAME_VERSION 1
#define SE_FRAME_HEADER 8
/* The largest payload either side sends or accepts: a config push of thousands of objects
 * fits; a receiver may set a smaller limit. */
#define SE_FRAME_MAX_PAYLOAD (8u << 20)

enum se_frame_type {
    SE_FRAME_HELLO = 1,     /* SE -> controller, first: who it is, what it has */
    SE_FRAME_WELCOME,       /* controller -> SE: the node, the cluster's nodes, the log node */
    SE_FRAME_CONFIG,        /* controller -> SE: the SE's whole config at a config_version */
    SE_FRAME_CONFIG_ACK,    /* SE -> controller: a config applied, or refused and why */
    SE_FRAME_HEARTBEAT,     /* both ways: liveness, and whether the node knows a leader */
    SE_FRAME_HEARTBEAT_ACK, /* both ways: the answer to a heartbeat */
    SE_FRAME_LOGS,          /* SE -> its log node: access-log records in sequence */
    SE_FRAME_LOGS_ACK,      /* log node -> SE: records stored through a sequence number */
    SE_FRAME_BYE,           /* either way, last: why the sender closes the session */
    SE_FRAME_METRICS,       /* SE -> its log node: per-second metrics records in sequence */
    SE_FRAME_METRICS_ACK,   /* log node -> SE: metrics stored through a sequence number */
    SE_FRAME_TYPE_END       /* one past the last type */
};

/* The type's name ("HELLO", ...), or "?" for a value that is no type. Static. */
const char *se_frame_type_name(int type);

/* Appends one frame of TYPE with PAYLOAD (borrowed; a JSON object) to OUT. Returns 0,
 * VIGIL_EINVAL (TYPE is no type or PAYLOAD no object), VIGIL_ETOOBIG (the payload's text
 * is over SE_FRAME_MAX_PAYLOAD) or VIGIL_ENOMEM; OUT is unchanged on failure. */
int se_frame_append(struct buf *out, enum se_frame_type type, const json_t *payload);

/* Appends one frame of TYPE whose payload is TEXT (LEN bytes, borrowed), already the text
 * of one JSON object (not checked: a sender that builds the text itself, the SE's LOGS with
 * its records as stored). Returns 0, VIGIL_EINVAL (TYPE is no type, LEN 0), VIGIL_ETOOBIG
 * (LEN over SE_FRAME_MAX_PAYLOAD) or VIGIL_ENOMEM; OUT is unchanged on failure. */
int se_frame_append_text(struct buf *out, enum se_frame_type type, const char *text, size_t len);

/* A frame taken from the stream: TYPE and its PAYLOAD (owned by the taker: json_decref). */
struct se_frame {
    enum se_frame_type type;
    json_t *payload;
};

/* Splits a received byte stream into frames. Embedded by its owner (one per session and
 * direction); zero it or se_frame_decoder_init before use, se_frame_decoder_free after. */
struct se_frame_decoder {
    struct buf in;       /* bytes received and not yet taken */
    size_t max_payload;  /* this receiver's limit (0: SE_FRAME_MAX_PAYLOAD) */
    int failed;          /* the refusal returned (0: none yet): the stream is not read further */
    char why[160];       /* its reason */
};

/* An empty decoder refusing payloads over MAX_PAYLOAD bytes (0: SE_FRAME_MAX_PAYLOAD). */
void se_frame_decoder_init(struct se_frame_decoder *dec, size_t max_payload);

/* Adds LEN received bytes of DATA (borrowed). Returns 0 or VIGIL_ENOMEM. Take the frames
 * with se_frame_decoder_next after each feed: input is buffered only up to one frame. */
int se_frame_decoder_feed(struct se_frame_decoder *dec, const void *data, size_t len);

/* Takes the next whole frame into *OUT: returns 1 (a frame; its payload is the caller's),
 * 0 (more bytes are needed), or a refusal with a one-line reason in ERR: VIGIL_EINVAL (bad
 * magic, version or type, or a payload that is not a JSON object) or VIGIL_ETOOBIG (a
 * length over the limit). After a refusal every call returns it again: close the session. */
int se_frame_decoder_next(struct se_frame_decoder *dec, struct se_frame *out, char *err,
                          size_t errlen);

/* Frees what DEC buffers; it may be initialised again. */
void se_frame_decoder_free(struct se_frame_decoder *dec);

#endif
