/* se_config.h: one generation of the SE's configuration (virtual services, pools, health
 * monitors), validated and with its references resolved. A generation is immutable and
 * reference counted: the running engine holds the current one, and every connection or
 * request in flight holds the one it started with, so a reload never changes what a
 * request in progress sees. Loop thread only (the counts are not atomic). */
#ifndef VIGIL_SE_CONFIG_H
#define VIGIL_SE_CONFIG_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum se_lb { SE_LB_ROUND_ROBIN = 0, SE_LB_LEAST_CONNECTIONS, SE_LB_CONSISTENT_HASH };
enum se_app { SE_APP_HTTP = 0, SE_APP_TCP };
enum se_monitor_type { SE_MONITOR_TCP = 0, SE_MONITOR_HTTP };

/* Bit (1 << class) for HTTP_1XX .. HTTP_5XX. */
#define SE_CODES_ANY 0x3e

struct se_monitor_config {
    char *name;
    char *uuid;             /* NULL when the file gave none */
    enum se_monitor_type type;
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t rise;          /* successful_checks */
    uint32_t fall;          /* failed_checks */
    uint16_t port;          /* monitor_port, 0: the server's port */
    char *http_request;     /* HTTP: the request line (and headers), without the final CRLFs */
    uint32_t codes;         /* HTTP: accepted status classes, bit (1 << class) */
};

struct se_server_config {
    struct sockaddr_in addr;
    char ip[16];
    uint16_t port;
    bool enabled;
    uint32_t ratio;         /* weight, 1..20 */
};

struct se_pool_config {
    char *name;
    char *uuid;
    enum se_lb lb;
    char *hash_header;      /* consistent hash: the HTTP request header whose value is the
                             * key (consistent_hash_header), NULL: the client IP */
    size_t n_servers;
    struct se_server_config *servers;
    size_t n_monitors;
    size_t *monitors;       /* indexes into the generation's monitors */
};

struct se_vs_config {
    char *name;
    char *uuid;
    bool enabled;
    struct sockaddr_in vip; /* port 0; each service gives one */
    char vip_text[16];
    size_t n_ports;
    uint16_t *ports;
    enum se_app app;
    bool xff_append;        /* x_forwarded_for "append": keep the client's chain (else replace) */
    size_t pool;            /* index into the generation's pools */
};

struct se_config {
    int refs;
    uint64_t version;       /* the controller's config_version; 0: numbered by the engine */
    json_t *source;         /* the normalised objects, as the file shape */
    size_t n_monitors, n_pools, n_vs;
    struct se_monitor_config *monitors;
    struct se_pool_config *pools;
    struct se_vs_config *vs;
};

/* Builds a generation from ROOT (borrowed), the file shape {"healthmonitor": [...],
 * "pool": [...], "virtualservice": [...]}: each object is validated with obj_validate
 * (references by uuid or name), names must be unique per type, references must resolve,
 * and no two enabled virtual services may listen on the same VIP and port. Returns the new
 * generation (one reference, the caller's) or NULL with a message naming the bad part in
 * ERR, e.g. "virtualservice[1] (web): pool_ref: no pool \"x\"". */
struct se_config *se_config_from_json(json_t *root, char *err, size_t errlen);

/* Reads and builds the generation in file PATH. As se_config_from_json; ERR also names
 * unreadable files and JSON syntax errors with their line. */
struct se_config *se_config_load_file(const char *path, char *err, size_t errlen);

/* Takes another reference to C and returns C. */
struct se_config *se_config_ref(struct se_config *c);

/* Drops a reference; the last one frees C. NULL is allowed. */
void se_config_unref(struct se_config *c);

/* True when the two monitors would check the same way. */
bool se_monitor_config_equal(const struct se_monitor_config *a,
                             const struct se_monitor_config *b);

#endif
