/* crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, as in iSCSI, ext4 and
 * SSE4.2's crc32 instruction), by a 256-entry table. No state beyond the table, which is
 * built on first use; any thread once the table is built (the first call is not
 * thread-safe: make it from the loop thread). */
#ifndef VIGIL_COMMON_CRC32C_H
#define VIGIL_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of DATA[0..LEN) (borrowed), continued from CRC: 0 to start, or the value a
 * previous call returned for the bytes before. crc32c("123456789") is 0xE3069283. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

#endif
