/*
 * sampler_ops.c: the CPU kernels of the sampler arithmetic in kernels/ops.h
 * (axpby with per-image coefficients, Philox normals addressed per image).
 *
 * Work is split into (image, chunk) pieces of at most CPU_CHUNK floats, so
 * small batches of large images and large batches of small images both
 * spread over the threads, and every piece knows its image's coefficient.
 * Normals come from philox_fill_normal, so a piece equals the elements
 * regenerated one by one with philox_normal_at: the values never depend on
 * the batch, the chunking or the thread count.
 */
#include "../philox.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

/* floats of noise generated at a time on the stack of a thread */
#define NOISE_TILE 1024

void cpu_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y)
{
    // out, x, y are (B, n): out[i,:] = a[i] x[i,:] + b[i] y[i,:]; out may alias
    // x or y (each element is read before it is written)
    int64_t B = out.shape[0], n = tensor_numel(out) / B, per = cpu_chunks(n);
    float *o = tensor_f32(out);
    const float *xs = tensor_f32(x), *ys = tensor_f32(y);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < B * per; p++) {
        int64_t i = p / per, lo = i * n + (p % per) * CPU_CHUNK;
        int64_t hi = lo + CPU_CHUNK < (i + 1) * n ? lo + CPU_CHUNK : (i + 1) * n;
        float ai = a[i], bi = b[i];
        #pragma omp simd
        for (int64_t j = lo; j < hi; j++) o[j] = ai * xs[j] + bi * ys[j];
    }
}

void cpu_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed, uint32_t purpose,
               uint32_t step)
{
    // out is (B, n): out[i, j] = normal element ids[i]*n + j of the stream
    int64_t B = out.shape[0], n = tensor_numel(out) / B, per = cpu_chunks(n);
    float *o = tensor_f32(out);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < B * per; p++) {
        int64_t i = p / per, j0 = (p % per) * CPU_CHUNK;
        int64_t len = n - j0 < CPU_CHUNK ? n - j0 : CPU_CHUNK;
        philox_fill_normal(o + i * n + j0, len, seed, purpose, step,
                           (uint64_t)ids[i] * (uint64_t)n + (uint64_t)j0);
    }
}

void cpu_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids, uint64_t seed,
                   uint32_t purpose, uint32_t step)
{
    // out is (B, n): out[i, j] += c[i] * normal element ids[i]*n + j
    int64_t B = out.shape[0], n = tensor_numel(out) / B, per = cpu_chunks(n);
    float *o = tensor_f32(out);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < B * per; p++) {
        int64_t i = p / per, j0 = (p % per) * CPU_CHUNK;
        int64_t end = n - j0 < CPU_CHUNK ? n : j0 + CPU_CHUNK;
        float z[NOISE_TILE], ci = c[i];
        for (int64_t j = j0; j < end; j += NOISE_TILE) {
            int64_t len = end - j < NOISE_TILE ? end - j : NOISE_TILE;
            philox_fill_normal(z, len, seed, purpose, step,
                               (uint64_t)ids[i] * (uint64_t)n + (uint64_t)j);
            float *row = o + i * n + j;
            #pragma omp simd
            for (int64_t k = 0; k < len; k++) row[k] += ci * z[k];
        }
    }
}
