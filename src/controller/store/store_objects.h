/* store_objects.h: the store's commands on config objects, nodes and cluster settings
 * (store_objects.c), for the command table in store.c. Each is a store_command_fn
 * (store-int.h): it runs inside the transaction store.c holds, sets the outcome named
 * below on success, refuses as named (changing nothing), and returns 0, VIGIL_EINVAL for
 * a malformed command, or VIGIL_EIO / VIGIL_ENOMEM. Loop thread. */
#ifndef VIGIL_STORE_OBJECTS_H
#define VIGIL_STORE_OBJECTS_H

#include "controller/store/store-int.h"

/* "object_create": STORE_CREATED with the stored object as body. Refused: STORE_INVALID
 * (the object fails validation, a reference names no object, more than 256 references),
 * STORE_CONFLICT (the name or the uuid is taken). */
store_command_fn store_objects_create;

/* "object_update": STORE_OK with the stored object as body. Refused: STORE_NOT_FOUND (no
 * such object), and as object_create. */
store_command_fn store_objects_update;

/* "object_delete": STORE_REMOVED. Refused: STORE_NOT_FOUND, STORE_CONFLICT (another
 * object still refers to it). */
store_command_fn store_objects_delete;

/* "node_register": a node's addresses, recorded or replaced; STORE_OK. */
store_command_fn store_objects_node_register;

/* "cluster_init": the cluster's uuid, name, key, certificate and first admin, unless the
 * cluster is initialised already (the first entry wins); STORE_OK either way. */
store_command_fn store_objects_cluster_init;

/* "tls_cert_renew": a new served certificate; STORE_OK. Refused: STORE_CONFLICT when
 * the certificate it replaces is no longer the one served (a renewal raced it). */
store_command_fn store_objects_tls_cert_renew;

#endif
