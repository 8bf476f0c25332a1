/* balance.c: round robin, least connections and the consistent-hash ring. */
#include "se/balance.h"

#include <stdlib.h>
#include <string.h>

struct balance_ring_point {
    uint64_t hash;
    uint32_t server;
};

struct balance_ring {
    size_t n_points;
    size_t n_servers;
    struct balance_ring_point points[];
};

static uint64_t balance__mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t balance_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return balance__mix(h);
}

int balance_pick_round_robin(struct balance_rr *rr, const bool *eligible,
                             const uint32_t *weights, int64_t *current, size_t n)
{
    if (n == 0)
        return -1;
    if (weights == NULL || current == NULL) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (rr->next + k) % n;
            if (eligible[i]) {
                rr->next = (i + 1) % n;
                return (int)i;
            }
        }
        return -1;
    }
    /* Smooth weighted round robin: add each weight, take the largest, subtract the total. */
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!eligible[i])
            continue;
        current[i] += weights[i];
        total += weights[i];
        if (best < 0 || current[i] > current[best])
            best = (int)i;
    }
    if (best >= 0)
        current[best] -= total;
    return best;
}

int balance_pick_least_connections(struct balance_rr *rr, const bool *eligible,
                                   const uint32_t *active, const uint32_t *weights, size_t n)
{
    int best = -1;
    uint64_t best_num = 0, best_den = 1;

    for (size_t k = 0; k < n; k++) {
        size_t i = (rr->next + k) % n;
        uint64_t w = weights ? weights[i] : 1;
        if (!eligible[i])
            continue;
        if (w == 0)
            w = 1;
        /* compare active[i] / w < best_num / best_den without division */
        if (best < 0 || (uint64_t)active[i] * best_den < best_num * w) {
            best = (int)i;
            best_num = active[i];
            best_den = w;
        }
    }
    if (best >= 0)
        rr->next = ((size_t)best + 1) % n;
    return best;
}

static int balance__point_cmp(const void *a, const void *b)
{
    const struct balance_ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

struct balance_ring *balance_ring_build(const uint64_t *keys, const uint32_t *weights, size_t n)
{
    size_t total = 0;
    struct balance_ring *ring;

    for (size_t i = 0; i < n; i++)
        total += (size_t)BALANCE_RING_VNODES * (weights && weights[i] ? weights[i] : 1);
    ring = malloc(sizeof *ring + total * sizeof ring->points[0]);
    if (ring == NULL)
        return NULL;
    ring->n_points = 0;
    ring->n_servers = n;
    for (size_t i = 0; i < n; i++) {
        size_t vnodes = (size_t)BALANCE_RING_VNODES * (weights && weights[i] ? weights[i] : 1);
        for (size_t v = 0; v < vnodes; v++) {
            struct balance_ring_point *pt = &ring->points[ring->n_points++];
            pt->hash = balance__mix(keys[i] ^ balance__mix(v + 1));
            pt->server = (uint32_t)i;
        }
    }
    qsort(ring->points, ring->n_points, sizeof ring->points[0], balance__point_cmp);
    return ring;
}

void balance_ring_free(struct balance_ring *ring)
{
    free(ring);
}

int balance_ring_pick(const struct balance_ring *ring, uint64_t hash, const bool *eligible)
{
    size_t lo = 0, hi, start;

    if (ring == NULL || ring->n_points == 0)
        return -1;
    hi = ring->n_points;
    while (lo < hi) { /* first point with point.hash >= hash */
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    start = lo % ring->n_points;
    for (size_t k = 0; k < ring->n_points; k++) {
        const struct balance_ring_point *pt = &ring->points[(start + k) % ring->n_points];
        if (eligible[pt->server])
            return (int)pt->server;
    }
    return -1;
}
