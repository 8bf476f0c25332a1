/* log_record.c: JSON line encoding of access-log records. */
#include "se/log_record.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"

struct log_record__out {
    char *p;
    char *end;
    int overflow;
};

static void log_record__raw(struct log_record__out *o, const char *s, size_t len)
{
    if (o->overflow || (size_t)(o->end - o->p) < len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p, s, len);
    o->p += len;
}

static void log_record__lit(struct log_record__out *o, const char *s)
{
    log_record__raw(o, s, strlen(s));
}

/* A JSON string: quotes, escapes; bytes >= 0x80 and controls become \u00XX so the line is
 * valid JSON (and valid UTF-8) whatever the input. */
static void log_record__str(struct log_record__out *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (o->overflow || (size_t)(o->end - o->p) < len * 6 + 2) {
        o->overflow = 1;
        return;
    }
    *o->p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *o->p++ = '\\';
            *o->p++ = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            *o->p++ = '\\';
            *o->p++ = 'u';
            *o->p++ = '0';
            *o->p++ = '0';
            *o->p++ = hex[ch >> 4];
            *o->p++ = hex[ch & 15];
        } else {
            *o->p++ = (char)ch;
        }
    }
    *o->p++ = '"';
}

static void log_record__u64(struct log_record__out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    log_record__raw(o, tmp + i, sizeof tmp - i);
}

/* Milliseconds with three decimals ("12.345"), or null for a negative value. */
static void log_record__ms(struct log_record__out *o, double v)
{
    uint64_t micros;
    char frac[4];

    if (v < 0) {
        log_record__lit(o, "null");
        return;
    }
    if (v > 1e12)
        v = 1e12;
    micros = (uint64_t)(v * 1000.0 + 0.5);
    log_record__u64(o, micros / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + micros / 100 % 10);
    frac[2] = (char)('0' + micros / 10 % 10);
    frac[3] = (char)('0' + micros % 10);
    log_record__raw(o, frac, 4);
}

/* RFC 3339 with a cache of the formatted second, as records come many per second. */
static void log_record__time(struct log_record__out *o, int64_t ms)
{
    static int64_t cached_sec = -1;
    static char cached[TIME_RFC3339_LEN];
    char tmp[TIME_RFC3339_LEN + 2];
    int64_t sec = ms / 1000;
    int frac = (int)(ms % 1000);

    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    if (sec != cached_sec) {
        time_format_rfc3339(sec * 1000, cached);
        cached_sec = sec;
    }
    memcpy(tmp, cached, 20); /* "YYYY-MM-DDTHH:MM:SS." */
    tmp[20] = (char)('0' + frac / 100);
    tmp[21] = (char)('0' + frac / 10 % 10);
    tmp[22] = (char)('0' + frac % 10);
    tmp[23] = 'Z';
    log_record__str(o, tmp, 24);
}

size_t log_record_encode(const struct log_record *r, char *out, size_t cap)
{
    struct log_record__out o = {out, out + cap, 0};
    size_t uri_len = r->uri_len > LOG_RECORD_URI_MAX ? LOG_RECORD_URI_MAX : r->uri_len;
    const char *s;

    log_record__lit(&o, "{\"seq\":");
    log_record__u64(&o, r->seq);
    log_record__lit(&o, ",\"timestamp\":");
    log_record__time(&o, r->timestamp_ms);
    log_record__lit(&o, ",\"type\":");
    log_record__lit(&o, r->kind == LOG_RECORD_TCP ? "\"tcp\"" : "\"http\"");
    log_record__lit(&o, ",\"se_name\":");
    s = r->se_name ? r->se_name : "";
    log_record__str(&o, s, strlen(s));
    log_record__lit(&o, ",\"vs_name\":");
    s = r->vs_name ? r->vs_name : "";
    log_record__str(&o, s, strlen(s));
    if (r->vs_uuid) {
        log_record__lit(&o, ",\"vs_uuid\":");
        log_record__str(&o, r->vs_uuid, strlen(r->vs_uuid));
    }
    log_record__lit(&o, ",\"client_ip\":");
    log_record__str(&o, r->client_ip, strnlen(r->client_ip, sizeof r->client_ip));
    log_record__lit(&o, ",\"client_port\":");
    log_record__u64(&o, r->client_port);
    log_record__lit(&o, ",\"server_ip\":");
    if (r->server_ip[0]) {
        log_record__str(&o, r->server_ip, strnlen(r->server_ip, sizeof r->server_ip));
        log_record__lit(&o, ",\"server_port\":");
        log_record__u64(&o, r->server_port);
    } else {
        log_record__lit(&o, "null,\"server_port\":null");
    }
    log_record__lit(&o, ",\"method\":");
    s = r->method ? r->method : "";
    log_record__str(&o, s, strlen(s));
    log_record__lit(&o, ",\"uri\":");
    log_record__str(&o, r->uri ? r->uri : "", r->uri ? uri_len : 0);
    if (uri_len < r->uri_len)
        log_record__lit(&o, ",\"uri_truncated\":true");
    log_record__lit(&o, ",\"status\":");
    log_record__u64(&o, r->status > 0 ? (uint64_t)r->status : 0);
    log_record__lit(&o, ",\"bytes_in\":");
    log_record__u64(&o, r->bytes_in);
    log_record__lit(&o, ",\"bytes_out\":");
    log_record__u64(&o, r->bytes_out);
    log_record__lit(&o, ",\"total_ms\":");
    log_record__ms(&o, r->total_ms);
    log_record__lit(&o, ",\"server_ms\":");
    log_record__ms(&o, r->server_ms);
    if (r->error != NULL && r->error[0] != '\0') {
        log_record__lit(&o, ",\"error\":");
        log_record__str(&o, r->error, strlen(r->error));
    }
    log_record__lit(&o, "}\n");
    if (o.overflow)
        return 0;
    return (size_t)(o.p - out);
}
