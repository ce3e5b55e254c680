/*
 * cuda_attention_wide.cu: attention for head dims over ATT_FUSED_MAX_HD
 * (128), where the fused kernels' tiles no longer fit in shared memory: the
 * KL autoencoder's mid-block attention (one head of 512) at Stable
 * Diffusion's size. Composed of cuBLAS GEMMs and two row kernels, and it
 * stores the T x T matrices the fused path avoids, like the CPU backend.
 *
 * For each head h, batched over the images b (row-major, Q, K, V the head's
 * [T, hd] blocks of qkv[b] with row stride 3A, O its block of out[b]):
 *   S = Q K^T hd^-0.5          F32, into P's buffer
 *   P = softmax over each row  in place (one warp a row)
 *   O = P V
 * P is the op's probs[B,H,T,T] (F32, what the backward reads; scratch when
 * absent). The backward, with dprobs[B,H,T,T] as its F32 scratch:
 *   dV (+)= P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(P * dP)),
 *   dQ (+)= dS K hd^-0.5,  dK (+)= dS^T Q hd^-0.5
 * cuBLAS wants A and B of one dtype, so with BF16 activations P and dS are
 * rounded to BF16 copies (scratch) before they meet V, K or Q; every GEMM
 * accumulates in F32 (kernels/cuda/cuda_gemm.h).
 *
 * In cuBLAS's column-major terms a row-major [R, C] block with row stride L
 * is the C x R matrix with leading dimension L; each call says its mapping.
 */
#include "cuda_attention.h"
#include "cuda_gemm.h"
#include "cuda_ops.h"

/* ---- row kernels: one warp per row of T floats ------------------------------------ */

#define ROW_WARPS 8 /* rows per block of 256 threads */

