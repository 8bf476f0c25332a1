/* objects.h: the four config object types of the REST API (contract "Config objects"),
 * their validation and their references. Shared by the controller (REST, store) and the
 * SE (standalone config file, config pushed by controllers).
 *
 * Conventions: functions return 0 or a negative VIGIL_E* code (common/errors.h); no global
 * state; nothing here allocates except where the contract comment says the caller owns. */
#ifndef VIGIL_OBJECTS_H
#define VIGIL_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

enum obj_type {
    OBJ_HEALTHMONITOR = 0,
    OBJ_POOL,
    OBJ_VIRTUALSERVICE,
    OBJ_SERVICEENGINE,
    OBJ__COUNT
};

/* Maximum length of a name (bytes, UTF-8). */
#define OBJ_NAME_MAX 255
/* Length of a textual uuid, without the NUL. */
#define OBJ_UUID_LEN 36

/* Flags for obj_validate. */
enum {
    /* References may name the other object by its uuid or by its name (SE config file). */
    OBJ_VALIDATE_REFS_BY_NAME = 1 << 0,
    /* Keep a "uuid" field (checked to be a canonical uuid) instead of removing it: for
     * objects that already have their identity (SE config file, config pushed to an SE). */
    OBJ_VALIDATE_KEEP_UUID = 1 << 1,
};

/* Limits enforced by obj_validate (bytes for strings, entries for arrays). */
#define OBJ_DESCRIPTION_MAX 1024        /* optional "description" of every type */
#define OBJ_HOSTNAME_MAX 253            /* pool servers[].hostname */
#define OBJ_HTTP_REQUEST_MAX 1024       /* healthmonitor http_request */
#define OBJ_PUBLIC_KEY_MAX 2048         /* serviceengine public_key, as sent */
#define OBJ_POOL_SERVERS_MAX 1024       /* pool servers */
#define OBJ_POOL_MONITORS_MAX 16        /* pool health_monitor_refs */
#define OBJ_HASH_HEADER_MAX 64          /* pool consistent_hash_header */
#define OBJ_VS_SERVICES_MAX 64          /* virtualservice services */
#define OBJ_VS_SE_REFS_MAX 64           /* virtualservice se_refs */

/* "healthmonitor", "pool", "virtualservice", "serviceengine". Static string. */
const char *obj_type_name(enum obj_type t);

/* The type whose API name is NAME, or -1. */
int obj_type_from_name(const char *name);

/* True if S is a canonical lower-case 8-4-4-4-12 hex uuid. */
bool obj_uuid_valid(const char *s);

/* Writes a random (version 4) uuid into OUT (OBJ_UUID_LEN + 1 bytes). */
void obj_uuid_generate(char out[OBJ_UUID_LEN + 1]);

/* Validates BODY (borrowed) as an object of type T and returns a new normalised object
 * (caller owns the reference): defaults filled in, read-only fields (uuid and the
 * serviceengine runtime fields) removed, every other field checked for type and range.
 * Unknown fields are refused. On failure returns NULL and writes into ERR a message
 * that starts with the bad field's path, e.g. "servers[1].port: must be 1-65535".
 * References are checked for form only (a uuid, or a non-empty string with
 * OBJ_VALIDATE_REFS_BY_NAME), not for existence. */
json_t *obj_validate(enum obj_type t, json_t *body, int flags, char *err, size_t errlen);

/* One reference from an object to another. */
struct obj_ref {
    enum obj_type type;   /* the referenced type */
    const char *field;    /* the referring field, e.g. "pool_ref" (static string) */
    const char *target;   /* borrowed from the object: uuid (or name) of the target */
};

/* Lists the references of a validated object OBJ of type T into REFS (at most MAX).
 * Returns how many there are (which may exceed MAX: then only MAX were written). */
size_t obj_refs(enum obj_type t, const json_t *obj, struct obj_ref *refs, size_t max);

#endif
