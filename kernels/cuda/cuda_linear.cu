/*
 * cuda_linear.cu: out[M,N] = in[M,K] @ w[N,K]^T + b[N] on the GPU, and its
 * backward, as GEMMs through cuda_gemm (cuBLASLt, cuda_gemm.h).
 *
 * Row-major [R, C] is column-major C x R (leading dimension C), so:
 *   forward  out^T (N x M, ld N) = op_T(w: K x N, ld K) @ in^T (K x M, ld K) + b
 *            (the "TN" layout tensor cores like best; the bias is the fused
 *            epilogue, one value per row of out^T)
 *   din      din^T (K x M, ld K) += w^T (K x N, ld K) @ dout^T (N x M, ld N)
 *   dw       dw^T  (K x N, ld K) += in^T (K x M, ld K) @ op_T(dout^T: N x M, ld N)
 *   db       db[N] += column sums of dout (cuda_colsum: fixed order, no atomics)
 *
 * Fused and overwriting forms (kernels/ops.h):
 *   linear_residual_forward  out = in @ w^T + b + res as one GEMM: res is the
 *            C operand read with beta 1, out the D written (cuBLASLt out of
 *            place; ops.c guarantees out is not res), the bias the epilogue:
 *            one rounding and no add pass over [M,N]
 *   linear_backward_set      the din GEMM with beta 0 (no zeroing pass)
 *   (linear_gelu's backward: cuda_linear_gelu.cu)
 *
 * Dtypes (all accumulate in F32, never TF32):
 *   in/out/dout/din F32, w and b F32                  -> F32 GEMMs
 *   in/out/dout/din BF16, w and b F32 or BF16         -> BF16 GEMMs; F32 w and b
 *       are rounded to BF16 in ctx scratch first (one pass over N*K values, a
 *       few % of a U-ViT GEMM). The F32 master weights never change; a BF16
 *       copy kept by the optimizer would remove this pass.
 *   dw, db: F32 (gradients of F32 master weights), accumulated by the GEMM
 *       itself (C F32, beta 1) whatever the activations' dtype.
 * cuBLASLt's BGRADB epilogue could fuse db into the dw GEMM, but it writes
 * rather than accumulates; the separate column sum reads dout once more
 * (M*N values, under 1/K of the GEMM's work).
 */
#include "cuda_gemm.h"
#include "cuda_ops.h"
#include "cuda_reduce.h"

// out is (M, N), b is (N,): out[m, :] = b
__global__ void fill_rows_kernel(CudaOut out, CudaIn b, int64_t M, int64_t N)
{
    CUDA_GRID_STRIDE(i, M * N) store_f32(out, i, load_f32(b, i % N));
}

/* the columns of a row-major [M, N] operand, for cuda_colsum */
struct Columns {
    CudaIn x;
    int64_t N;
    __device__ float operator()(int64_t m, int64_t c, int) const { return load_f32(x, m * N + c); }
};

/* out = in @ w^T + b [+ res]: the forward and the residual form */
static void linear_forward(Ctx *ctx, const char *op, Tensor out, Tensor in, Tensor w, Tensor b, Tensor res)
{
    DType act = cuda_act_dtype(op, in);
    cuda_same_dtype(op, out, in);
    int residual = tensor_present(res);
    if (residual) cuda_same_dtype(op, res, out);
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    cuda_gemm_check_dims(op, N, M, K);
    if (M == 0 || N == 0) return;
    int bias = tensor_present(b);

    /* scratch: [w as BF16 (N*K) | b as BF16 (N)] when they are F32 and act is BF16 */
    size_t w_bytes = act == DT_BF16 && w.dtype == DT_F32 ? cuda_align((size_t)(N * K) * 2) : 0;
    size_t b_bytes = act == DT_BF16 && bias && b.dtype == DT_F32 ? cuda_align((size_t)N * 2) : 0;
    char *scratch = w_bytes + b_bytes ? (char *)ctx_scratch(ctx, w_bytes + b_bytes) : NULL;
    const void *wp = cuda_as_dtype(ctx, op, w, act, scratch);
    const void *bp = bias ? cuda_as_dtype(ctx, op, b, act, scratch + w_bytes) : NULL;

    if (K == 0) { /* no products: out is the bias, or zero, then + res */
        if (bias) CUDA_LAUNCH(ctx, M * N, fill_rows_kernel, cuda_out(op, out), cuda_in(op, b), M, N);
        else cudaCheck(cudaMemsetAsync(out.data, 0, tensor_bytes(out), cuda_stream(ctx)));
        if (residual) cuda_add_forward(ctx, out, out, res);
        return;
    }
    CudaGemm g = cuda_gemm_problem(CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, act, act);
    g.A = wp, g.lda = (int)K;        /* w: K x N */
    g.B = in.data, g.ldb = (int)K;   /* in^T: K x M */
    g.C = out.data, g.ldc = (int)N;  /* out^T: N x M */
    g.bias = bp;
    if (residual) g.C_in = res.data, g.beta = 1.0f; /* res^T: N x M, out's layout */
    cuda_gemm(ctx, &g);
}

