/* Unit tests of se_frame.c, the controller-SE channel's frame codec: round trips whatever
 * way the bytes arrive, and every refusal (magic, version, type, size from the header
 * alone, payload) sticky and with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/errors.h"
#include "common/se_frame.h"

static void append(struct buf *b, enum se_frame_type type, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    assert_int_equal(se_frame_append(b, type, j), 0);
    json_decref(j);
}

static void expect_frame(struct se_frame_decoder *dec, enum se_frame_type type, const char *key,
                         json_int_t value)
{
    struct se_frame f;
    char err[200];
    assert_int_equal(se_frame_decoder_next(dec, &f, err, sizeof err), 1);
    assert_int_equal(f.type, type);
    assert_int_equal(json_integer_value(json_object_get(f.payload, key)), value);
    json_decref(f.payload);
}

static void round_trips_every_type_fed_whole_or_byte_by_byte(void **state)
{
    struct buf b = {0};
    struct se_frame_decoder whole, bytes;
    struct se_frame f;
    char err[200], json[64];
    (void)state;

    for (int t = SE_FRAME_HELLO; t < SE_FRAME_TYPE_END; t++) {
        snprintf(json, sizeof json, "{\"n\": %d, \"text\": \"caf\\u00e9\"}", t);
        append(&b, (enum se_frame_type)t, json);
    }
    se_frame_decoder_init(&whole, 0);
    se_frame_decoder_init(&bytes, 0);
    assert_int_equal(se_frame_decoder_feed(&whole, b.data, b.len), 0);
    for (int t = SE_FRAME_HELLO; t < SE_FRAME_TYPE_END; t++)
        expect_frame(&whole, (enum se_frame_type)t, "n", t);
    assert_int_equal(se_frame_decoder_next(&whole, &f, err, sizeof err), 0);

    for (size_t i = 0, t = SE_FRAME_HELLO; i < b.len; i++) {
        int rv;
        assert_int_equal(se_frame_decoder_feed(&bytes, b.data + i, 1), 0);
        rv = se_frame_decoder_next(&bytes, &f, err, sizeof err);
        assert_true(rv == 0 || rv == 1);
        if (rv == 1) {
            assert_int_equal(f.type, t);
            assert_string_equal(json_string_value(json_object_get(f.payload, "text")), "caf\xc3\xa9");
            json_decref(f.payload);
            t++;
        }
    }
    assert_int_equal(bytes.in.len, 0);
    se_frame_decoder_free(&whole);
    se_frame_decoder_free(&bytes);
    buf_free(&b);
}

static void the_header_is_magic_version_type_and_big_endian_length(void **state)
{
    struct buf b = {0};
    (void)state;
    append(&b, SE_FRAME_HEARTBEAT, "{\"seq\":7}");
    assert_int_equal(b.len, SE_FRAME_HEADER + strlen("{\"seq\":7}"));
    assert_memory_equal(b.data, "VF\x01\x05\x00\x00\x00\x09", SE_FRAME_HEADER);
    assert_memory_equal(b.data + SE_FRAME_HEADER, "{\"seq\":7}", 9);
    buf_free(&b);
}

/* Feeds BYTES (LEN) to a fresh decoder with payload limit MAX; returns the refusal and
 * checks that its reason contains WORDS and that it sticks. */
