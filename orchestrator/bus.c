#include "bus.h"

/* Kafka's murmur2 (the Java client's Utils.murmur2): MurmurHash2 with seed 0x9747b28c, the
 * input read as little-endian 32-bit words, the tail mixed in before the final avalanche. */
static uint32_t murmur2(const unsigned char *data, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t words = len / 4;

    for (size_t i = 0; i < words; i++) {
        const unsigned char *p = data + i * 4;
        uint32_t k =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }

    const unsigned char *tail = data + words * 4;
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)tail[0];
        h *= m;
        break;
    default:
        break;
    }

    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t omo_bus_partition(const char *key, size_t len, int32_t partitions)
{
    if (partitions < 1)
        return 0;
    uint32_t h = murmur2((const unsigned char *)(key ? key : ""), key ? len : 0);
    /* Java's toPositive: drop the sign bit rather than take an absolute value. */
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)partitions);
}
