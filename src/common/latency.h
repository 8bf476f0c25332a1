/* latency.h: the latency histogram's buckets, shared by the SE (which counts its requests
 * into them each second, vs_metrics.h) and the controller (which stores and merges them,
 * log_store.h, api_analytics.c). Pure functions, any thread. */
#ifndef VIGIL_COMMON_LATENCY_H
#define VIGIL_COMMON_LATENCY_H

/* Bucket 0 holds [0, 0.01 ms], bucket B > 0 holds (0.01 * 1.05^(B-1), 0.01 * 1.05^B] ms,
 * the last one everything above (about 49 minutes: far past any request). */
#define LATENCY_BUCKETS 600

/* The bucket of MS (negative or NaN: bucket 0). */
int latency_bucket_of(double ms);

/* The upper bound (ms) of bucket B. */
double latency_bucket_upper(int bucket);

#endif
