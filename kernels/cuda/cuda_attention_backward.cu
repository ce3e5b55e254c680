/*
 * cuda_attention_backward.cu: the fused attention backward (tiling and saved
 * state in cuda_attention.h). With P_ij = exp(s_ij - lse_i) rebuilt from the
 * forward's log-sum-exp and dO the head's block of dout:
 *   dP_ij = dO_i . v_j,  D_i = sum_j P_ij dP_ij,  dS_ij = P_ij (dP_ij - D_i)
 *   dq_i += hd^-0.5 sum_j dS_ij k_j
 *   dk_j += hd^-0.5 sum_i dS_ij q_i,  dv_j += sum_i P_ij dO_i
 * Two kernels, no atomics (every gradient row has one writer, so the bits do
 * not depend on scheduling; the same single writer lets the _set form write
 * dqkv instead of adding, with no zeroing pass):
 *   attention_dq_kernel   per 32 query rows: a first pass over the keys sums
 *                         D_i (into dprobs[b,h,0,i]), a second forms dS and
 *                         accumulates dq
 *   attention_dkv_kernel  per 32 key rows: walks the queries with lse and D,
 *                         accumulates dk and dv
 * Work: 9 T x T x hd products per head against the forward's 2 (a single
 * pass with atomic dq would need 5); memory O(B T A).
 */
#include "cuda_attention.h"
#include "cuda_ops.h"

/* a gradient's one writer: written (set) or added */
__device__ __forceinline__ void att_put(CudaOut a, int64_t i, float v, int set)
{
    if (set) store_f32(a, i, v);
    else add_f32(a, i, v);
}

template <int HD>
__global__ void __launch_bounds__(ATT_THREADS)
attention_dq_kernel(CudaOut dqkv, float *dsum, CudaIn dout, CudaIn qkv, const float *lse, AttShape s, int set)
{
    constexpr int LD = HD + 1;
    extern __shared__ float smem[];
    float *Qs = smem, *Gs = Qs + ATT_ROWS * LD, *Ks = Gs + ATT_ROWS * LD, *Vs = Ks + ATT_ROWS * LD;
    float *Ss = Vs + ATT_ROWS * LD;
    int64_t bh = att_block_bh(s);
    if (bh < 0) return;
    int64_t b = bh / s.H, h = bh % s.H, q0 = (int64_t)blockIdx.x * ATT_ROWS;
    int r = threadIdx.x >> 2, sub = threadIdx.x & 3;
    int64_t ld = 3 * s.A, q = q0 + r;

    // Qs, Gs (dO), Ks, Vs are (32, hd); Ss (32, 32) holds dS
    att_load_tile<HD>(Qs, qkv, s, b, q0, ld, h * s.hd);
    att_load_tile<HD>(Gs, dout, s, b, q0, s.A, h * s.hd);
    float row_lse = q < s.T ? lse[att_stat_index(s, bh, q)] : INFINITY; /* past T: P = 0 */

    float D = 0.0f, dq[HD / 4];
#pragma unroll
    for (int k = 0; k < HD / 4; k++) dq[k] = 0.0f;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t k0 = 0; k0 < s.T; k0 += ATT_ROWS) {
            __syncthreads();
            att_load_tile<HD>(Ks, qkv, s, b, k0, ld, s.A + h * s.hd);
            att_load_tile<HD>(Vs, qkv, s, b, k0, ld, 2 * s.A + h * s.hd);
            __syncthreads();
            for (int j = 0; j < ATT_ROWS / 4; j++) {
                int c = sub + 4 * j;
                float p = 0.0f, dp = 0.0f;
                if (k0 + c < s.T) {
                    p = expf(att_dot<HD>(Qs + r * LD, Ks + c * LD) * s.scale - row_lse);
                    dp = att_dot<HD>(Gs + r * LD, Vs + c * LD);
                }
                if (pass == 0) D += p * dp;
                else Ss[r * ATT_SLD + c] = p * (dp - D);
            }
            if (pass == 0) continue;
            __syncwarp();
            for (int c = 0; c < ATT_ROWS; c++) { /* dq[k] (dim sub + 4k) += dS_c k_c */
                float ds = Ss[r * ATT_SLD + c];
                const float *kc = Ks + c * LD + sub;
#pragma unroll
                for (int k = 0; k < HD / 4; k++) dq[k] += ds * kc[4 * k];
            }
        }
        if (pass == 0) D = att_row_sum(D);
    }

    if (q >= s.T) return;
#pragma unroll
    for (int k = 0; k < HD / 4; k++) {
        int d = sub + 4 * k;
        if (d < s.hd) att_put(dqkv, (b * s.T + q) * ld + h * s.hd + d, dq[k] * s.scale, set);
    }
    if (sub == 0) dsum[att_stat_index(s, bh, q)] = D;
}

