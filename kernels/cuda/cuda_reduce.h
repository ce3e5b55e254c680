/*
 * cuda_reduce.h: deterministic sums on the GPU (internal to kernels/cuda).
 *
 * No atomics anywhere: every sum has a fixed order for a given shape, so a
 * result never depends on scheduling, and a rerun gives the same bits (as the
 * CPU backend's sums do). Three shapes of sum, each a template over a
 * functor that says what is summed:
 *
 *   cuda_sum<NV>:         NV totals over i < n, returned to the host in F64
 *                         (losses, sum of squares, the NaN check). A fixed
 *                         grid of CUDA_SUM_BLOCKS blocks sums a fixed
 *                         grid-stride share each; one block adds the partials.
 *                         f(i, acc) adds element i's NV values into acc[NV].
 *   cuda_colsum<NV>:      dst_v[c] += sum over rows m < M of f(m, c, v), for
 *                         the columns c < N of a row-major [M, N] operand
 *                         (bias, LayerNorm and positional-embedding
 *                         gradients). Rows go in groups of CUDA_COLSUM_ROWS,
 *                         summed in F32 in row order, groups in F64 in group
 *                         order.
 *   cuda_channel_sum<NV>: per channel c of an NCHW tensor [B, C, N], the sum
 *                         over (b, i) in F64, then f.finish(c, sums) (conv
 *                         and BatchNorm parameter gradients; with B = 1, the
 *                         early-exit scores of each row): one block per
 *                         channel.
 * Workspaces come from the caller (an op carves all its scratch at once, see
 * cuda_common.h): cuda_*_workspace_bytes() says how much.
 */
#ifndef DEEDIFF_CUDA_REDUCE_H
#define DEEDIFF_CUDA_REDUCE_H

#include "cuda_common.h"

#define CUDA_SUM_BLOCKS 512
#define CUDA_COLSUM_ROWS 64

/* the sum of v over the block, valid in thread 0; every thread must call it.
   Callable several times in a row (it waits before reusing its shared slots). */
__device__ __forceinline__ double block_sum(double v)
{
    __shared__ double warp_totals[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) warp_totals[warp] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? warp_totals[threadIdx.x] : 0.0;
    return warp == 0 ? warp_sum(v) : 0.0;
}

/* ---- totals over i < n ------------------------------------------------------------ */

// partial is (NV, gridDim.x): partial[v * gridDim.x + block]
template <int NV, typename F>
__global__ void sum_partials_kernel(double *partial, int64_t n, F f)
{
    double acc[NV];
    for (int v = 0; v < NV; v++) acc[v] = 0.0;
    CUDA_GRID_STRIDE(i, n) f(i, acc);
    for (int v = 0; v < NV; v++) {
        double s = block_sum(acc[v]);
        if (threadIdx.x == 0) partial[v * gridDim.x + blockIdx.x] = s;
    }
}

// one block: total[v] = sum over the count partials of value v, in order of
// a fixed tree (block_sum over a fixed assignment of partials to threads)
template <int NV>
__global__ void sum_total_kernel(double *total, const double *partial, int count)
{
    for (int v = 0; v < NV; v++) {
        double s = 0.0;
        for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[v * count + i];
        s = block_sum(s);
        if (threadIdx.x == 0) total[v] = s;
    }
}

static inline size_t cuda_sum_workspace_bytes(int nv)
{
    return cuda_align((size_t)nv * (CUDA_SUM_BLOCKS + 1) * sizeof(double));
}

