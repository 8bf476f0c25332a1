/* log_record.h: one access-log record (an HTTP request or a TCP connection) and its JSON
 * line encoding. No I/O; runs on any thread. */
#ifndef VIGIL_SE_LOG_RECORD_H
#define VIGIL_SE_LOG_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum log_record_kind { LOG_RECORD_HTTP = 0, LOG_RECORD_TCP };

/* Longest URI kept in a record; longer ones are cut (and marked "uri_truncated"). */
#define LOG_RECORD_URI_MAX 2048
/* Enough room for any encoded record. */
#define LOG_RECORD_LINE_MAX (LOG_RECORD_URI_MAX * 6 + 2048)

struct log_record {
    enum log_record_kind kind;
    uint64_t seq;             /* numbered by log_seq */
    int64_t timestamp_ms;     /* wall clock: request start (HTTP) or connection start (TCP) */
    const char *se_name;      /* borrowed */
    const char *vs_name;      /* borrowed */
    const char *vs_uuid;      /* borrowed, may be NULL */
    char client_ip[16];
    uint16_t client_port;
    char server_ip[16];       /* "" when no server was used */
    uint16_t server_port;
    const char *method;       /* borrowed, HTTP only ("" for TCP) */
    const char *uri;          /* borrowed, HTTP only, URI_LEN bytes, not NUL-terminated */
    size_t uri_len;
    int status;               /* HTTP status sent to the client; 0 for TCP or none */
    uint64_t bytes_in;        /* from the client */
    uint64_t bytes_out;       /* to the client */
    double total_ms;          /* request (connection) start to last byte sent */
    double server_ms;         /* server connect or request start to its response head; -1: none */
    const char *error;        /* borrowed: why the exchange failed ("error"), NULL or "": none */
};

/* Encodes R as one JSON object followed by '\n' into OUT (CAP bytes). Strings are escaped
 * so the line is valid JSON whatever bytes the URI holds. Returns the length written, or
 * 0 when CAP is too small (LOG_RECORD_LINE_MAX is always enough). */
size_t log_record_encode(const struct log_record *r, char *out, size_t cap);

#endif
