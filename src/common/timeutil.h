/* timeutil.h: wall-clock and monotonic time, RFC 3339 with milliseconds in UTC. */
#ifndef VIGIL_TIMEUTIL_H
#define VIGIL_TIMEUTIL_H

#include <stdint.h>

/* "2026-11-28T06:00:00.123Z" plus NUL. */
#define TIME_RFC3339_LEN 25

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_now_ms(void);

/* Milliseconds from an arbitrary origin (CLOCK_MONOTONIC), for durations. */
int64_t time_mono_ms(void);

/* Writes MS (epoch milliseconds) as RFC 3339 UTC with milliseconds into OUT. */
void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_LEN]);

/* Parses an RFC 3339 time ("...Z" or "+HH:MM", optional fraction) into epoch ms.
 * Returns 0, or VIGIL_EINVAL when S is not such a time. */
int time_parse_rfc3339(const char *s, int64_t *ms);

#endif
