/* http_ref.h: an independent, deliberately simple reading of an HTTP/1.x byte stream, for
 * the data plane's fuzz targets to check http_msg against: what a proxy that follows RFC
 * 9112 strictly (and Vigil's documented head rules: docs/architecture.md, "Service
 * Engine") must forward for each message, or that it must refuse the stream.
 *
 * It reads only a subset of HTTP it can judge with certainty (the grammar is in
 * http_ref.c). A message outside it ends the reading with HTTP_REF_OUTSIDE: no claim is
 * made about it or what follows; the messages before it are still claimed. It shares no
 * code with src/se: it never calls http_parser, http_msg or http_hop. */
#ifndef VIGIL_FUZZ_HTTP_REF_H
#define VIGIL_FUZZ_HTTP_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_REF_MSGS_MAX 64     /* the driver stops after as many messages */
#define HTTP_REF_HEAD_MAX 4096   /* largest expected rebuilt head */

enum http_ref_verdict {
    HTTP_REF_ACCEPT = 0, /* every message is in the subset and valid; the last may be cut
                          * short by the end of the input (inside its body) */
    HTTP_REF_REFUSE,     /* message n (after n good ones) is invalid: the stream is refused */
    HTTP_REF_OUTSIDE     /* message n is outside the subset: no claim from it on */
};

struct http_ref_msg {
    size_t start, head_end, end; /* input offsets: first byte, first body byte, one past the
                                  * message (for a cut message: the input's end) */
    char head[HTTP_REF_HEAD_MAX]; /* the rebuilt head without the closing empty line */
    size_t head_len;
    char key[HTTP_REF_HEAD_MAX]; /* the x-hash value the proxy hashes on (trimmed) */
    size_t key_len;              /* 0: none */
    bool complete;   /* its end is in the input (else the input ends inside its body) */
    bool until_eof;  /* a response whose body runs until the server closes */
    bool last;       /* nothing may follow it on the connection */
};

struct http_ref_result {
    enum http_ref_verdict verdict;
    size_t n;      /* messages read (complete ones, then maybe one cut short) */
    const char *why; /* REFUSE / OUTSIDE: the reason, static */
    bool refused_in_body; /* REFUSE: msgs[n]'s head is valid and filled in, its body is not */
    struct http_ref_msg msgs[HTTP_REF_MSGS_MAX];
};

/* Reads IN (LEN bytes, borrowed) as the requests a client sends (RESPONSE false) or the
 * responses a server sends (true; HEAD_REQUEST: they answer HEAD requests, so carry no
 * body). Fills *R (owned by the caller, large: keep it static). Pure. */
void http_ref_read(const uint8_t *in, size_t len, bool response, bool head_request,
                   struct http_ref_result *r);

#endif
