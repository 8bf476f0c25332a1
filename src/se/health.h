/* health.h: the health state of one server under one monitor, with no I/O.
 *
 * States: HEALTH_UNKNOWN (no check finished yet; the server gets traffic), HEALTH_UP and
 * HEALTH_DOWN. The first result decides UNKNOWN -> UP or DOWN at once; afterwards
 * FALL consecutive failures move UP -> DOWN and RISE consecutive successes DOWN -> UP.
 * health_record is the one function that changes the state; it refuses illegal moves.
 * Runs on the SE loop thread. */
#ifndef VIGIL_SE_HEALTH_H
#define VIGIL_SE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

enum health_state { HEALTH_UNKNOWN = 0, HEALTH_UP, HEALTH_DOWN };

struct health {
    enum health_state state;
    uint32_t successes; /* consecutive, since the last failure */
    uint32_t failures;  /* consecutive, since the last success */
    int64_t since_ms;   /* wall-clock time of the last state change, 0 before any */
    char reason[96];    /* what caused the last change */
};

/* "UNKNOWN", "UP", "DOWN". Static string. */
const char *health_state_name(enum health_state s);

/* Sets H to UNKNOWN with no history. */
void health_init(struct health *h);

/* Records one check result (SUCCESS, with REASON (borrowed) naming what was seen, e.g.
 * "connect refused") at NOW_MS under thresholds RISE and FALL (both >= 1). Returns 1
 * when the state changed, 0 when not, VIGIL_EINVAL for thresholds of 0. */
int health_record(struct health *h, bool success, uint32_t rise, uint32_t fall,
                  const char *reason, int64_t now_ms);

/* True when the server may get new traffic (UNKNOWN or UP). */
bool health_is_usable(const struct health *h);

#endif
