/* balance.h: load-balancing choices over a pool's servers, with no I/O.
 *
 * The caller describes the servers as arrays indexed 0..n-1 (eligible: enabled and not
 * down; active: requests or connections in progress; weight: the pool's "ratio").
 * Everything runs on the SE loop thread; nothing here is thread-safe. */
#ifndef VIGIL_SE_BALANCE_H
#define VIGIL_SE_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Virtual nodes per unit of weight on the consistent-hash ring. */
#define BALANCE_RING_VNODES 160

/* Round robin (smooth weighted, as in nginx): state owned by the caller, zeroed to start.
 * CURRENT holds one counter per server (N entries, caller-allocated, zeroed). */
struct balance_rr {
    size_t next; /* unweighted cursor */
};

/* Picks the next eligible server in round-robin order. WEIGHTS may be NULL (all 1);
 * CURRENT (N entries) is the smooth-weighted state and may be NULL when WEIGHTS is NULL.
 * Returns the index, or -1 when no server is eligible. */
int balance_pick_round_robin(struct balance_rr *rr, const bool *eligible,
                             const uint32_t *weights, int64_t *current, size_t n);

/* Picks the eligible server with the fewest ACTIVE per unit of weight (WEIGHTS may be
 * NULL); ties go round robin from RR's cursor. Returns the index or -1. */
int balance_pick_least_connections(struct balance_rr *rr, const bool *eligible,
                                   const uint32_t *active, const uint32_t *weights, size_t n);

/* A consistent-hash ring. Opaque; created by balance_ring_build, owned by the caller,
 * freed with balance_ring_free. */
struct balance_ring;

/* Builds a ring for N servers whose stable identities hash to KEYS (e.g. the hash of
 * "ip:port") with WEIGHTS (NULL: all 1). Returns NULL on allocation failure. */
struct balance_ring *balance_ring_build(const uint64_t *keys, const uint32_t *weights, size_t n);

void balance_ring_free(struct balance_ring *ring);

/* Picks the server owning HASH: the first eligible one clockwise from HASH on the ring.
 * Returns the index or -1 when none is eligible. */
int balance_ring_pick(const struct balance_ring *ring, uint64_t hash, const bool *eligible);

/* A 64-bit hash of LEN bytes (FNV-1a with a final avalanche); stable across runs. */
uint64_t balance_hash(const void *data, size_t len);

#endif