/* out[v] = the sum over i < n of f's values; waits for the stream */
template <int NV, typename F>
void cuda_sum(Ctx *ctx, void *workspace, int64_t n, F f, double out[NV])
{
    double *partial = (double *)workspace, *total = partial + NV * CUDA_SUM_BLOCKS;
    cudaStream_t stream = cuda_stream(ctx);
    for (int v = 0; v < NV; v++) out[v] = 0.0;
    if (n <= 0) return;
    sum_partials_kernel<NV><<<CUDA_SUM_BLOCKS, CUDA_THREADS, 0, stream>>>(partial, n, f);
    cudaCheck(cudaGetLastError());
    sum_total_kernel<NV><<<1, CUDA_THREADS, 0, stream>>>(total, partial, CUDA_SUM_BLOCKS);
    cudaCheck(cudaGetLastError());
    cudaCheck(cudaMemcpyAsync(out, total, NV * sizeof(double), cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
}

/* ---- column sums of a row-major [M, N] operand ---------------------------------------- */

// partial is (NV, G, N); block (x, g) sums rows [g R, g R + R) of columns x*256 ..
template <int NV, typename F>
__global__ void colsum_partials_kernel(double *partial, int64_t M, int64_t N, int64_t G, F f)
{
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y;
    if (c >= N) return;
    int64_t m0 = g * CUDA_COLSUM_ROWS, m1 = m0 + CUDA_COLSUM_ROWS < M ? m0 + CUDA_COLSUM_ROWS : M;
    float acc[NV];
    for (int v = 0; v < NV; v++) acc[v] = 0.0f;
    for (int64_t m = m0; m < m1; m++)
        for (int v = 0; v < NV; v++) acc[v] += f(m, c, v);
    for (int v = 0; v < NV; v++) partial[(v * G + g) * N + c] = acc[v];
}

static inline size_t cuda_colsum_workspace_bytes(int nv, int64_t M, int64_t N)
{
    int64_t G = (M + CUDA_COLSUM_ROWS - 1) / CUDA_COLSUM_ROWS;
    return cuda_align((size_t)(nv * G * N) * sizeof(double));
}

/* the NV destinations of a column sum (a kernel argument by value) */
template <int NV>
struct CudaColsumDst {
    float *p[NV];
};

// dst.p[v][c] += sum over g of partial[v, g, c], in group order; absent
// destinations (NULL) are skipped
template <int NV>
__global__ void colsum_total_kernel(CudaColsumDst<NV> dst, const double *partial, int64_t N, int64_t G)
{
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= N) return;
    for (int v = 0; v < NV; v++) {
        if (!dst.p[v]) continue;
        double s = 0.0;
        for (int64_t g = 0; g < G; g++) s += partial[(v * G + g) * N + c];
        dst.p[v][c] += (float)s;
    }
}

/* dst.p[v][c] += sum over m < M of f(m, c, v); f is a functor with
   __device__ float operator()(int64_t m, int64_t c, int v) const */
template <int NV, typename F>
void cuda_colsum(Ctx *ctx, void *workspace, int64_t M, int64_t N, F f, CudaColsumDst<NV> dst)
{
    if (M <= 0 || N <= 0) return;
    int64_t G = (M + CUDA_COLSUM_ROWS - 1) / CUDA_COLSUM_ROWS;
    if (G > 65535) FATAL("cuda_colsum: %lld rows exceed the grid (%d rows per group)",
                         (long long)M, CUDA_COLSUM_ROWS);
    double *partial = (double *)workspace;
    unsigned cx = (unsigned)((N + CUDA_THREADS - 1) / CUDA_THREADS);
    colsum_partials_kernel<NV><<<dim3(cx, (unsigned)G), CUDA_THREADS, 0, cuda_stream(ctx)>>>(
        partial, M, N, G, f);
    cudaCheck(cudaGetLastError());
    colsum_total_kernel<NV><<<cx, CUDA_THREADS, 0, cuda_stream(ctx)>>>(dst, partial, N, G);
    cudaCheck(cudaGetLastError());
}

/* ---- per-channel sums of an NCHW tensor ---------------------------------------------- */

// one block per channel c: sums f(b, c, i, acc) over b < B, i < N in F64
// with a fixed thread assignment, then thread 0 calls f.finish(c, sums)
template <int NV, typename F>
__global__ void channel_sum_kernel(int64_t B, int64_t C, int64_t N, F f)
{
    int64_t c = blockIdx.x;
    double acc[NV];
    for (int v = 0; v < NV; v++) acc[v] = 0.0;
    if (B == 1)   /* a row of its own (the exit scores): no 64-bit division per element */
        for (int64_t j = threadIdx.x; j < N; j += blockDim.x) f(0, c, j, acc);
    else
        for (int64_t j = threadIdx.x; j < B * N; j += blockDim.x) f(j / N, c, j % N, acc);
    double sums[NV];
    for (int v = 0; v < NV; v++) sums[v] = block_sum(acc[v]);
    if (threadIdx.x == 0) f.finish(c, sums);
}

/* for every channel c < C: f.finish(c, sums over (b, i) of f's values);
   f has __device__ void operator()(int64_t b, int64_t c, int64_t i, double *acc) const
   and __device__ void finish(int64_t c, const double *sums) const */
template <int NV, typename F>
void cuda_channel_sum(Ctx *ctx, int64_t B, int64_t C, int64_t N, F f)
{
    if (C <= 0) return;
    if (C > INT32_MAX) FATAL("cuda_channel_sum: %lld channels exceed the grid", (long long)C);
    channel_sum_kernel<NV><<<(unsigned)C, CUDA_THREADS, 0, cuda_stream(ctx)>>>(B, C, N, f);
    cudaCheck(cudaGetLastError());
}

#endif
