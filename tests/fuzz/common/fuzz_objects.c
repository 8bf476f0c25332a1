/* libFuzzer target for the REST JSON validation of every object type (obj_validate in
 * src/common/objects.c), as the API reads a body (api_body_object: jansson, duplicate keys
 * refused) and as the SE reads its config file. Input: one byte (bits 0-1 the type, bit 2
 * the SE file's flags: references by name, uuid kept), then the body's text.
 * Checks: a refusal has a message that starts with a field path ("path: why"); an accepted
 * object validates again to itself (the store validates what the API validated: a
 * difference would refuse a write the API accepted, or store something else), also after
 * the trip through JSON text the raft log and the database make, and with a uuid added the
 * way the SE receives it (KEEP_UUID | REFS_BY_NAME); every reference it lists names a
 * uuid (API flags) or a non-empty string.
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/objects.h"

#define UUID "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"

static void fail(enum obj_type t, const char *what, const json_t *a, const json_t *b)
{
    char *ta = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *tb = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    fprintf(stderr, "fuzz_objects: %s: %s\n  first:  %.2000s\n  second: %.2000s\n",
            obj_type_name(t), what, ta ? ta : "-", tb ? tb : "-");
    abort();
}

/* OBJ (accepted with FLAGS) must come out of another validation with FLAGS2 unchanged
 * (apart from the uuid KEEP_UUID keeps). */
static void again(enum obj_type t, const json_t *obj, json_t *in, int flags2, const char *what)
{
    char err[256];
    json_t *back = obj_validate(t, in, flags2, err, sizeof err);

    if (back == NULL) {
        fprintf(stderr, "fuzz_objects: the second validation said: %s\n", err);
        fail(t, what, obj, in);
    }
    json_object_del(back, "uuid");
    if (!json_equal(back, obj))
        fail(t, what, obj, back);
    json_decref(back);
}

static void accepted(enum obj_type t, int flags, json_t *obj)
{
    struct obj_ref refs[256];
    size_t n = obj_refs(t, obj, refs, 256);
    char *text;
    json_t *copy;

    if (json_object_get(obj, "uuid") != NULL && !(flags & OBJ_VALIDATE_KEEP_UUID))
        fail(t, "a uuid kept without KEEP_UUID", obj, NULL);
    json_object_del(obj, "uuid");
    for (size_t i = 0; i < n && i < 256; i++)
        if ((flags & OBJ_VALIDATE_REFS_BY_NAME) ? refs[i].target[0] == '\0'
                                                : !obj_uuid_valid(refs[i].target))
            fail(t, "a reference of the wrong form", obj, NULL);
    again(t, obj, obj, flags, "not stable under validation");
    text = json_dumps(obj, JSON_COMPACT);
    copy = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (copy == NULL)
        fail(t, "its JSON text does not read back", obj, NULL);
    again(t, obj, copy, flags, "changed by the trip through JSON text");
    json_object_set_new(copy, "uuid", json_string(UUID));
    again(t, obj, copy, flags | OBJ_VALIDATE_KEEP_UUID | OBJ_VALIDATE_REFS_BY_NAME,
          "refused or changed the way the SE reads it");
    json_decref(copy);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum obj_type t;
    int flags;
    json_t *body, *obj;
    char err[256];

    if (size == 0)
        return 0;
    t = (enum obj_type)(data[0] & 3);
    flags = data[0] & 4 ? OBJ_VALIDATE_REFS_BY_NAME | OBJ_VALIDATE_KEEP_UUID : 0;
    body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    memset(err, 'x', sizeof err);
    obj = obj_validate(t, body, flags, err, sizeof err);
    if (obj == NULL) {
        if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0' ||
            strstr(err, ": ") == NULL)
            fail(t, "a refusal whose message without 'path: why'", body, NULL);
    } else {
        accepted(t, flags, obj);
        json_decref(obj);
    }
    json_decref(body);
    return 0;
}
