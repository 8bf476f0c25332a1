/* libFuzzer target for the controller-SE frame codec (src/common/se_frame.c). Input: one
 * byte that picks the receiver's payload limit, then the received stream, fed to a decoder
 * in pieces whose sizes come from the input. Checks, against an independent reading of the
 * frame layout (se_frame.h): the same frames (type, payload) in the same order, the stream
 * refused at the same frame with the same code (VIGIL_EINVAL or VIGIL_ETOOBIG) or not at
 * all, whatever the pieces; a one-line reason; and that each frame taken, written again by
 * se_frame_append and se_frame_append_text, decodes to an equal frame.
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/se_frame.h"

#define FRAMES_MAX 256

struct reading {
    int types[FRAMES_MAX];
    size_t n;
    int refusal; /* 0, VIGIL_EINVAL or VIGIL_ETOOBIG */
};

static void fail(const char *what, size_t frame)
{
    fprintf(stderr, "fuzz_se_frame: frame %zu: %s\n", frame, what);
    abort();
}

/* The reference: the layout read by hand; JSON objects told by jansson alone. */
static void read_reference(const uint8_t *p, size_t len, size_t max, struct reading *r)
{
    size_t at = 0;

    memset(r, 0, sizeof *r);
    while (r->n < FRAMES_MAX && len - at >= 2) {
        uint32_t plen;
        json_t *v;
        if (p[at] != 'V' || p[at + 1] != 'F') {
            r->refusal = VIGIL_EINVAL;
            return;
        }
        if (len - at < SE_FRAME_HEADER)
            return;
        if (p[at + 2] != SE_FRAME_VERSION || p[at + 3] == 0 || p[at + 3] >= SE_FRAME_TYPE_END) {
            r->refusal = VIGIL_EINVAL;
            return;
        }
        plen = (uint32_t)p[at + 4] << 24 | (uint32_t)p[at + 5] << 16 | (uint32_t)p[at + 6] << 8 |
               p[at + 7];
        if (plen > max) {
            r->refusal = VIGIL_ETOOBIG;
            return;
        }
        if (len - at - SE_FRAME_HEADER < plen)
            return;
        v = json_loadb((const char *)p + at + SE_FRAME_HEADER, plen, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            r->refusal = VIGIL_EINVAL;
            return;
        }
        json_decref(v);
        r->types[r->n++] = p[at + 3];
        at += SE_FRAME_HEADER + plen;
    }
}

/* A frame taken: written again both ways, it must decode to itself. */
static void round_trip(const struct se_frame *f, size_t k)
{
    struct buf out;
    struct se_frame_decoder dec;
    struct se_frame back;
    char err[200];
    char *text = json_dumps(f->payload, JSON_COMPACT);

    buf_init(&out);
    if (text == NULL || se_frame_append(&out, f->type, f->payload) != 0 ||
        se_frame_append_text(&out, f->type, text, strlen(text)) != 0)
        fail("a decoded frame cannot be written again", k);
    se_frame_decoder_init(&dec, 0);
    if (se_frame_decoder_feed(&dec, out.data, out.len) != 0)
        abort();
    for (int i = 0; i < 2; i++) {
        if (se_frame_decoder_next(&dec, &back, err, sizeof err) != 1 || back.type != f->type ||
            !json_equal(back.payload, f->payload))
            fail("a frame written again decodes differently", k);
        json_decref(back.payload);
    }
    if (se_frame_decoder_next(&dec, &back, err, sizeof err) != 0)
        fail("bytes left after two frames written again", k);
    se_frame_decoder_free(&dec);
    buf_free(&out);
    free(text);
}

/* Feeds P in pieces (sizes from SEED; 0: one piece) and checks what comes out against R. */
static void decode(const uint8_t *p, size_t len, size_t max, unsigned seed, const struct reading *r)
{
    struct se_frame_decoder dec;
    size_t off = 0, n = 0;
    int refusal = 0;
    char err[200];

    se_frame_decoder_init(&dec, max == SE_FRAME_MAX_PAYLOAD ? 0 : max);
    while (off < len && refusal == 0 && n < FRAMES_MAX) {
        size_t piece = len - off;
        if (seed != 0) {
            size_t step = 1 + (seed = seed * 1103515245u + 12345u) / 65536 % 64;
            piece = piece < step ? piece : step;
        }
        if (se_frame_decoder_feed(&dec, p + off, piece) != 0)
            abort();
        off += piece;
        for (;;) {
            struct se_frame f;
            int rv;
            err[0] = '\0';
            rv = se_frame_decoder_next(&dec, &f, err, sizeof err);
            if (rv == 0)
                break;
            if (rv < 0) {
                refusal = rv;
                if (err[0] == '\0' || strchr(err, '\n') != NULL || strlen(err) >= sizeof err - 1)
                    fail("a refusal without a one-line reason", n);
                if (se_frame_decoder_next(&dec, &f, err, sizeof err) != rv)
                    fail("a refusal not repeated", n);
                break;
            }
            if (n >= r->n || (int)f.type != r->types[n])
                fail("a frame the reference does not read there", n);
            round_trip(&f, n);
            json_decref(f.payload);
            n++;
            if (n == FRAMES_MAX)
                break;
        }
    }
    if (n != r->n || (n < FRAMES_MAX && refusal != r->refusal)) {
        fprintf(stderr, "fuzz_se_frame: %zu frames, refusal %d; the reference: %zu, %d\n", n,
                refusal, r->n, r->refusal);
        fail("the decoder and the reference disagree", n);
    }
    se_frame_decoder_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[4] = {SE_FRAME_MAX_PAYLOAD, 16, 200, 4096};
    static struct reading r;
    size_t max;
    unsigned seed = 1;

    if (size == 0)
        return 0;
    max = limits[data[0] & 3];
    for (size_t i = 0; i < size && i < 16; i++)
        seed = seed * 31 + data[i];
    read_reference(data + 1, size - 1, max, &r);
    decode(data + 1, size - 1, max, 0, &r);
    decode(data + 1, size - 1, max, seed | 1, &r);
    return 0;
}
