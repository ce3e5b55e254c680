/*
 * test_cuda_fused.c: the fused and overwriting (_set) forms of kernels/ops.h
 * on the CUDA backend against the CPU reference (tests/support/cuda_compare.h
 * has the rules): linear_residual_forward (the residual as cuBLASLt's C),
 * linear_backward_set, linear_gelu's forward (ops.c's composition on CUDA)
 * and its backward and _set forms, attention_backward_set, and the 8-wide
 * BF16 path of the pointwise ops against their one-value path, bit for bit.
 *
 * Every _set output starts as NaN on the GPU (it must be overwritten), every
 * accumulated gradient starts nonzero on both sides (it must be added to).
 * Suite "cuda": skipped without a GPU, run by make gpu-check.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/cuda_compare.h"

/* n NaNs, as a host array freed by cc_finish() */
static float *nans(int64_t n)
{
    float *x = cc_values(n, 0, 0, 0, DT_F32);
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

static double gemm_tol(DType dt) { return dt == DT_F32 ? CC_TOL_GEMM_F32 : CC_TOL_BF16; }

/* ---- linear_residual_forward -------------------------------------------------------- */

/* out[M,N] = in[M,K] w[N,K]^T + b + res[M,N]; res must come back untouched */
static void check_residual(int64_t M, int64_t K, int64_t N, int bias, DType dt, const char *what)
{
    float *x = cc_values(M * K, -1, 1, 21, dt), *w = cc_values(N * K, -0.5f, 0.5f, 22, DT_F32);
    float *b = cc_values(N, -1, 1, 23, DT_F32), *r = cc_values(M * N, -2, 2, 24, dt);
    float *y = cc_values(M * N, 0, 0, 0, DT_F32);
    Tensor hx = tensor2(x, DT_F32, M, K), hw = tensor2(w, DT_F32, N, K), hr = tensor2(r, DT_F32, M, N);
    Tensor hy = tensor2(y, DT_F32, M, N), hb = bias ? tensor1(b, DT_F32, N) : tensor_none();
    op_linear_residual_forward(&cc_cpu, hy, hx, hw, hb, hr);
    Tensor dx = cc_upload(hx, dt), dw = cc_upload(hw, DT_F32), dr = cc_upload(hr, dt);
    Tensor db = bias ? cc_upload(hb, DT_F32) : tensor_none(), dy = cc_upload(tensor2(nans(M * N), DT_F32, M, N), dt);
    op_linear_residual_forward(&cc_gpu, dy, dx, dw, db, dr);
    cc_expect_close(what, dy, y, gemm_tol(dt));
    cc_expect_close("linear_residual: res untouched", dr, r, 1e-7);
}

static void residual_cases(DType dt)
{
    cc_start();
    check_residual(2 * 257, 512, 512, 1, dt, "linear_residual 514x512 -> 512 + b (U-ViT proj)");
    check_residual(2 * 257, 2048, 512, 1, dt, "linear_residual 514x2048 -> 512 + b (U-ViT fc2)");
    check_residual(4 * 33, 96, 80, 0, dt, "linear_residual 132x96 -> 80, no bias");
    check_residual(7, 13, 5, 1, dt, "linear_residual 7x13 -> 5 + b (unaligned)");
    cc_finish();
}

Test(cuda, linear_residual_f32) { residual_cases(DT_F32); }
Test(cuda, linear_residual_bf16) { residual_cases(DT_BF16); }

/* through cublasGemmEx: res copied into out, the bias added after the GEMM */
Test(cuda, linear_residual_cublas)
{
    setenv("DEEDIFF_CUDA_GEMM", "cublas", 1);
    residual_cases(DT_F32);
    residual_cases(DT_BF16);
    unsetenv("DEEDIFF_CUDA_GEMM");
}

/* ---- linear_backward_set --------------------------------------------------------------- */

static void check_backward_set(int64_t M, int64_t K, int64_t N, DType dt, const char *what)
{
    float *x = cc_values(M * K, -1, 1, 31, dt), *w = cc_values(N * K, -0.5f, 0.5f, 32, DT_F32);
    float *g = cc_values(M * N, -1, 1, 33, dt), *gx = nans(M * K);
    float *gw = cc_values(N * K, -1, 1, 34, DT_F32), *gb = cc_values(N, -1, 1, 35, DT_F32);
    Tensor hx = tensor2(x, DT_F32, M, K), hw = tensor2(w, DT_F32, N, K), hg = tensor2(g, DT_F32, M, N);
    Tensor hgx = tensor2(gx, DT_F32, M, K), hgw = tensor2(gw, DT_F32, N, K), hgb = tensor1(gb, DT_F32, N);
    Tensor dx = cc_upload(hx, dt), dw = cc_upload(hw, DT_F32), dg = cc_upload(hg, dt);
    Tensor dgx = cc_upload(hgx, dt), dgw = cc_upload(hgw, DT_F32), dgb = cc_upload(hgb, DT_F32);
    op_linear_backward_set(&cc_cpu, hgx, hgw, hgb, hg, hx, hw);
    op_linear_backward_set(&cc_gpu, dgx, dgw, dgb, dg, dx, dw);
    char label[160];
    snprintf(label, sizeof label, "%s: din (set)", what);
    cc_expect_close(label, dgx, gx, gemm_tol(dt));
    snprintf(label, sizeof label, "%s: dw (+=)", what);
    cc_expect_close(label, dgw, gw, gemm_tol(dt));
    snprintf(label, sizeof label, "%s: db (+=)", what);
    cc_expect_close(label, dgb, gb, CC_TOL_F32);
}

static void backward_set_cases(DType dt)
{
    cc_start();
    check_backward_set(2 * 257, 512, 1536, dt, "linear_backward_set 514x512 -> 1536");
    check_backward_set(7, 13, 5, dt, "linear_backward_set 7x13 -> 5");
    cc_finish();
}

Test(cuda, linear_backward_set_f32) { backward_set_cases(DT_F32); }
Test(cuda, linear_backward_set_bf16) { backward_set_cases(DT_BF16); }

/* ---- linear_gelu --------------------------------------------------------------------- */

/* pre = in w^T + b, out = gelu(pre) (with and without pre), then the
   backward (set: din overwritten) through the caller's dpre scratch */
static void check_linear_gelu(int64_t M, int64_t K, int64_t N, int set, DType dt, const char *what)
{
    double tol = gemm_tol(dt);
    float *x = cc_values(M * K, -1, 1, 41, dt), *w = cc_values(N * K, -0.5f, 0.5f, 42, DT_F32);
    float *b = cc_values(N, -1, 1, 43, DT_F32), *y = cc_values(M * N, 0, 0, 0, DT_F32);
    float *pre = cc_values(M * N, 0, 0, 0, DT_F32);
    Tensor hx = tensor2(x, DT_F32, M, K), hw = tensor2(w, DT_F32, N, K), hb = tensor1(b, DT_F32, N);
    Tensor hy = tensor2(y, DT_F32, M, N), hpre = tensor2(pre, DT_F32, M, N);
    op_linear_gelu_forward(&cc_cpu, hy, hpre, hx, hw, hb);
    Tensor dx = cc_upload(hx, dt), dw = cc_upload(hw, DT_F32), db = cc_upload(hb, DT_F32);
    Tensor dy = cc_zeros(hy, dt), dpre = cc_zeros(hpre, dt), dy2 = cc_zeros(hy, dt);
    op_linear_gelu_forward(&cc_gpu, dy, dpre, dx, dw, db);
    op_linear_gelu_forward(&cc_gpu, dy2, tensor_none(), dx, dw, db);
    char label[160];
    snprintf(label, sizeof label, "%s: out", what);
    cc_expect_close(label, dy, y, tol);
    snprintf(label, sizeof label, "%s: pre", what);
    cc_expect_close(label, dpre, pre, tol);
    snprintf(label, sizeof label, "%s: out without pre", what);
    cc_expect_close(label, dy2, y, tol);

    /* the backward from the same pre on both sides */
    float *g = cc_values(M * N, -1, 1, 44, dt), *gx = set ? nans(M * K) : cc_values(M * K, -1, 1, 45, dt);
    float *gw = cc_values(N * K, -1, 1, 46, DT_F32), *gb = cc_values(N, -1, 1, 47, DT_F32);
    float *dp = cc_values(M * N, 0, 0, 0, DT_F32);
    if (dt == DT_BF16) pre = cc_download(dpre); /* the GPU's BF16 pre for both */
    hpre = tensor2(pre, DT_F32, M, N);
    Tensor hg = tensor2(g, DT_F32, M, N), hgx = tensor2(gx, DT_F32, M, K), hgw = tensor2(gw, DT_F32, N, K);
    Tensor hgb = tensor1(gb, DT_F32, N), hdp = tensor2(dp, DT_F32, M, N);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dgw = cc_upload(hgw, DT_F32);
    Tensor dgb = cc_upload(hgb, DT_F32), ddp = cc_upload(tensor2(nans(M * N), DT_F32, M, N), dt);
    Tensor dpre2 = cc_upload(hpre, dt);
    (set ? op_linear_gelu_backward_set : op_linear_gelu_backward)(&cc_cpu, hgx, hgw, hgb, hdp, hg, hx, hw, hpre);
    (set ? op_linear_gelu_backward_set : op_linear_gelu_backward)(&cc_gpu, dgx, dgw, dgb, ddp, dg, dx, dw, dpre2);
    snprintf(label, sizeof label, "%s: dpre", what);
    cc_expect_close(label, ddp, dp, cc_tol(dt));
    snprintf(label, sizeof label, "%s: din (%s)", what, set ? "set" : "+=");
    cc_expect_close(label, dgx, gx, tol);
    snprintf(label, sizeof label, "%s: dw", what);
    cc_expect_close(label, dgw, gw, tol);
    snprintf(label, sizeof label, "%s: db", what);
    cc_expect_close(label, dgb, gb, dt == DT_F32 ? CC_TOL_F32 : CC_TOL_BF16);
}

static void linear_gelu_cases(DType dt)
{
    cc_start();
    for (int set = 0; set < 2; set++) {
        check_linear_gelu(2 * 257, 512, 2048, set, dt, set ? "linear_gelu 514x512 -> 2048 (_set)"
                                                           : "linear_gelu 514x512 -> 2048 (U-ViT fc1)");
        check_linear_gelu(7, 13, 5, set, dt, set ? "linear_gelu 7x13 -> 5 (_set, one value a thread)"
                                                 : "linear_gelu 7x13 -> 5 (one value a thread)");
    }
    cc_finish();
}

Test(cuda, linear_gelu_f32) { linear_gelu_cases(DT_F32); }
Test(cuda, linear_gelu_bf16) { linear_gelu_cases(DT_BF16); }

/* ---- attention_backward_set -------------------------------------------------------------- */

static void check_attention_set(int64_t B, int64_t T, int heads, int64_t hd, DType dt)
{
    int64_t A = heads * hd, H = heads;
    float *qkv = cc_values(B * T * 3 * A, -1.5f, 1.5f, 51, dt), *out = cc_values(B * T * A, 0, 0, 0, DT_F32);
    float *probs = cc_values(B * H * T * T, 0, 0, 0, DT_F32), *dprobs = cc_values(B * H * T * T, 0, 0, 0, DT_F32);
    float *g = cc_values(B * T * A, -1, 1, 52, dt), *gx = nans(B * T * 3 * A);
    Tensor hqkv = tensor3(qkv, DT_F32, B, T, 3 * A), hout = tensor3(out, DT_F32, B, T, A);
    Tensor hp = tensor4(probs, DT_F32, B, H, T, T), hdp = tensor4(dprobs, DT_F32, B, H, T, T);
    Tensor hg = tensor3(g, DT_F32, B, T, A), hgx = tensor3(gx, DT_F32, B, T, 3 * A);
    op_attention_forward(&cc_cpu, hout, hp, hqkv, heads);
    op_attention_backward_set(&cc_cpu, hgx, hdp, hg, hqkv, hp, heads);
    Tensor dqkv = cc_upload(hqkv, dt), dout = cc_zeros(hout, dt), dp = cc_zeros(hp, DT_F32);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(tensor3(nans(B * T * 3 * A), DT_F32, B, T, 3 * A), dt);
    Tensor ddp = cc_zeros(hdp, DT_F32);
    op_attention_forward(&cc_gpu, dout, dp, dqkv, heads);
    op_attention_backward_set(&cc_gpu, dgx, ddp, dg, dqkv, dp, heads);
    char what[96];
    snprintf(what, sizeof what, "attention_backward_set B%lld T%lld H%d hd%lld", (long long)B, (long long)T,
             heads, (long long)hd);
    cc_expect_close(what, dgx, gx, cc_tol(dt) * (dt == DT_F32 ? 10 : 1));
}

static void attention_set_cases(DType dt)
{
    cc_start();
    check_attention_set(2, 65, 2, 32, dt);
    check_attention_set(2, 257, 2, 72, dt); /* hd 72 in the 128 tile: the padded dims stay unwritten */
    check_attention_set(2, 70, 2, 256, dt); /* the composed path of heads wider than 128 */
    cc_finish();
}

Test(cuda, attention_backward_set_f32, .timeout = 60) { attention_set_cases(DT_F32); }
Test(cuda, attention_backward_set_bf16, .timeout = 60) { attention_set_cases(DT_BF16); }

/* ---- 8 BF16 values a thread vs one ---------------------------------------------------------- */

/* GELU on n = 4096 BF16 values (8 a thread) and on the view of the last
   4095 (misaligned: one a thread) must agree bit for bit where they overlap */
Test(cuda, pointwise_bf16x8_matches_one_value_a_thread)
{
    cc_start();
    int64_t n = 4096;
    float *x = cc_values(n, -6, 6, 61, DT_BF16);
    Tensor hx = tensor1(x, DT_F32, n);
    Tensor dx = cc_upload(hx, DT_BF16), wide = cc_zeros(hx, DT_BF16), one = cc_zeros(hx, DT_BF16);
    op_gelu_forward(&cc_gpu, wide, dx);
    Tensor dx1 = tensor1((char *)dx.data + 2, DT_BF16, n - 1), one1 = tensor1((char *)one.data + 2, DT_BF16, n - 1);
    op_gelu_forward(&cc_gpu, one1, dx1);
    float *a = cc_download(wide), *b = cc_download(one);
    cr_expect(memcmp(a + 1, b + 1, (size_t)(n - 1) * sizeof(float)) == 0,
              "gelu: the 8-wide BF16 path differs from the one-value path");
    cc_finish();
}
