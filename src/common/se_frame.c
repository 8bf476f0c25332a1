/* se_frame.c: the controller-SE channel's frame codec (se_frame.h). */
#include "common/se_frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"

static const char *const se_frame__names[] = {
    [SE_FRAME_HELLO] = "HELLO",
    [SE_FRAME_WELCOME] = "WELCOME",
    [SE_FRAME_CONFIG] = "CONFIG",
    [SE_FRAME_CONFIG_ACK] = "CONFIG_ACK",
    [SE_FRAME_HEARTBEAT] = "HEARTBEAT",
    [SE_FRAME_HEARTBEAT_ACK] = "HEARTBEAT_ACK",
    [SE_FRAME_LOGS] = "LOGS",
    [SE_FRAME_LOGS_ACK] = "LOGS_ACK",
    [SE_FRAME_BYE] = "BYE",
    [SE_FRAME_METRICS] = "METRICS",
    [SE_FRAME_METRICS_ACK] = "METRICS_ACK",
};
_Static_assert(sizeof se_frame__names / sizeof se_frame__names[0] == SE_FRAME_TYPE_END,
               "a name for every frame type");

const char *se_frame_type_name(int type)
{
    if (type < SE_FRAME_HELLO || type >= SE_FRAME_TYPE_END)
        return "?";
    return se_frame__names[type];
}

int se_frame_append_text(struct buf *out, enum se_frame_type type, const char *text, size_t len)
{
    unsigned char header[SE_FRAME_HEADER];
    size_t had = out->len;
    int rv;

    if ((int)type < SE_FRAME_HELLO || type >= SE_FRAME_TYPE_END || len == 0)
        return VIGIL_EINVAL;
    if (len > SE_FRAME_MAX_PAYLOAD)
        return VIGIL_ETOOBIG;
    header[0] = 'V';
    header[1] = 'F';
    header[2] = SE_FRAME_VERSION;
    header[3] = (unsigned char)type;
    header[4] = (unsigned char)(len >> 24);
    header[5] = (unsigned char)(len >> 16);
    header[6] = (unsigned char)(len >> 8);
    header[7] = (unsigned char)len;
    rv = buf_append(out, header, sizeof header);
    if (rv == 0)
        rv = buf_append(out, text, len);
    if (rv != 0)
        out->len = had; /* the header alone went in: take it back */
    return rv;
}

int se_frame_append(struct buf *out, enum se_frame_type type, const json_t *payload)
{
    char *text;
    int rv;

    if ((int)type < SE_FRAME_HELLO || type >= SE_FRAME_TYPE_END || !json_is_object(payload))
        return VIGIL_EINVAL;
    text = json_dumps(payload, JSON_COMPACT);
    if (text == NULL)
        return VIGIL_ENOMEM;
    rv = se_frame_append_text(out, type, text, strlen(text));
    free(text);
    return rv;
}

void se_frame_decoder_init(struct se_frame_decoder *dec, size_t max_payload)
{
    memset(dec, 0, sizeof *dec);
    dec->max_payload = max_payload;
}

int se_frame_decoder_feed(struct se_frame_decoder *dec, const void *data, size_t len)
{
    if (dec->failed)
        return 0; /* nothing more is read; next() repeats the refusal */
    return buf_append(&dec->in, data, len);
}

/* Records refusal CODE with its reason; returns CODE. */
static int se_frame__refuse(struct se_frame_decoder *dec, int code, char *err, size_t errlen,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int se_frame__refuse(struct se_frame_decoder *dec, int code, char *err, size_t errlen,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dec->why, sizeof dec->why, fmt, ap);
    va_end(ap);
    vlog_one_line(dec->why); /* jansson's reason may quote the payload, newlines and all */
    dec->failed = code;
    buf_free(&dec->in);
    snprintf(err, errlen, "%s", dec->why);
    return code;
}

int se_frame_decoder_next(struct se_frame_decoder *dec, struct se_frame *out, char *err,
                          size_t errlen)
{
    const unsigned char *p = (const unsigned char *)dec->in.data;
    size_t max = dec->max_payload != 0 ? dec->max_payload : SE_FRAME_MAX_PAYLOAD;
    json_error_t jerr;
    uint32_t len;
    json_t *payload;

    if (dec->failed) {
        snprintf(err, errlen, "%s", dec->why);
        return dec->failed;
    }
    if (dec->in.len < SE_FRAME_HEADER) {
        if (dec->in.len >= 2 && (p[0] != 'V' || p[1] != 'F'))
            return se_frame__refuse(dec, VIGIL_EINVAL, err, errlen,
                                    "not a vigil frame (bytes 0x%02x 0x%02x where \"VF\" starts "
                                    "one)", p[0], p[1]);
        return 0;
    }
    if (p[0] != 'V' || p[1] != 'F')
        return se_frame__refuse(dec, VIGIL_EINVAL, err, errlen,
                                "not a vigil frame (bytes 0x%02x 0x%02x where \"VF\" starts one)",
                                p[0], p[1]);
    if (p[2] != SE_FRAME_VERSION)
        return se_frame__refuse(dec, VIGIL_EINVAL, err, errlen,
                                "frame protocol version %u; this side speaks version %u", p[2],
                                SE_FRAME_VERSION);
    if (p[3] < SE_FRAME_HELLO || p[3] >= SE_FRAME_TYPE_END)
        return se_frame__refuse(dec, VIGIL_EINVAL, err, errlen, "unknown frame type %u", p[3]);
    len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (len > max)
        return se_frame__refuse(dec, VIGIL_ETOOBIG, err, errlen,
                                "%s frame of %u bytes, over the limit of %zu",
                                se_frame__names[p[3]], len, max);
    if (dec->in.len - SE_FRAME_HEADER < len)
        return 0;
    payload = json_loadb(dec->in.data + SE_FRAME_HEADER, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(payload)) {
        int type = p[3];
        json_decref(payload);
        return se_frame__refuse(dec, VIGIL_EINVAL, err, errlen,
                                "%s frame: the payload is not a JSON object%s%s",
                                se_frame__names[type], payload == NULL ? ": " : "",
                                payload == NULL ? jerr.text : "");
    }
    out->type = (enum se_frame_type)p[3];
    out->payload = payload;
    buf_consume(&dec->in, SE_FRAME_HEADER + (size_t)len);
    buf_trim(&dec->in, 64 * 1024);
    return 1;
}

void se_frame_decoder_free(struct se_frame_decoder *dec)
{
    buf_free(&dec->in);
}
