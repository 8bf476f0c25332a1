/* store_auth.h: the store's commands on users, API tokens and revoked sessions
 * (store_auth.c), for the command table in store.c, where each is marked as one that
 * changes auth (store_auth_generation moves). Each is a store_command_fn (store-int.h):
 * it runs inside the transaction store.c holds, sets the outcome named below on success,
 * refuses as named (changing nothing), and returns 0, VIGIL_EINVAL for a malformed
 * command (or an unknown role), or VIGIL_EIO. Loop thread. */
#ifndef VIGIL_STORE_AUTH_H
#define VIGIL_STORE_AUTH_H

#include "controller/store/store-int.h"

/* "user_put": a user created ("create": true; STORE_CREATED) or replaced (STORE_OK), with
 * {"username", "role"} as body. Refused: STORE_CONFLICT (the name is taken; the last
 * admin would lose the role), STORE_NOT_FOUND (no such user to replace). */
store_command_fn store_auth_user_put;

/* "user_delete": the user goes and its tokens are revoked; STORE_REMOVED. Refused:
 * STORE_NOT_FOUND, STORE_CONFLICT (the last admin). */
store_command_fn store_auth_user_delete;

/* "token_create": STORE_CREATED. Refused: STORE_NOT_FOUND (no such user),
 * STORE_CONFLICT (the id or keyed hash exists). */
store_command_fn store_auth_token_create;

/* "token_revoke" (of one user's tokens when "user" is given): STORE_REMOVED. Refused:
 * STORE_NOT_FOUND. */
store_command_fn store_auth_token_revoke;

/* "session_revoke" (logout): the session is refused from now on; STORE_REMOVED. */
store_command_fn store_auth_session_revoke;

#endif
