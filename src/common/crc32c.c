/* crc32c.c: table-driven CRC-32C. */
#include "common/crc32c.h"

#include <stdbool.h>

static uint32_t crc32c__table[256];
static bool crc32c__ready;

static void crc32c__build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i;
        for (int bit = 0; bit < 8; bit++)
            r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
        crc32c__table[i] = r;
    }
    crc32c__ready = true;
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (!crc32c__ready)
        crc32c__build();
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = (crc >> 8) ^ crc32c__table[(crc ^ p[i]) & 0xffu];
    return ~crc;
}
