/*
 * cuda_attention_forward.cu: the fused attention forward (tiling and saved
 * state in cuda_attention.h), and the host helpers both directions share.
 *
 * One block per 32 query rows of one (b, h): Q stays in shared memory, K and
 * V tiles of 32 keys stream through it, and each query row keeps the online
 * softmax state (running max m, running sum l) and its output row o:
 *   s_j  = (q . k_j) hd^-0.5                         (masked past T)
 *   m'   = max(m, max_j s_j),  a = exp(m - m')
 *   l    = a l + sum_j exp(s_j - m'),  o = a o + sum_j exp(s_j - m') v_j
 * then out = o / l and lse = m + log l (probs[b,h,0,i], when probs is given).
 * The T x T score matrix never exists: memory O(B T A), reads of K and V
 * O(T / 32) times per head.
 */
#include "cuda_attention.h"
#include "cuda_ops.h"

template <int HD>
__global__ void __launch_bounds__(ATT_THREADS)
attention_forward_kernel(CudaOut out, float *lse, CudaIn qkv, AttShape s)
{
    constexpr int LD = HD + 1;
    extern __shared__ float smem[];
    float *Qs = smem, *Ks = Qs + ATT_ROWS * LD, *Vs = Ks + ATT_ROWS * LD, *Ps = Vs + ATT_ROWS * LD;
    int64_t bh = att_block_bh(s);
    if (bh < 0) return;
    int64_t b = bh / s.H, h = bh % s.H, q0 = (int64_t)blockIdx.x * ATT_ROWS;
    int r = threadIdx.x >> 2, sub = threadIdx.x & 3;
    int64_t ld = 3 * s.A;

    // Qs is (32, hd) of q, Ks and Vs (32, hd) of k and v, Ps (32, 32) of probabilities
    att_load_tile<HD>(Qs, qkv, s, b, q0, ld, h * s.hd);
    float m = -INFINITY, l = 0.0f, o[HD / 4];
#pragma unroll
    for (int k = 0; k < HD / 4; k++) o[k] = 0.0f;

    for (int64_t k0 = 0; k0 < s.T; k0 += ATT_ROWS) {
        __syncthreads(); /* every thread is done with the previous K, V */
        att_load_tile<HD>(Ks, qkv, s, b, k0, ld, s.A + h * s.hd);
        att_load_tile<HD>(Vs, qkv, s, b, k0, ld, 2 * s.A + h * s.hd);
        __syncthreads();
        float sc[ATT_ROWS / 4], tile_max = -INFINITY;
        for (int j = 0; j < ATT_ROWS / 4; j++) {
            int c = sub + 4 * j;
            sc[j] = k0 + c < s.T ? att_dot<HD>(Qs + r * LD, Ks + c * LD) * s.scale : -INFINITY;
            tile_max = fmaxf(tile_max, sc[j]);
        }
        float m_new = fmaxf(m, att_row_max(tile_max)); /* finite: a tile has a key */
        float alpha = expf(m - m_new), psum = 0.0f;
        for (int j = 0; j < ATT_ROWS / 4; j++) {
            float p = expf(sc[j] - m_new);
            Ps[r * ATT_SLD + sub + 4 * j] = p;
            psum += p;
        }
        l = l * alpha + att_row_sum(psum);
        m = m_new;
        __syncwarp(); /* the row's 4 lanes see each other's probabilities */
#pragma unroll
        for (int k = 0; k < HD / 4; k++) o[k] *= alpha;
        for (int c = 0; c < ATT_ROWS; c++) { /* o[k] (dim sub + 4k) += p_c v_c: o stays in registers */
            float p = Ps[r * ATT_SLD + c];
            const float *v = Vs + c * LD + sub;
#pragma unroll
            for (int k = 0; k < HD / 4; k++) o[k] += p * v[4 * k];
        }
    }

    int64_t q = q0 + r;
    if (q >= s.T) return;
    float inv = 1.0f / l;
#pragma unroll
    for (int k = 0; k < HD / 4; k++) {
        int d = sub + 4 * k;
        if (d < s.hd) store_f32(out, (b * s.T + q) * s.A + h * s.hd + d, o[k] * inv);
    }
    if (lse && sub == 0) lse[att_stat_index(s, bh, q)] = m + logf(l);
}

/* ---- host helpers of both directions -------------------------------------------- */

AttShape att_shape(const char *op, Tensor qkv, Tensor out, int heads)
{
    AttShape s;
    s.B = out.shape[0], s.T = out.shape[1], s.A = out.shape[2], s.H = heads, s.hd = s.A / heads;
    s.scale = 1.0f / sqrtf((float)s.hd);
    cuda_same_dtype(op, qkv, out);
    if (s.B * s.H > (int64_t)ATT_GRID_Y_MAX * ATT_GRID_Y_MAX || (s.T + ATT_ROWS - 1) / ATT_ROWS > INT32_MAX)
        FATAL("%s on cuda: B*H = %lld, T = %lld exceed the grid", op, (long long)(s.B * s.H), (long long)s.T);
    return s;
}

dim3 att_grid(const AttShape &s)
{
    int64_t pairs = s.B * s.H, y = pairs < ATT_GRID_Y_MAX ? pairs : ATT_GRID_Y_MAX;
    return dim3((unsigned)((s.T + ATT_ROWS - 1) / ATT_ROWS), (unsigned)y, (unsigned)((pairs + y - 1) / y));
}

size_t att_smem_bytes(const void *kernel, int hd_tile, int tiles, int scores, int extra)
{
    size_t bytes = ((size_t)tiles * ATT_ROWS * (hd_tile + 1) + (size_t)scores * ATT_ROWS * ATT_SLD +
                    (size_t)extra) * sizeof(float);
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return bytes;
}

void cuda_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv, int heads)
{
    const char *op = "attention_forward";
    AttShape s = att_shape(op, qkv, out, heads);
    CudaOut o = cuda_out(op, out);
    CudaIn x = cuda_in(op, qkv);
    float *lse = tensor_present(probs) ? (float *)probs.data : NULL;
    if (tensor_present(probs)) cuda_need_f32(op, "probs", probs);
    if (s.B == 0 || s.T == 0) return;
    if (s.hd > ATT_FUSED_MAX_HD) {
        cuda_attention_wide_forward(ctx, s, out, probs, qkv);
        return;
    }
    dim3 grid = att_grid(s);
#define LAUNCH(HD)                                                                           \
    do {                                                                                     \
        size_t smem = att_smem_bytes((const void *)attention_forward_kernel<HD>, HD, 3, 1, 0); \
        attention_forward_kernel<HD><<<grid, ATT_THREADS, smem, cuda_stream(ctx)>>>(o, lse, x, s); \
    } while (0)
    ATT_DISPATCH_HD(s.hd, LAUNCH);
#undef LAUNCH
    cudaCheck(cudaGetLastError());
}
