/*
 * cuda_attention.h: what the fused attention kernels share (internal to
 * kernels/cuda): shapes, tiles, the layout of what the forward saves.
 *
 * The op (kernels/ops.h): qkv[B,T,3A] holds q, k, v along the last axis,
 * each H heads of hd = A/H values; out[B,T,A] = softmax(q k^T hd^-0.5) v per
 * head. U-ViT's shapes: T from 65 to about 1100 tokens, hd from 32 to 128.
 * Wider heads (the KL autoencoder's 512) take cuda_attention_wide.cu's
 * composed path, which stores P in probs as the CPU does.
 *
 * Tiling (flash-attention style, FlashAttention-2's loop order): a block of
 * ATT_THREADS = 128 threads owns 32 rows of one (b, h) (query rows in the
 * forward and dq kernels, key rows in the dk/dv kernel) and walks the other
 * side 32 rows at a time through shared memory. Thread t owns row t / 4 and,
 * of that row, the 8 columns sub + 4j of a 32 x 32 score tile and the head
 * dims sub + 4k (sub = t % 4): the 4 threads of a row are adjacent lanes, so
 * row maxima and sums are two shuffles. Tiles are F32 in shared memory, rows
 * padded to HD + 1 floats (no bank conflicts), zero past T and past hd; HD is
 * 32, 64 or 128, the smallest that holds hd. Arithmetic is F32 on CUDA cores
 * (no tensor cores yet: correctness first, kernels/cuda/NOTES.md).
 *
 * What the fused forward saves for the backward, in the op's probs[B,H,T,T] (F32):
 *   probs[b, h, 0, i] = lse_i = m_i + log l_i, the log-sum-exp of query row
 *   i's scaled scores (row 0 of each head's T x T block; nothing else of
 *   probs is written). The backward rebuilds P_ij = exp(s_ij - lse_i) from it.
 * And the backward's own scratch, dprobs[B,H,T,T]:
 *   dprobs[b, h, 0, i] = D_i = sum_j P_ij dP_ij (= dO_i . O_i), written by
 *   the dq kernel and read by the dk/dv kernel.
 * So the fused path never stores a T x T matrix; callers still allocate
 * probs at full size (the CPU backend fills all of it, and so does the
 * composed path of heads wider than ATT_FUSED_MAX_HD).
 */
#ifndef DEEDIFF_CUDA_ATTENTION_H
#define DEEDIFF_CUDA_ATTENTION_H

#include "cuda_common.h"

#define ATT_ROWS 32     /* rows a block owns, and rows per tile of the other side */
#define ATT_THREADS 128 /* 4 threads per owned row */
#define ATT_SLD (ATT_ROWS + 1) /* row length of a 32 x 32 score tile in shared memory */

typedef struct {
    int64_t B, T, H, hd, A;
    float scale; /* hd^-0.5, as the CPU forms it: 1 / sqrtf(hd) */
} AttShape;

/* a grid's y extent stops at 65535, and B*H passes it (batch 8192 with 8
   heads): the (b, h) pairs run along y, then z in slices of gridDim.y */
#define ATT_GRID_Y_MAX 65535

/* the (b, h) pair this block owns, or -1 for a spare block of the last z
   slice (the whole block returns at once, before any barrier) */
__device__ __forceinline__ int64_t att_block_bh(const AttShape &s)
{
    int64_t bh = blockIdx.y + (int64_t)blockIdx.z * gridDim.y;
    return bh < s.B * s.H ? bh : -1;
}

/* the offset of (b, h)'s row i of the lse / D vectors inside probs / dprobs */
__device__ __forceinline__ int64_t att_stat_index(const AttShape &s, int64_t bh, int64_t i)
{
    return bh * s.T * s.T + i;
}

/* tile[r][d] (rows of HD + 1 floats) = src[(b T + row0 + r) * stride + col0 + d]
   for r < ATT_ROWS, d < hd and row0 + r < T; zero elsewhere */
template <int HD>
__device__ __forceinline__ void att_load_tile(float *tile, CudaIn src, const AttShape &s, int64_t b,
                                              int64_t row0, int64_t stride, int64_t col0)
{
    for (int idx = threadIdx.x; idx < ATT_ROWS * HD; idx += ATT_THREADS) {
        int r = idx / HD, d = idx % HD;
        int64_t row = row0 + r;
        float v = 0.0f;
        if (row < s.T && d < s.hd) v = load_f32(src, (b * s.T + row) * stride + col0 + d);
        tile[r * (HD + 1) + d] = v;
    }
}

/* the dot product of two tile rows of HD floats (zero-padded past hd) */
template <int HD>
__device__ __forceinline__ float att_dot(const float *x, const float *y)
{
    float acc = 0.0f;
#pragma unroll 16
    for (int d = 0; d < HD; d++) acc += x[d] * y[d];
    return acc;
}

/* v reduced over the 4 adjacent lanes that own one row */
__device__ __forceinline__ float att_row_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
__device__ __forceinline__ float att_row_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

/* the widest head the fused kernels' tiles hold */
#define ATT_FUSED_MAX_HD 128

/* host: the shape of an attention op, FATAL for a grid too large */
AttShape att_shape(const char *op, Tensor qkv, Tensor out, int heads);

/* host: the grid of the fused kernels: 32 rows of one (b, h) a block, the
   row tiles along x and the (b, h) pairs as att_block_bh reads them */
dim3 att_grid(const AttShape &s);

/* host: heads wider than ATT_FUSED_MAX_HD (cuda_attention_wide.cu), after
   the callers' checks: probs[B,H,T,T] F32 receives P (or is absent: then
   scratch); the backward reads P from probs and uses dprobs as scratch */
void cuda_attention_wide_forward(Ctx *ctx, const AttShape &s, Tensor out, Tensor probs, Tensor qkv);
void cuda_attention_wide_backward(Ctx *ctx, const AttShape &s, int set, Tensor dqkv, Tensor dprobs, Tensor dout,
                                  Tensor qkv, Tensor probs);

/* host: the dynamic shared memory of a kernel with `tiles` HD-wide tiles and
   `scores` score tiles (+ `extra` floats), after raising the kernel's limit */
size_t att_smem_bytes(const void *kernel, int hd_tile, int tiles, int scores, int extra);

/* calls body<HD>() with HD = 32, 64 or 128, the smallest >= hd */
#define ATT_DISPATCH_HD(hd, body)                                               \
    do {                                                                        \
        if ((hd) <= 32) body(32);                                               \
        else if ((hd) <= 64) body(64);                                          \
        else body(128);                                                         \
    } while (0)

#endif
