/* lockout.h: this node's counters of failed password checks, the ground of its lockout
 * policy (docs/api.md, "Authentication"): keys are strings the caller makes ("p:ADDR USER"
 * a pair of source address and account, "ip:ADDR" an address, "u:USER" an account).
 * Failures count within AUTH_LOCK_WINDOW_MS; a key that reaches its limit is locked for
 * AUTH_LOCK_MS. A fixed table (no allocation per key): a key is forgotten when its slot is
 * needed, the least recently failed unlocked one first, so that failures under many other
 * names cannot push a lock out. Loop thread only; times are ms since the epoch. */
#ifndef VIGIL_AUTH_LOCKOUT_H
#define VIGIL_AUTH_LOCKOUT_H

#include <stdint.h>

#define AUTH_LOCK_FAILURES 5          /* a pair (address, account) is locked at this many */
#define AUTH_LOCK_ADDRESS_FAILURES 20 /* an address is locked at this many, any accounts */
#define AUTH_LOCK_WINDOW_MS (15LL * 60 * 1000)
#define AUTH_LOCK_MS (15LL * 60 * 1000)

struct lockout;

/* An empty table (owned by the caller, lockout_free), or NULL. */
struct lockout *lockout_new(void);

void lockout_free(struct lockout *l);

/* Records a failure of KEY (borrowed) at NOW_MS and returns how many KEY has within the
 * window (at most AUTH_LOCK_ADDRESS_FAILURES are remembered). When that reaches LIMIT (> 0;
 * 0: count only, never lock), KEY is locked for AUTH_LOCK_MS, its failures forgotten, and
 * *LOCKED set to 1 (else left alone). */
unsigned lockout_failure(struct lockout *l, const char *key, unsigned limit, int64_t now_ms,
                         int *locked);

/* How many failures KEY has within the window at NOW_MS (0: none, or locked). */
unsigned lockout_recent(struct lockout *l, const char *key, int64_t now_ms);

/* A success at NOW_MS forgets KEY's failures unless it is locked. */
void lockout_success(struct lockout *l, const char *key, int64_t now_ms);

/* How many ms KEY stays locked after NOW_MS; 0 when it is not locked. */
int64_t lockout_remaining(struct lockout *l, const char *key, int64_t now_ms);

#endif
