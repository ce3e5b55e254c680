/*
 * philox.h: counter-based randomness (Philox4x32-10, Salmon et al. 2011).
 *
 * Every random number in deediff is a pure function of (seed, purpose, step,
 * index): no generator state, no globals. So a run is reproducible, any single
 * number can be regenerated alone, a resumed run draws what the uninterrupted
 * run would have drawn, and the CPU and a CUDA kernel draw the same bits.
 *
 * Mapping onto Philox (fixed forever: changing it changes every run):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { purpose, step, index & 0xffffffff, index >> 32 }
 * One Philox call gives 4 words; word w of call `index` is "element"
 * 4*index + w. Element-level helpers address element e = 4*index + w, so
 * element e of a stream is regenerated alone by philox_*_at(..., e).
 *
 * How a batch addresses its noise: image `image_id` of a stream of images of
 * `per_image` values each (e.g. C*H*W) uses elements
 *   e = image_id * per_image + j,   j = 0 .. per_image-1,
 * i.e. philox_fill_normal(out, per_image, seed, purpose, step,
 * image_id * per_image). Images therefore get their own values whatever the
 * batch size or the order in which they are computed. `step` is the training
 * step, the sampling step, the epoch or the layer index, as each purpose says.
 *
 * Floats: a uniform takes a word's top 24 bits with the lowest of them forced
 * to 1, ((x >> 8) | 1) * 2^-24: exactly representable, strictly inside (0, 1)
 * (never 0, never 1), symmetric about 1/2. Normals use Box-Muller on the
 * uniforms of words (0,1) and (2,3), both outputs used:
 *   r = sqrt(-2 ln u0), z0 = r cos(2 pi u1), z1 = r sin(2 pi u1).
 * The words are bit-identical everywhere; the floats from them agree to the
 * last few ulp between the CPU's libm and CUDA's logf/sincosf.
 *
 * The round function and these helpers are static inline and work in CUDA
 * device code (PHILOX_FN adds __host__ __device__ under nvcc).
 */
#ifndef DEEDIFF_PHILOX_H
#define DEEDIFF_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PHILOX_FN static inline __host__ __device__
#else
#define PHILOX_FN static inline
#endif

/* What a stream is for. The numbers are part of every run's identity: never
   renumber, only append. `step` per purpose in brackets. */
typedef enum {
    RNG_TEST = 0,              /* tests and benchmarks [anything] */
    RNG_NOISE_TRAIN_T = 1,     /* training timestep t ~ U(0,1) [train step], element = image in batch order */
    RNG_NOISE_TRAIN_EPS = 2,   /* training noise eps [train step], element = image*CHW + j */
    RNG_DATA_SHUFFLE = 3,      /* epoch permutation [epoch], element = Fisher-Yates position */
    RNG_DATA_FLIP = 4,         /* random horizontal flip [epoch], element = position in epoch */
    RNG_SAMPLE_INIT = 5,       /* sampler's x_T [0], element = sample_id*CHW + j */
    RNG_SAMPLE_STEP = 6,       /* sampler's per-step noise [sampling step], element = sample_id*CHW + j */
    RNG_LABEL_DROP = 7,        /* classifier-free guidance label drop [train step], element = image */
    RNG_INIT_WEIGHTS = 8,      /* parameter init [parameter index], element = value index */
    RNG_SAMPLE_LABEL = 9,      /* class labels of generated samples [0], element = sample_id */
    RNG_DATA_CAPTION = 10,     /* which caption of a text-image pair [epoch], element = position */
    RNG_LATENT_SAMPLE = 11,    /* z = mean + std*eps from stored moments [epoch], element = position*CHW + j */
    RNG_INIT_METHOD = 12,      /* a method's own parameters (model/method.h) [parameter index], element = value index */
    RNG_AE_POSTERIOR = 13,     /* training an autoencoder: z = mean + std*eps [train step], element = image*CHW + j */
    RNG_PURPOSE_COUNT
} RngPurpose;

typedef struct { uint32_t v[4]; } Philox4;

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

PHILOX_FN void philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* Philox4x32 with 10 rounds: counter ctr, key (k0, k1) -> 4 words */
PHILOX_FN Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += PHILOX_W0; k1 += PHILOX_W1; }
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(PHILOX_M0, ctr.v[0], &hi0, &lo0);
        philox_mulhilo(PHILOX_M1, ctr.v[2], &hi1, &lo1);
        Philox4 next = {{ hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0 }};
        ctr = next;
    }
    return ctr;
}

/* the 4 words of call `index` of stream (seed, purpose, step) */
PHILOX_FN Philox4 philox_draw(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t index)
{
    Philox4 ctr = {{ purpose, step, (uint32_t)index, (uint32_t)(index >> 32) }};
    return philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* a word -> uniform in (0, 1) on the grid of odd multiples of 2^-24 */
PHILOX_FN float philox_u01(uint32_t x)
{
    return (float)((x >> 8) | 1u) * (1.0f / 16777216.0f);
}

/* Box-Muller on two words: both standard normals */
PHILOX_FN void philox_box_muller(uint32_t a, uint32_t b, float *z0, float *z1)
{
    float r = sqrtf(-2.0f * logf(philox_u01(a)));
    float theta = 6.28318530717958647692f * philox_u01(b);
    *z0 = r * cosf(theta);
    *z1 = r * sinf(theta);
}

/* 4 standard normals from one draw: elements 4*index .. 4*index+3 */
PHILOX_FN void philox_normal4(Philox4 d, float z[4])
{
    philox_box_muller(d.v[0], d.v[1], &z[0], &z[1]);
    philox_box_muller(d.v[2], d.v[3], &z[2], &z[3]);
}

/* element e of a stream: its raw word, its uniform, its standard normal */
PHILOX_FN uint32_t philox_u32_at(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t e)
{
    return philox_draw(seed, purpose, step, e >> 2).v[e & 3];
}
PHILOX_FN float philox_uniform_at(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t e)
{
    return philox_u01(philox_u32_at(seed, purpose, step, e));
}
PHILOX_FN float philox_normal_at(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t e)
{
    Philox4 d = philox_draw(seed, purpose, step, e >> 2);
    int w = (int)(e & 3), pair = w & 2;
    float z0, z1;
    philox_box_muller(d.v[pair], d.v[pair + 1], &z0, &z1);
    return (w & 1) ? z1 : z0;
}

/* out[i] = element first+i of the stream, i < n (host code, OpenMP-parallel) */
void philox_fill_normal(float *out, int64_t n, uint64_t seed, uint32_t purpose,
                        uint32_t step, uint64_t first);
void philox_fill_uniform(float *out, int64_t n, uint64_t seed, uint32_t purpose,
                         uint32_t step, uint64_t first);

/* an integer uniform in [0, n), n >= 1, from the 64 bits of words 0 and 1 of
   call `index` (multiply-high, bias below n / 2^64) */
uint64_t philox_below(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t index,
                      uint64_t n);

#endif