void cuda_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b)
{
    linear_forward(ctx, "linear_forward", out, in, w, b, tensor_none());
}

void cuda_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Tensor res)
{
    linear_forward(ctx, "linear_residual_forward", out, in, w, b, res);
}

/* set: din = dout w (written), else din += dout w; dw, db always += */
static void linear_backward(Ctx *ctx, int set, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                            Tensor w)
{
    const char *op = set ? "linear_backward_set" : "linear_backward";
    DType act = cuda_act_dtype(op, in);
    cuda_same_dtype(op, dout, in);
    if (tensor_present(din)) cuda_same_dtype(op, din, in);
    if (tensor_present(dw)) cuda_need_f32(op, "dw", dw);
    if (tensor_present(db)) cuda_need_f32(op, "db", db);
    int64_t M = tensor_rows(in), K = tensor_cols(in), N = w.shape[0];
    cuda_gemm_check_dims(op, K, M > N ? M : N, M > N ? M : N);
    int want_din = tensor_present(din) && K > 0 && N > 0;
    int want_dw = tensor_present(dw) && K > 0 && N > 0;
    if (set && tensor_present(din) && !want_din) /* N == 0: din = nothing = 0 */
        cudaCheck(cudaMemsetAsync(din.data, 0, tensor_bytes(din), cuda_stream(ctx)));
    if (M == 0 || !(want_din || want_dw || tensor_present(db))) return;

    /* scratch: [w as BF16 (N*K) | db's column-sum workspace] */
    size_t w_bytes = want_din && act == DT_BF16 && w.dtype == DT_F32 ? cuda_align((size_t)(N * K) * 2) : 0;
    size_t sum_bytes = tensor_present(db) ? cuda_colsum_workspace_bytes(1, M, N) : 0;
    char *scratch = w_bytes + sum_bytes ? (char *)ctx_scratch(ctx, w_bytes + sum_bytes) : NULL;

    if (want_din) {
        CudaGemm g = cuda_gemm_problem(CUBLAS_OP_N, CUBLAS_OP_N, (int)K, (int)M, (int)N, act, act);
        g.A = cuda_as_dtype(ctx, op, w, act, scratch), g.lda = (int)K;  /* w^T: K x N */
        g.B = dout.data, g.ldb = (int)N;                                /* dout^T: N x M */
        g.C = din.data, g.ldc = (int)K;                                 /* din^T: K x M */
        g.beta = set ? 0.0f : 1.0f;
        cuda_gemm(ctx, &g);
    }
    if (want_dw) {
        CudaGemm g = cuda_gemm_problem(CUBLAS_OP_N, CUBLAS_OP_T, (int)K, (int)N, (int)M, act, DT_F32);
        g.A = in.data, g.lda = (int)K;    /* in^T: K x M */
        g.B = dout.data, g.ldb = (int)N;  /* dout^T: N x M, transposed to M x N */
        g.C = dw.data, g.ldc = (int)K;    /* dw^T: K x N */
        g.beta = 1.0f;
        cuda_gemm(ctx, &g);
    }
    if (tensor_present(db)) {
        CudaColsumDst<1> dst = {{(float *)db.data}};
        cuda_colsum<1>(ctx, scratch + w_bytes, M, N, Columns{cuda_in(op, dout), N}, dst);
    }
}

void cuda_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in, Tensor w)
{
    linear_backward(ctx, 0, din, dw, db, dout, in, w);
}

void cuda_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in, Tensor w)
{
    linear_backward(ctx, 1, din, dw, db, dout, in, w);
}
