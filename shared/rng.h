/*
 * rng.h — counter-based random numbers (Philox4x32-10).
 *
 * Every random choice in deeper is a pure function of a key and a counter, so
 * it can be recomputed anywhere, in any order, by any process:
 *     rng_init(&r, seed, rng_stream(epoch, example_id, RNG_WHAT_CROP));
 * gives the same crop for the same (seed, epoch, example) no matter which
 * worker or thread draws it, and needs no saved state to resume.
 *
 * The 64-bit seed is Philox's key; the 64-bit stream and a 64-bit running
 * counter form its 128-bit counter block.  rng_stream() mixes several words
 * into one stream id (splitmix64 finaliser).
 */
#ifndef DEEPER_RNG_H
#define DEEPER_RNG_H

#include <stdint.h>

/* What a random draw is for; part of the stream key so that, for one example,
 * the crop and the flip are independent. */
enum rng_what {
    RNG_WHAT_SHUFFLE = 1, RNG_WHAT_CROP, RNG_WHAT_FLIP, RNG_WHAT_COLOR,
    RNG_WHAT_DROPOUT, RNG_WHAT_INIT, RNG_WHAT_SHARDS, RNG_WHAT_INGEST, RNG_WHAT_ORDER,
};

struct rng {
    uint64_t key;       /* seed */
    uint64_t stream;
    uint64_t counter;   /* next block */
    uint32_t buf[4];
    int avail;          /* unused words left in buf */
};

void rng_init(struct rng *r, uint64_t seed, uint64_t stream);

/* Mix values into a stream id. */
uint64_t rng_mix(uint64_t a, uint64_t b);
static inline uint64_t rng_stream(uint64_t a, uint64_t b, uint64_t c)
{
    return rng_mix(rng_mix(a, b), c);
}

/* One Philox4x32-10 block: counter (4 words), key (2 words) -> out (4 words). */
void rng_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

uint32_t rng_u32(struct rng *r);
uint64_t rng_u64(struct rng *r);
/* Uniform in [0, n), unbiased (Lemire's method); n > 0. */
uint32_t rng_below(struct rng *r, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(struct rng *r);
/* Uniform in [lo, hi). */
static inline float rng_range(struct rng *r, float lo, float hi) { return lo + (hi - lo) * rng_uniform(r); }
/* Standard normal (Box-Muller). */
float rng_normal(struct rng *r);
/* Fisher-Yates shuffle of n uint32/uint64 values. */
void rng_shuffle_u32(struct rng *r, uint32_t *v, uint32_t n);
void rng_shuffle_u64(struct rng *r, uint64_t *v, uint64_t n);

#endif