// p is (rows, T): each row replaced by its softmax, max-subtracted
__global__ void softmax_rows_kernel(float *p, int64_t rows, int64_t T)
{
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    float *x = p + r * T;
    float m = -INFINITY;
    for (int64_t j = lane; j < T; j += 32) m = fmaxf(m, x[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int64_t j = lane; j < T; j += 32) {
        float e = expf(x[j] - m);
        x[j] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int64_t j = lane; j < T; j += 32) x[j] *= inv;
}

// dp, p are (rows, T): dp <- p * (dp - sum_j p dp), row by row (softmax's backward)
__global__ void softmax_backward_rows_kernel(float *dp, const float *p, int64_t rows, int64_t T)
{
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    float *g = dp + r * T;
    const float *x = p + r * T;
    float dot = 0.0f;
    for (int64_t j = lane; j < T; j += 32) dot += x[j] * g[j];
    dot = warp_sum(dot);
    for (int64_t j = lane; j < T; j += 32) g[j] = x[j] * (g[j] - dot);
}

static unsigned row_blocks(int64_t rows) { return (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS); }

/* ---- the GEMMs ---------------------------------------------------------------------- */

/* C = alpha op(A) op(B) + beta C for every image b, in the column-major
   terms of cuda_gemm.h; strides between images are element counts */
static void gemm_images(Ctx *ctx, const AttShape &s, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                        int k, DType ab, const void *A, int lda, int64_t sa, const void *B, int ldb, int64_t sb,
                        DType c_dt, void *C, int ldc, int64_t sc, float alpha, float beta)
{
    CudaGemm g = cuda_gemm_problem(ta, tb, m, n, k, ab, c_dt);
    g.A = A, g.lda = lda, g.B = B, g.ldb = ldb, g.C = C, g.ldc = ldc;
    g.alpha = alpha, g.beta = beta;
    g.batch = (int)s.B, g.stride_a = sa, g.stride_b = sb, g.stride_c = sc;
    cuda_gemm(ctx, &g);
}

/* element offset of head h's block inside a [B,H,T,T] buffer, and its stride between images */
static int64_t tt_offset(const AttShape &s, int64_t h) { return h * s.T * s.T; }
static int64_t tt_stride(const AttShape &s) { return s.H * s.T * s.T; }

/* the pointer elem elements into an F32 or BF16 buffer */
static const void *at(const void *p, DType dt, int64_t elem)
{
    return (const char *)p + elem * (int64_t)dtype_size(dt);
}
static void *at(void *p, DType dt, int64_t elem) { return (char *)p + elem * (int64_t)dtype_size(dt); }

/* P (F32, all heads) as the activations' dtype: P itself, or a BF16 copy in buf */
static const void *probs_as(Ctx *ctx, const float *p, int64_t n, DType dt, void *buf)
{
    if (dt == DT_F32) return p;
    cuda_cast_to_bf16(ctx, buf, p, n);
    return buf;
}

/* ---- forward ------------------------------------------------------------------------ */

void cuda_attention_wide_forward(Ctx *ctx, const AttShape &s, Tensor out, Tensor probs, Tensor qkv)
{
    DType dt = qkv.dtype;
    int T = (int)s.T, hd = (int)s.hd, ld = (int)(3 * s.A), A = (int)s.A;
    int64_t n_tt = s.B * s.H * s.T * s.T;
    size_t p_bytes = tensor_present(probs) ? 0 : (size_t)n_tt * sizeof(float);
    size_t pc_bytes = dt == DT_F32 ? 0 : (size_t)n_tt * dtype_size(dt);
    CudaCarve carve = {(char *)ctx_scratch(ctx, cuda_align(p_bytes) + cuda_align(pc_bytes)), 0};
    float *P = tensor_present(probs) ? (float *)probs.data : (float *)cuda_carve(&carve, p_bytes);
    void *pc_buf = pc_bytes ? cuda_carve(&carve, pc_bytes) : NULL;
    for (int64_t h = 0; h < s.H; h++) {
        // S' (T x T, ld T) = K'^T Q': K', Q' are hd x T (ld 3A) at columns A + h hd and h hd
        gemm_images(ctx, s, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, dt, at(qkv.data, dt, s.A + h * hd), ld, s.T * ld,
                    at(qkv.data, dt, h * hd), ld, s.T * ld, DT_F32, P + tt_offset(s, h), T, tt_stride(s),
                    s.scale, 0.0f);
    }
    softmax_rows_kernel<<<row_blocks(s.B * s.H * s.T), ROW_WARPS * 32, 0, cuda_stream(ctx)>>>(P, s.B * s.H * s.T,
                                                                                            s.T);
    cudaCheck(cudaGetLastError());
    const void *Pc = probs_as(ctx, P, n_tt, dt, pc_buf);
    for (int64_t h = 0; h < s.H; h++) {
        // O' (hd x T, ld A, at column h hd) = V' P': V' is hd x T (ld 3A) at column 2A + h hd, P' T x T
        gemm_images(ctx, s, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, dt, at(qkv.data, dt, 2 * s.A + h * hd), ld,
                    s.T * ld, at(Pc, dt, tt_offset(s, h)), T, tt_stride(s), dt, at(out.data, dt, h * hd), A,
                    s.T * A, 1.0f, 0.0f);
    }
}

/* ---- backward ----------------------------------------------------------------------- */

void cuda_attention_wide_backward(Ctx *ctx, const AttShape &s, int set, Tensor dqkv, Tensor dprobs, Tensor dout,
                                  Tensor qkv, Tensor probs)
{
    DType dt = qkv.dtype;
    int T = (int)s.T, hd = (int)s.hd, ld = (int)(3 * s.A), A = (int)s.A;
    int64_t n_tt = s.B * s.H * s.T * s.T;
    float beta = set ? 0.0f : 1.0f;
    const float *P = (const float *)probs.data;
    float *dP = (float *)dprobs.data;
    size_t c_bytes = dt == DT_F32 ? 0 : (size_t)n_tt * dtype_size(dt);
    void *c_buf = c_bytes ? ctx_scratch(ctx, c_bytes) : NULL; /* P's copy, then dS's */
    const void *Pc = probs_as(ctx, P, n_tt, dt, c_buf);
    for (int64_t h = 0; h < s.H; h++) {
        const void *v = at(qkv.data, dt, 2 * s.A + h * hd), *go = at(dout.data, dt, h * hd);
        // dV' (hd x T, ld 3A) (+)= dO' P'^T: dO' is hd x T (ld A), P' T x T
        gemm_images(ctx, s, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, dt, go, A, s.T * A, at(Pc, dt, tt_offset(s, h)), T,
                    tt_stride(s), dt, at(dqkv.data, dt, 2 * s.A + h * hd), ld, s.T * ld, 1.0f, beta);
        // dP' (T x T) = V'^T dO'
        gemm_images(ctx, s, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, dt, v, ld, s.T * ld, go, A, s.T * A, DT_F32,
                    dP + tt_offset(s, h), T, tt_stride(s), 1.0f, 0.0f);
    }
    softmax_backward_rows_kernel<<<row_blocks(s.B * s.H * s.T), ROW_WARPS * 32, 0, cuda_stream(ctx)>>>(
        dP, P, s.B * s.H * s.T, s.T);
    cudaCheck(cudaGetLastError());
    const void *dSc = probs_as(ctx, dP, n_tt, dt, c_buf); /* the copy of P is no longer read */
    for (int64_t h = 0; h < s.H; h++) {
        const void *q = at(qkv.data, dt, h * hd), *k = at(qkv.data, dt, s.A + h * hd);
        // dQ' (hd x T, ld 3A) (+)= K' dS' hd^-0.5
        gemm_images(ctx, s, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, dt, k, ld, s.T * ld, at(dSc, dt, tt_offset(s, h)),
                    T, tt_stride(s), dt, at(dqkv.data, dt, h * hd), ld, s.T * ld, s.scale, beta);
        // dK' (hd x T, ld 3A) (+)= Q' dS'^T hd^-0.5
        gemm_images(ctx, s, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, dt, q, ld, s.T * ld, at(dSc, dt, tt_offset(s, h)),
                    T, tt_stride(s), dt, at(dqkv.data, dt, s.A + h * hd), ld, s.T * ld, s.scale, beta);
    }
}
