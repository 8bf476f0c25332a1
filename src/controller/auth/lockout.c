/* lockout.c: the failed-check counters (lockout.h). */
#include "controller/auth/lockout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCKOUT__SLOTS 1024 /* keys tracked */

struct lockout__entry {
    char key[200];
    int64_t failures[AUTH_LOCK_ADDRESS_FAILURES]; /* a ring of failure times (0: none) */
    unsigned n;
    int64_t locked_until_ms;
    int64_t last_ms;
};

struct lockout {
    struct lockout__entry slots[LOCKOUT__SLOTS];
};

struct lockout *lockout_new(void)
{
    return calloc(1, sizeof(struct lockout));
}

void lockout_free(struct lockout *l)
{
    free(l);
}

/* KEY's entry, or (CREATE) a slot taken for it: the least recently failed entry that is not
 * locked (every slot locked: the lock closest to its end goes). */
static struct lockout__entry *lockout__find(struct lockout *l, const char *key, int create,
                                            int64_t now)
{
    struct lockout__entry *oldest = NULL, *oldest_locked = &l->slots[0];
    for (unsigned i = 0; i < LOCKOUT__SLOTS; i++) {
        struct lockout__entry *e = &l->slots[i];
        if (strcmp(e->key, key) == 0)
            return e;
        if (e->locked_until_ms > now) {
            if (e->locked_until_ms < oldest_locked->locked_until_ms)
                oldest_locked = e;
        } else if (oldest == NULL || e->last_ms < oldest->last_ms) {
            oldest = e;
        }
    }
    if (!create)
        return NULL;
    if (oldest == NULL)
        oldest = oldest_locked;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    return oldest;
}

static unsigned lockout__count(const struct lockout__entry *e, int64_t now)
{
    unsigned recent = 0;
    for (unsigned i = 0; i < AUTH_LOCK_ADDRESS_FAILURES; i++)
        if (e->failures[i] != 0 && now - e->failures[i] <= AUTH_LOCK_WINDOW_MS)
            recent++;
    return recent;
}

unsigned lockout_failure(struct lockout *l, const char *key, unsigned limit, int64_t now_ms,
                         int *locked)
{
    struct lockout__entry *e = lockout__find(l, key, 1, now_ms);
    unsigned recent;

    e->failures[e->n++ % AUTH_LOCK_ADDRESS_FAILURES] = now_ms;
    e->last_ms = now_ms;
    recent = lockout__count(e, now_ms);
    if (limit > 0 && recent >= limit && e->locked_until_ms <= now_ms) {
        e->locked_until_ms = now_ms + AUTH_LOCK_MS;
        memset(e->failures, 0, sizeof e->failures);
        *locked = 1;
    }
    return recent;
}

unsigned lockout_recent(struct lockout *l, const char *key, int64_t now_ms)
{
    struct lockout__entry *e = lockout__find(l, key, 0, now_ms);
    return e != NULL ? lockout__count(e, now_ms) : 0;
}

void lockout_success(struct lockout *l, const char *key, int64_t now_ms)
{
    struct lockout__entry *e = lockout__find(l, key, 0, now_ms);
    if (e != NULL && e->locked_until_ms <= now_ms)
        memset(e->failures, 0, sizeof e->failures);
}

int64_t lockout_remaining(struct lockout *l, const char *key, int64_t now_ms)
{
    struct lockout__entry *e = lockout__find(l, key, 0, now_ms);
    return e != NULL && e->locked_until_ms > now_ms ? e->locked_until_ms - now_ms : 0;
}
