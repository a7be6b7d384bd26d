/* CRC-32 with the IEEE / zlib polynomial (reflected 0xEDB88320), as
 * Python's zlib.crc32. */
#ifndef CNNC_MODEL_CRC32_H
#define CNNC_MODEL_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include "cnnc_internal.h"

CNNC_INTERNAL uint32_t model_crc32(const void *data, size_t size);
/* Continues a CRC: model_crc32_update(model_crc32(a), b) is the CRC of a then b
 * (start from 0, as zlib.crc32(data, crc)). */
CNNC_INTERNAL uint32_t model_crc32_update(uint32_t crc, const void *data, size_t size);

#endif
