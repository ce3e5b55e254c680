/*
 * attention.c: the multi-head self-attention core, forward and backward.
 *
 * qkv[B,T,3A] holds, along its last axis, q then k then v, each H heads of
 * hd = A/H values. For one (b, h), Q, K and V are [T, hd] matrices read in
 * place with row stride 3A (no copies), and
 *   S = Q K^T * hd^-0.5,  P = softmax over each row of S,  O = P V,
 * where O is head h's column block of out[B,T,A]. The B*H pairs are split
 * across threads; each calls cpu_sgemm, which runs on the calling thread
 * alone inside an OpenMP parallel region, on its own T x T block, which stays in
 * L2 between the two GEMMs and the softmax.
 *
 * Backward for one (b, h), with dO the head's block of dout:
 *   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(P * dP)),
 *   dQ += dS K * hd^-0.5,  dK += dS^T Q * hd^-0.5
 * (op_attention_backward_set: = instead of +=, beta 0: the pairs' blocks
 * cover dqkv, so a scratch dqkv needs no zeroing first).
 *
 * In AVX-512 builds, sequences of up to CPU_ATT_SHORT_MAX_T tokens with
 * head dims a multiple of 16 (U-ViT's small configurations) take
 * attention_short.c instead: the same formulas without a GEMM library call
 * per (b, h).
 */
#include <math.h>

#include "cpu_attention_short.h"
#include "cpu_math.h"
#include "cpu_gemm.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

/* p[n] <- softmax(p[n]), max-subtracted so no exp overflows */
static void softmax_row(float *p, int64_t n)
{
    float mx = p[0];
    #pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        float e = cpu_expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

/* ds[n] <- p * (dp - sum(p * dp)), in place over dp (the softmax backward) */
static void softmax_row_backward(float *dp, const float *p, int64_t n)
{
    float dot = 0.0f;
    #pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += p[j] * dp[j];
    for (int64_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - dot);
}

void cpu_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv, int heads)
{
    // qkv is (B,T,3A), out is (B,T,A), probs is (B,H,T,T) or none
    int64_t B = out.shape[0], T = out.shape[1], A = out.shape[2], H = heads, hd = A / H;
    int64_t ld = 3 * A, TT = T * T, slot = cpu_pad16(TT);
    if (B == 0 || T == 0) return;
    if (cpu_attention_short_fits(T, hd)) {
        cpu_attention_short_forward(ctx, out, probs, qkv, heads);
        return;
    }
    float scale = 1.0f / sqrtf((float)hd);
    int nt = cpu_pair_threads(ctx, B * H);
    float *saved = tensor_present(probs) ? tensor_f32(probs) : NULL;
    /* without probs to keep, each thread scores into its own T x T slot */
    float *slots = saved ? NULL : ctx_scratch(ctx, (size_t)(nt * slot) * sizeof(float));
    const float *x = tensor_f32(qkv);
    float *y = tensor_f32(out);

    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *q = x + b * T * ld + h * hd, *k = q + A, *v = q + 2 * A;
        float *p = saved ? saved + bh * TT : slots + omp_get_thread_num() * slot;
        // p is (T,T) = q (T,hd) @ k^T (hd,T) * scale
        cpu_sgemm(GEMM_N, GEMM_T, T, T, hd, scale, q, ld, k, ld, 0.0f, p, T);
        for (int64_t i = 0; i < T; i++) softmax_row(p + i * T, T);
        // out[b, :, h*hd:(h+1)*hd] (T,hd) = p (T,T) @ v (T,hd)
        cpu_sgemm(GEMM_N, GEMM_N, T, hd, T, 1.0f, p, T, v, ld, 0.0f, y + b * T * A + h * hd, A);
    }
}

/* dprobs is the caller's scratch: thread t uses its block t as the dP of the
   (b, h) pair at hand, so the T x T working set stays in cache; set: dqkv
   is written, not accumulated */
static void attention_backward(Ctx *ctx, int set, Tensor dqkv, Tensor dprobs, Tensor dout,
                               Tensor qkv, Tensor probs, int heads)
{
    // dout is (B,T,A), qkv and dqkv are (B,T,3A), probs and dprobs are (B,H,T,T)
    if (!tensor_present(dqkv)) return;
    int64_t B = dout.shape[0], T = dout.shape[1], A = dout.shape[2], H = heads, hd = A / H;
    int64_t ld = 3 * A, TT = T * T;
    if (B == 0 || T == 0) return;
    if (cpu_attention_short_fits(T, hd)) {
        cpu_attention_short_backward(ctx, set, dqkv, dout, qkv, probs, heads);
        return;
    }
    float scale = 1.0f / sqrtf((float)hd), beta = set ? 0.0f : 1.0f;
    int nt = cpu_pair_threads(ctx, B * H);
    const float *x = tensor_f32(qkv), *g = tensor_f32(dout), *P = tensor_f32(probs);
    float *dx = tensor_f32(dqkv), *dP = tensor_f32(dprobs);

    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, off = b * T * ld + h * hd;
        const float *q = x + off, *k = q + A, *v = q + 2 * A, *p = P + bh * TT;
        float *dq = dx + off, *dk = dq + A, *dv = dq + 2 * A;
        const float *go = g + b * T * A + h * hd;  // dO is (T,hd), row stride A
        float *ds = dP + omp_get_thread_num() * TT;
        // dv (T,hd) += p^T (T,T) @ dO (T,hd)
        cpu_sgemm(GEMM_T, GEMM_N, T, hd, T, 1.0f, p, T, go, A, beta, dv, ld);
        // ds (T,T) = dO (T,hd) @ v^T (hd,T), then the softmax backward
        cpu_sgemm(GEMM_N, GEMM_T, T, T, hd, 1.0f, go, A, v, ld, 0.0f, ds, T);
        for (int64_t i = 0; i < T; i++) softmax_row_backward(ds + i * T, p + i * T, T);
        // dq (T,hd) += ds (T,T) @ k (T,hd) * scale;  dk += ds^T @ q * scale
        cpu_sgemm(GEMM_N, GEMM_N, T, hd, T, scale, ds, T, k, ld, beta, dq, ld);
        cpu_sgemm(GEMM_T, GEMM_N, T, hd, T, scale, ds, T, q, ld, beta, dk, ld);
    }
}

void cpu_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv,
                            Tensor probs, int heads)
{
    attention_backward(ctx, 0, dqkv, dprobs, dout, qkv, probs, heads);
}

void cpu_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv,
                                Tensor probs, int heads)
{
    attention_backward(ctx, 1, dqkv, dprobs, dout, qkv, probs, heads);
}
