/*
 * crc32c.c — CRC-32C with a hardware path (SSE4.2) and a portable
 * slicing-by-8 fallback, picked once at first use.
 */
#include "shared/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t crc32c_table[8][256];
static int crc32c_ready;   /* 1: table built, 2: hardware */
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc32c_ready = __builtin_cpu_supports("sse4.2") ? 2 : 1;
#else
    crc32c_ready = 1;
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) { crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff]; n--; }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
              crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
              crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
              crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
        p += 8; n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
static uint32_t crc32c_shift(uint32_t crc, uint64_t len);

/* The crc32 instruction has a latency of 3 cycles and a throughput of 1, so
 * one dependency chain runs at a third of the unit's speed: long buffers are
 * cut into three equal blocks whose CRCs run interleaved and are then joined
 * (raw register values are linear: crc(A||B) = crc(A)*x^(8|B|) ^ crc0(B)). */
#define CRC32C_3WAY_MIN 12288
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) { c = __builtin_ia32_crc32qi((uint32_t)c, *p++); n--; }
    if (n >= CRC32C_3WAY_MIN) {
        size_t blk = n / 24 * 8;          /* three blocks of blk bytes, multiples of 8 */
        const unsigned char *p1 = p + blk, *p2 = p + 2 * blk;
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < blk; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p1 + i, 8);
            memcpy(&w2, p2 + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c = crc32c_shift((uint32_t)c, blk) ^ (uint32_t)c1;
        c = crc32c_shift((uint32_t)c, blk) ^ (uint32_t)c2;
        p += 3 * blk;
        n -= 3 * blk;
    }
    while (n && ((uintptr_t)p & 7)) { c = __builtin_ia32_crc32qi((uint32_t)c, *p++); n--; }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8; n -= 8;
    }
    while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (crc32c_ready == 2) return ~crc32c_hw(crc, data, n);
#endif
    return ~crc32c_sw(crc, data, n);
}

/* ---- combine (zlib's x^(2^n) method, Castagnoli polynomial) ----
 * multmodp multiplies two polynomials modulo P (bit-reflected, x^0 in the
 * top bit); x2n[k] = x^(2^k) mod P. */
static uint32_t crc32c_multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ 0x82F63B78u : b >> 1;
    }
    return p;
}

static uint32_t crc32c_x2n[32];
static pthread_once_t crc32c_x2n_once = PTHREAD_ONCE_INIT;

static void crc32c_x2n_init(void)
{
    uint32_t p = 1u << 30;   /* x^1 */
    crc32c_x2n[0] = p;
    for (int n = 1; n < 32; n++) crc32c_x2n[n] = p = crc32c_multmodp(p, p);
}

/* crc * x^(8*len) mod P: a raw CRC register carried over len zero bytes */
static uint32_t crc32c_shift(uint32_t crc, uint64_t len)
{
    pthread_once(&crc32c_x2n_once, crc32c_x2n_init);
    uint32_t p = 1u << 31;   /* x^0 */
    for (unsigned k = 3; len; len >>= 1, k++)   /* x^(8*len) */
        if (len & 1) p = crc32c_multmodp(crc32c_x2n[k & 31], p);
    return crc32c_multmodp(p, crc);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return crc32c_shift(crc_a, len_b) ^ crc_b;
}