static int refusal(const void *bytes, size_t len, size_t max, const char *words)
{
    struct se_frame_decoder dec;
    struct se_frame f;
    char err[200], again[200];
    int rv;

    se_frame_decoder_init(&dec, max);
    assert_int_equal(se_frame_decoder_feed(&dec, bytes, len), 0);
    rv = se_frame_decoder_next(&dec, &f, err, sizeof err);
    assert_true(rv < 0);
    if (strstr(err, words) == NULL)
        fail_msg("reason %s lacks %s", err, words);
    for (const char *c = err; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            fail_msg("reason %s is not one line", err);
    assert_int_equal(se_frame_decoder_feed(&dec, "VF", 2), 0);
    assert_int_equal(se_frame_decoder_next(&dec, &f, again, sizeof again), rv);
    assert_string_equal(again, err);
    se_frame_decoder_free(&dec);
    return rv;
}

static void bad_headers_are_refused_with_their_reason(void **state)
{
    (void)state;
    assert_int_equal(refusal("GET / HTTP/1.1\r\n", 16, 0, "not a vigil frame"), VIGIL_EINVAL);
    assert_int_equal(refusal("SS", 2, 0, "not a vigil frame"), VIGIL_EINVAL); /* at 2 bytes */
    assert_int_equal(refusal("VF\x02\x01\x00\x00\x00\x02{}", 10, 0, "version 2"), VIGIL_EINVAL);
    assert_int_equal(refusal("VF\x01\x00\x00\x00\x00\x02{}", 10, 0, "unknown frame type 0"),
                     VIGIL_EINVAL);
    assert_int_equal(refusal("VF\x01\x63\x00\x00\x00\x02{}", 10, 0, "unknown frame type 99"),
                     VIGIL_EINVAL);
}

static void an_oversized_frame_is_refused_from_its_header_alone(void **state)
{
    (void)state;
    /* 4 GiB - 1 announced, nothing of it sent */
    assert_int_equal(refusal("VF\x01\x07\xff\xff\xff\xff", 8, 0, "over the limit"),
                     VIGIL_ETOOBIG);
    /* a receiver's own smaller limit */
    assert_int_equal(refusal("VF\x01\x03\x00\x00\x04\x01", 8, 1024, "CONFIG frame of 1025 bytes"),
                     VIGIL_ETOOBIG);
}

static void a_payload_that_is_no_json_object_is_refused(void **state)
{
    (void)state;
    assert_int_equal(refusal("VF\x01\x05\x00\x00\x00\x02[]", 10, 0, "not a JSON object"),
                     VIGIL_EINVAL);
    assert_int_equal(refusal("VF\x01\x05\x00\x00\x00\x03{x}", 11, 0, "HEARTBEAT frame"),
                     VIGIL_EINVAL);
    assert_int_equal(refusal("VF\x01\x05\x00\x00\x00\x0d{\"a\":1,\"a\":2}", 21, 0,
                             "not a JSON object"), VIGIL_EINVAL);
    /* jansson's reason quotes the text near the error, a newline too: the reason stays one
     * line (found by the se_frame fuzz target: regression-reason-newline) */
    assert_int_equal(refusal("VF\x01\x07\x00\x00\x00\x0e{\"a\":\"\\u0fa\n\"}", 22, 0,
                             "LOGS frame"), VIGIL_EINVAL);
}

static void append_refuses_what_no_frame_can_carry(void **state)
{
    struct buf b = {0};
    json_t *arr = json_array(), *obj = json_object();
    (void)state;
    assert_int_equal(se_frame_append(&b, SE_FRAME_HELLO, arr), VIGIL_EINVAL);
    assert_int_equal(se_frame_append(&b, (enum se_frame_type)0, obj), VIGIL_EINVAL);
    assert_int_equal(se_frame_append(&b, SE_FRAME_TYPE_END, obj), VIGIL_EINVAL);
    assert_int_equal(b.len, 0);
    assert_string_equal(se_frame_type_name(SE_FRAME_LOGS_ACK), "LOGS_ACK");
    assert_string_equal(se_frame_type_name(0), "?");
    assert_string_equal(se_frame_type_name(SE_FRAME_TYPE_END), "?");
    json_decref(arr);
    json_decref(obj);
}

/* A payload given as text (the SE's LOGS) goes out byte for byte, decodable like any. */
static void a_text_payload_is_framed_as_given(void **state)
{
    static const char text[] = "{\"first_seq\":7,\"records\":[{\"seq\":7,\"total_ms\":0.1}]}";
    struct buf b = {0};
    struct se_frame_decoder dec;
    struct se_frame f;
    char err[160];
    (void)state;
    assert_int_equal(se_frame_append_text(&b, SE_FRAME_LOGS, text, sizeof text - 1), 0);
    assert_int_equal(b.len, SE_FRAME_HEADER + sizeof text - 1);
    assert_memory_equal(b.data + SE_FRAME_HEADER, text, sizeof text - 1);
    assert_int_equal(se_frame_append_text(&b, SE_FRAME_TYPE_END, text, 3), VIGIL_EINVAL);
    assert_int_equal(se_frame_append_text(&b, SE_FRAME_LOGS, text, 0), VIGIL_EINVAL);
    assert_int_equal(se_frame_append_text(&b, SE_FRAME_LOGS, text, SE_FRAME_MAX_PAYLOAD + 1),
                     VIGIL_ETOOBIG);
    assert_int_equal(b.len, SE_FRAME_HEADER + sizeof text - 1);
    se_frame_decoder_init(&dec, 0);
    assert_int_equal(se_frame_decoder_feed(&dec, b.data, b.len), 0);
    assert_int_equal(se_frame_decoder_next(&dec, &f, err, sizeof err), 1);
    assert_int_equal(f.type, SE_FRAME_LOGS);
    assert_int_equal(json_integer_value(json_object_get(f.payload, "first_seq")), 7);
    json_decref(f.payload);
    se_frame_decoder_free(&dec);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips_every_type_fed_whole_or_byte_by_byte),
        cmocka_unit_test(the_header_is_magic_version_type_and_big_endian_length),
        cmocka_unit_test(bad_headers_are_refused_with_their_reason),
        cmocka_unit_test(an_oversized_frame_is_refused_from_its_header_alone),
        cmocka_unit_test(a_payload_that_is_no_json_object_is_refused),
        cmocka_unit_test(append_refuses_what_no_frame_can_carry),
        cmocka_unit_test(a_text_payload_is_framed_as_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