template <int HD>
__global__ void __launch_bounds__(ATT_THREADS)
attention_dkv_kernel(CudaOut dqkv, CudaIn dout, CudaIn qkv, const float *lse, const float *dsum, AttShape s,
                     int set)
{
    constexpr int LD = HD + 1;
    extern __shared__ float smem[];
    float *Ks = smem, *Vs = Ks + ATT_ROWS * LD, *Qs = Vs + ATT_ROWS * LD, *Gs = Qs + ATT_ROWS * LD;
    float *Pt = Gs + ATT_ROWS * LD, *dSt = Pt + ATT_ROWS * ATT_SLD;
    float *lse_s = dSt + ATT_ROWS * ATT_SLD, *D_s = lse_s + ATT_ROWS;
    int64_t bh = att_block_bh(s);
    if (bh < 0) return;
    int64_t b = bh / s.H, h = bh % s.H, k0 = (int64_t)blockIdx.x * ATT_ROWS;
    int c = threadIdx.x >> 2, sub = threadIdx.x & 3;
    int64_t ld = 3 * s.A, key = k0 + c;

    // Ks, Vs are this block's (32, hd) keys and values; Qs, Gs (dO) (32, hd)
    // of the query tile at hand; Pt and dSt (32 keys, 32 queries) transposed
    att_load_tile<HD>(Ks, qkv, s, b, k0, ld, s.A + h * s.hd);
    att_load_tile<HD>(Vs, qkv, s, b, k0, ld, 2 * s.A + h * s.hd);
    float dk[HD / 4], dv[HD / 4];
#pragma unroll
    for (int k = 0; k < HD / 4; k++) dk[k] = dv[k] = 0.0f;

    for (int64_t q0 = 0; q0 < s.T; q0 += ATT_ROWS) {
        __syncthreads();
        att_load_tile<HD>(Qs, qkv, s, b, q0, ld, h * s.hd);
        att_load_tile<HD>(Gs, dout, s, b, q0, s.A, h * s.hd);
        if (threadIdx.x < ATT_ROWS) {
            int64_t i = q0 + threadIdx.x;
            lse_s[threadIdx.x] = i < s.T ? lse[att_stat_index(s, bh, i)] : INFINITY;
            D_s[threadIdx.x] = i < s.T ? dsum[att_stat_index(s, bh, i)] : 0.0f;
        }
        __syncthreads();
        for (int j = 0; j < ATT_ROWS / 4; j++) {
            int i = sub + 4 * j;
            float p = expf(att_dot<HD>(Ks + c * LD, Qs + i * LD) * s.scale - lse_s[i]);
            float dp = att_dot<HD>(Vs + c * LD, Gs + i * LD);
            Pt[c * ATT_SLD + i] = p;
            dSt[c * ATT_SLD + i] = p * (dp - D_s[i]);
        }
        __syncwarp(); /* the key row's 4 lanes see each other's entries */
        for (int i = 0; i < ATT_ROWS; i++) { /* dv += P_i dO_i, dk += dS_i q_i (dims sub + 4k) */
            float p = Pt[c * ATT_SLD + i], ds = dSt[c * ATT_SLD + i];
            const float *gi = Gs + i * LD + sub, *qi = Qs + i * LD + sub;
#pragma unroll
            for (int k = 0; k < HD / 4; k++) {
                dv[k] += p * gi[4 * k];
                dk[k] += ds * qi[4 * k];
            }
        }
    }

    if (key >= s.T) return;
#pragma unroll
    for (int k = 0; k < HD / 4; k++) {
        int d = sub + 4 * k;
        if (d >= s.hd) continue;
        att_put(dqkv, (b * s.T + key) * ld + s.A + h * s.hd + d, dk[k] * s.scale, set);
        att_put(dqkv, (b * s.T + key) * ld + 2 * s.A + h * s.hd + d, dv[k], set);
    }
}

static void attention_backward(Ctx *ctx, int set, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv,
                               Tensor probs, int heads)
{
    const char *op = set ? "attention_backward_set" : "attention_backward";
    if (!tensor_present(dqkv)) return;
    AttShape s = att_shape(op, qkv, dout, heads);
    cuda_same_dtype(op, dqkv, qkv);
    cuda_need_f32(op, "probs", probs);
    cuda_need_f32(op, "dprobs", dprobs);
    CudaOut dx = cuda_out(op, dqkv);
    CudaIn g = cuda_in(op, dout), x = cuda_in(op, qkv);
    const float *lse = (const float *)probs.data;
    float *dsum = (float *)dprobs.data;
    if (s.B == 0 || s.T == 0) return;
    if (s.hd > ATT_FUSED_MAX_HD) {
        cuda_attention_wide_backward(ctx, s, set, dqkv, dprobs, dout, qkv, probs);
        return;
    }
    dim3 grid = att_grid(s);
#define LAUNCH(HD)                                                                                   \
    do {                                                                                             \
        size_t smem = att_smem_bytes((const void *)attention_dq_kernel<HD>, HD, 4, 1, 0);            \
        attention_dq_kernel<HD><<<grid, ATT_THREADS, smem, cuda_stream(ctx)>>>(dx, dsum, g, x, lse, s, set); \
        cudaCheck(cudaGetLastError());                                                               \
        smem = att_smem_bytes((const void *)attention_dkv_kernel<HD>, HD, 4, 2, 2 * ATT_ROWS);       \
        attention_dkv_kernel<HD><<<grid, ATT_THREADS, smem, cuda_stream(ctx)>>>(dx, g, x, lse, dsum, s, set); \
    } while (0)
    ATT_DISPATCH_HD(s.hd, LAUNCH);
#undef LAUNCH
    cudaCheck(cudaGetLastError());
}

void cuda_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv, Tensor probs,
                             int heads)
{
    attention_backward(ctx, 0, dqkv, dprobs, dout, qkv, probs, heads);
}

void cuda_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv, Tensor probs,
                                 int heads)
{
    attention_backward(ctx, 1, dqkv, dprobs, dout, qkv, probs, heads);
}
