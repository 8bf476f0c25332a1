/* latency.c: the latency histogram's buckets (latency.h). */
#include "common/latency.h"

#include <math.h>

int latency_bucket_of(double ms)
{
    double b;
    if (!(ms > 0.01))
        return 0;
    b = ceil(log(ms / 0.01) / log(1.05));
    if (b < 1)
        b = 1;
    return b >= LATENCY_BUCKETS - 1 ? LATENCY_BUCKETS - 1 : (int)b;
}

double latency_bucket_upper(int bucket)
{
    return 0.01 * pow(1.05, bucket);
}
