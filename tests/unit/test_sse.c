/* Server-Sent Events framing (controller/net/sse.h): what a payload can and cannot do to
 * the stream, checked by parsing the output as a browser does (the WHATWG event-stream
 * rules, reimplemented here in a few lines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/errors.h"
#include "controller/net/sse.h"

/* One dispatched message as a browser sees it. */
struct parsed {
    char event[64];
    char id[32];
    char data[512];
};

/* Parses TEXT (LEN bytes) into at most CAP messages; returns how many were dispatched
 * (a message without data lines is not dispatched, as in browsers). */
static int parse(const char *text, size_t len, struct parsed *out, int cap)
{
    struct parsed cur;
    int n = 0, have_data = 0;
    size_t pos = 0;

    memset(&cur, 0, sizeof cur);
    while (pos < len) {
        size_t end = pos, vlen;
        char line[600], *colon, *value;
        while (end < len && text[end] != '\n' && text[end] != '\r')
            end++;
        if (end == len)
            break; /* an unterminated line is not processed */
        snprintf(line, sizeof line, "%.*s", (int)(end - pos), text + pos);
        pos = end + (text[end] == '\r' && end + 1 < len && text[end + 1] == '\n' ? 2 : 1);
        if (line[0] == '\0') { /* dispatch */
            if (have_data && n < cap) {
                size_t dl = strlen(cur.data);
                if (dl > 0 && cur.data[dl - 1] == '\n')
                    cur.data[dl - 1] = '\0';
                out[n++] = cur;
            }
            snprintf(cur.id, sizeof cur.id, "%s", n > 0 ? out[n - 1].id : "");
            cur.event[0] = cur.data[0] = '\0';
            have_data = 0;
            continue;
        }
        if (line[0] == ':')
            continue;
        colon = strchr(line, ':');
        value = colon != NULL ? colon + 1 : line + strlen(line);
        if (colon != NULL)
            *colon = '\0';
        if (*value == ' ')
            value++;
        vlen = strlen(value);
        if (strcmp(line, "event") == 0)
            snprintf(cur.event, sizeof cur.event, "%.63s", value);
        else if (strcmp(line, "id") == 0)
            snprintf(cur.id, sizeof cur.id, "%.31s", value);
        else if (strcmp(line, "data") == 0) {
            size_t dl = strlen(cur.data);
            snprintf(cur.data + dl, sizeof cur.data - dl, "%.*s\n", (int)vlen, value);
            have_data = 1;
        }
    }
    return n;
}

static void test_plain_message(void **state)
{
    struct buf b = {0};
    (void)state;
    assert_int_equal(sse_append_message(&b, "event", 42, "{\"a\":1}", 7), 0);
    assert_int_equal(b.len, strlen("event: event\nid: 42\ndata: {\"a\":1}\n\n"));
    assert_memory_equal(b.data, "event: event\nid: 42\ndata: {\"a\":1}\n\n", b.len);
    buf_free(&b);
    /* no event name, no id */
    assert_int_equal(sse_append_message(&b, NULL, 0, "x", 1), 0);
    assert_memory_equal(b.data, "data: x\n\n", b.len);
    buf_free(&b);
}

/* Every line end in the data becomes a new data line: the payload comes back whole, and
 * cannot end the message, set an id or an event name. */
static void test_line_ends_cannot_forge_fields(void **state)
{
    static const char *const payloads[] = {
        "a\nid: 999\n\nevent: evil\ndata: x",
        "a\r\nid: 999\r\n\r\nevent: evil",
        "a\rid: 999\r\revent: evil\r",
        "\n\n\n",
        "\r\n",
        "\r",
        "",
        "trailing\n",
        ": not a comment\nretry: 1",
    };
    (void)state;
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        struct buf b = {0};
        struct parsed got[4];
        char expect[128];
        size_t o = 0;
        const char *p = payloads[i];
        /* what a browser must see: every line end as \n */
        for (size_t j = 0; p[j] != '\0'; j++) {
            if (p[j] == '\r' && p[j + 1] == '\n')
                continue;
            expect[o++] = p[j] == '\r' ? '\n' : p[j];
        }
        expect[o] = '\0';
        assert_int_equal(sse_append_message(&b, "event", 7, p, strlen(p)), 0);
        assert_int_equal(parse(b.data, b.len, got, 4), 1);
        assert_string_equal(got[0].event, "event");
        assert_string_equal(got[0].id, "7");
        assert_string_equal(got[0].data, expect);
        /* no raw CR survives, and the only blank line is the last */
        assert_null(memchr(b.data, '\r', b.len));
        for (size_t j = 0; j + 2 < b.len; j++)
            assert_false(b.data[j] == '\n' && b.data[j + 1] == '\n');
        buf_free(&b);
    }
}

static void test_several_messages_in_a_row(void **state)
{
    struct buf b = {0};
    struct parsed got[4];
    (void)state;
    assert_int_equal(sse_append_message(&b, "snapshot", 0, "{}", 2), 0);
    assert_int_equal(sse_append_comment(&b, "ping"), 0);
    assert_int_equal(sse_append_message(&b, "event", 5, "one\ntwo", 7), 0);
    assert_int_equal(parse(b.data, b.len, got, 4), 2);
    assert_string_equal(got[0].event, "snapshot");
    assert_string_equal(got[0].id, "");
    assert_string_equal(got[1].event, "event");
    assert_string_equal(got[1].id, "5");
    assert_string_equal(got[1].data, "one\ntwo");
    buf_free(&b);
}

static void test_bad_names_refused(void **state)
{
    struct buf b = {0};
    (void)state;
    assert_int_equal(sse_append_message(&b, "ev\nid: 1", 0, "x", 1), VIGIL_EINVAL);
    assert_int_equal(sse_append_message(&b, "ev\r", 0, "x", 1), VIGIL_EINVAL);
    assert_int_equal(sse_append_comment(&b, "ping\n\ndata: x"), VIGIL_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(sse_append_comment(&b, "ping"), 0);
    assert_memory_equal(b.data, ": ping\n\n", b.len);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_message),
        cmocka_unit_test(test_line_ends_cannot_forge_fields),
        cmocka_unit_test(test_several_messages_in_a_row),
        cmocka_unit_test(test_bad_names_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
