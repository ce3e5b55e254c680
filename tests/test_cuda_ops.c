/*
 * test_cuda_ops.c: every op of the CUDA backend against the CPU reference.
 *
 * Each test draws random inputs, runs the op on a CPU context and on a CUDA
 * context (upload, op, download) and compares the outputs by relative L2
 * error: below 1e-5 for F32 (1e-4 for GEMMs, which cuBLAS runs in F32, never
 * TF32), below 1e-2 for BF16 activations. BF16 inputs are rounded to BF16 on
 * the host first, so both backends see the same numbers and the error left is
 * the GPU's BF16 rounding of its outputs (and of F32 weights in a BF16 GEMM).
 *
 * Without a CUDA build or without a GPU every test skips with "no CUDA
 * device", except init_fails_cleanly_without_device, which then checks that
 * asking for a GPU fails with a one-line message instead of crashing.
 * Run on a GPU machine with `make gpu-check`; errors are logged with --verbose.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "kernels/ops.h"
#include "tests/cuda_bench/bf16_host.h"
#include "tests/support/gradcheck.h"

#define TOL_F32 1e-5
#define TOL_GEMM_F32 1e-4
#define TOL_BF16 1e-2

static Ctx cpu, gpu;

/* both contexts, or a skipped test */
static void start(void)
{
    if (!ctx_cuda_available()) cr_skip_test("no CUDA device");
    cr_assert_eq(ctx_init_cuda(&gpu, 0), 0, "ctx_init_cuda: %s", err_msg());
    ctx_init_cpu(&cpu, 1);
}

static void finish(void)
{
    ctx_destroy(&gpu);
    ctx_destroy(&cpu);
}

/* x[n] uniform in [lo, hi), rounded to BF16 values when dt is BF16 */
static float *random_values(int64_t n, float lo, float hi, uint64_t seed, DType dt)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    fill_uniform(x, n, lo, hi, seed);
    if (dt == DT_BF16)
        for (int64_t i = 0; i < n; i++) x[i] = f32_from_bf16(bf16_from_f32(x[i]));
    return x;
}

/* ---- moving tensors ------------------------------------------------------------ */

/* a GPU tensor of dtype dt, shape of host (an F32 view), holding host's values */
static Tensor upload(Tensor host, DType dt)
{
    int64_t n = tensor_numel(host);
    Tensor d = host;
    d.dtype = dt;
    d.data = ctx_alloc(&gpu, tensor_bytes(d));
    if (dt == DT_BF16) {
        uint16_t *tmp = malloc((size_t)(n ? n : 1) * 2);
        for (int64_t i = 0; i < n; i++) tmp[i] = bf16_from_f32(tensor_f32(host)[i]);
        ctx_upload(&gpu, d.data, tmp, tensor_bytes(d));
        free(tmp);
    } else {
        ctx_upload(&gpu, d.data, host.data, tensor_bytes(d));
    }
    return d;
}

/* a zeroed GPU tensor of dtype dt with the shape of host, for an op's output */
static Tensor gpu_zeros(Tensor host, DType dt)
{
    Tensor d = host;
    d.dtype = dt;
    d.data = ctx_alloc(&gpu, tensor_bytes(d));
    ctx_zero(&gpu, d);
    return d;
}

/* dev's values as F32 in a new host array */
static float *download(Tensor dev)
{
    int64_t n = tensor_numel(dev);
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    if (dev.dtype == DT_BF16) {
        uint16_t *tmp = malloc((size_t)(n ? n : 1) * 2);
        ctx_download(&gpu, tmp, dev.data, tensor_bytes(dev));
        for (int64_t i = 0; i < n; i++) x[i] = f32_from_bf16(tmp[i]);
        free(tmp);
    } else {
        ctx_download(&gpu, x, dev.data, tensor_bytes(dev));
    }
    return x;
}

/* dev against the CPU's F32 result want[n] */
static void expect_close(const char *what, Tensor dev, const float *want, double tol)
{
    int64_t n = tensor_numel(dev);
    float *got = download(dev);
    double err = rel_l2(got, want, n);
    cr_log_info("%s %s: relative L2 error %.2e (limit %.0e)", what, dtype_name(dev.dtype), err, tol);
    cr_expect(err < tol, "%s %s: relative L2 error %.3e, limit %.0e", what,
              dtype_name(dev.dtype), err, tol);
    free(got);
}

static double tol_for(DType dt) { return dt == DT_F32 ? TOL_F32 : TOL_BF16; }

/* ---- contexts ------------------------------------------------------------------------- */

Test(cuda, init_fails_cleanly_without_device)
{
    Ctx c;
    if (ctx_cuda_available()) {
        cr_expect_eq(ctx_init_cuda(&c, 1 << 20), -1, "device 2^20 cannot exist");
        cr_expect(strstr(err_msg(), "--device") != NULL, "message: %s", err_msg());
        cr_expect_eq(ctx_init_cuda(&c, 0), 0, "%s", err_msg());
        cr_expect_eq(c.act_dtype, DT_BF16);
        ctx_destroy(&c);
    } else {
        err_clear();
        cr_expect_eq(ctx_init_cuda(&c, 0), -1);
        cr_expect(strlen(err_msg()) > 0 && strchr(err_msg(), '\n') == NULL,
                  "want a one-line message, got '%s'", err_msg());
    }
}

/* ---- linear ------------------------------------------------------------------------------ */

/* out[M,N] = in[M,K] w[N,K]^T + b; w_dt is the GPU weights' dtype */
static void check_linear(int64_t M, int64_t K, int64_t N, int bias, DType dt, DType w_dt,
                         const char *what)
{
    float *x = random_values(M * K, -1, 1, 1, dt);
    float *w = random_values(N * K, -0.5f, 0.5f, 2, w_dt);
    float *b = random_values(N, -1, 1, 3, w_dt);
    float *want = malloc((size_t)(M * N) * sizeof *want);
    Tensor hx = tensor2(x, DT_F32, M, K), hw = tensor2(w, DT_F32, N, K);
    Tensor hb = bias ? tensor1(b, DT_F32, N) : tensor_none();
    Tensor hy = tensor2(want, DT_F32, M, N);
    op_linear_forward(&cpu, hy, hx, hw, hb);

    Tensor dx = upload(hx, dt), dw = upload(hw, w_dt), dy = gpu_zeros(hy, dt);
    Tensor db = bias ? upload(hb, w_dt) : tensor_none();
    op_linear_forward(&gpu, dy, dx, dw, db);
    expect_close(what, dy, want, dt == DT_F32 ? TOL_GEMM_F32 : TOL_BF16);

    ctx_free(&gpu, dx.data), ctx_free(&gpu, dw.data), ctx_free(&gpu, dy.data), ctx_free(&gpu, db.data);
    free(x), free(w), free(b), free(want);
}

static void linear_cases(DType dt)
{
    start();
    check_linear(4 * 33, 96, 80, 1, dt, DT_F32, "linear 132x96 -> 80 + b");
    check_linear(4 * 33, 96, 80, 0, dt, DT_F32, "linear 132x96 -> 80");
    check_linear(7, 13, 5, 1, dt, DT_F32, "linear 7x13 -> 5 + b (unaligned)");
    check_linear(9, 40, 1, 1, dt, DT_F32, "linear 9x40 -> 1 + b");
    check_linear(2 * 257, 512, 1536, 1, dt, DT_F32, "linear 514x512 -> 1536 + b (U-ViT qkv)");
    if (dt == DT_BF16) check_linear(64, 128, 96, 1, dt, DT_BF16, "linear BF16 weights");
    finish();
}

Test(cuda, linear_f32) { linear_cases(DT_F32); }
Test(cuda, linear_bf16) { linear_cases(DT_BF16); }

/* the same through cublasGemmEx instead of cuBLASLt */
Test(cuda, linear_cublas_f32)
{
    setenv("DEEDIFF_CUDA_GEMM", "cublas", 1);
    linear_cases(DT_F32);
    unsetenv("DEEDIFF_CUDA_GEMM");
}
Test(cuda, linear_cublas_bf16)
{
    setenv("DEEDIFF_CUDA_GEMM", "cublas", 1);
    linear_cases(DT_BF16);
    unsetenv("DEEDIFF_CUDA_GEMM");
}

/* ---- layernorm ------------------------------------------------------------------------------ */

static void layernorm_case(DType dt)
{
    start();
    int64_t B = 3, T = 37, C = 200, M = B * T;
    float *x = random_values(M * C, -2, 3, 4, dt); /* a nonzero mean */
    float *w = random_values(C, 0.5f, 1.5f, 5, DT_F32);
    float *b = random_values(C, -0.5f, 0.5f, 6, DT_F32);
    float *want = malloc((size_t)(M * C) * sizeof *want);
    float *mean = malloc((size_t)M * sizeof *mean), *rstd = malloc((size_t)M * sizeof *rstd);
    Tensor hx = tensor3(x, DT_F32, B, T, C), hy = tensor3(want, DT_F32, B, T, C);
    Tensor hw = tensor1(w, DT_F32, C), hb = tensor1(b, DT_F32, C);
    Tensor hm = tensor2(mean, DT_F32, B, T), hr = tensor2(rstd, DT_F32, B, T);
    op_layernorm_forward(&cpu, hy, hm, hr, hx, hw, hb, 1e-5f);

    Tensor dx = upload(hx, dt), dw = upload(hw, DT_F32), db = upload(hb, DT_F32);
    Tensor dy = gpu_zeros(hy, dt), dm = gpu_zeros(hm, DT_F32), dr = gpu_zeros(hr, DT_F32);
    op_layernorm_forward(&gpu, dy, dm, dr, dx, dw, db, 1e-5f);
    expect_close("layernorm out", dy, want, tol_for(dt));
    expect_close("layernorm mean", dm, mean, TOL_F32);
    expect_close("layernorm rstd", dr, rstd, TOL_F32);

    ctx_free(&gpu, dx.data), ctx_free(&gpu, dy.data), ctx_free(&gpu, dw.data);
    ctx_free(&gpu, db.data), ctx_free(&gpu, dm.data), ctx_free(&gpu, dr.data);
    free(x), free(w), free(b), free(want), free(mean), free(rstd);
    finish();
}

Test(cuda, layernorm_f32) { layernorm_case(DT_F32); }
Test(cuda, layernorm_bf16) { layernorm_case(DT_BF16); }

/* ---- pointwise ------------------------------------------------------------------------------- */

typedef void (*UnaryOp)(Ctx *, Tensor, Tensor);

static void unary_case(UnaryOp op, const char *what, DType dt)
{
    start();
    int64_t n = 10007;
    float *x = random_values(n, -6, 6, 7, dt);
    float *want = malloc((size_t)n * sizeof *want);
    Tensor hx = tensor1(x, DT_F32, n), hy = tensor1(want, DT_F32, n);
    op(&cpu, hy, hx);
    Tensor dx = upload(hx, dt), dy = gpu_zeros(hy, dt);
    op(&gpu, dy, dx);
    expect_close(what, dy, want, tol_for(dt));
    ctx_free(&gpu, dx.data), ctx_free(&gpu, dy.data);
    free(x), free(want);
    finish();
}

Test(cuda, gelu_forward_f32) { unary_case(op_gelu_forward, "gelu_forward", DT_F32); }
Test(cuda, gelu_forward_bf16) { unary_case(op_gelu_forward, "gelu_forward", DT_BF16); }
Test(cuda, silu_forward_f32) { unary_case(op_silu_forward, "silu_forward", DT_F32); }
Test(cuda, silu_forward_bf16) { unary_case(op_silu_forward, "silu_forward", DT_BF16); }

/* din starts nonzero: the backward must add to it */
static void gelu_backward_case(DType dt)
{
    start();
    int64_t n = 10007;
    float *x = random_values(n, -6, 6, 8, dt);
    float *g = random_values(n, -1, 1, 9, dt);
    float *din = random_values(n, -1, 1, 10, dt);
    Tensor hx = tensor1(x, DT_F32, n), hg = tensor1(g, DT_F32, n), hd = tensor1(din, DT_F32, n);
    Tensor dx = upload(hx, dt), dg = upload(hg, dt), dd = upload(hd, dt);
    op_gelu_backward(&cpu, hd, hg, hx);
    op_gelu_backward(&gpu, dd, dg, dx);
    expect_close("gelu_backward", dd, din, tol_for(dt));
    ctx_free(&gpu, dx.data), ctx_free(&gpu, dg.data), ctx_free(&gpu, dd.data);
    free(x), free(g), free(din);
    finish();
}

Test(cuda, gelu_backward_f32) { gelu_backward_case(DT_F32); }
Test(cuda, gelu_backward_bf16) { gelu_backward_case(DT_BF16); }

/* ---- sums ------------------------------------------------------------------------------------ */

static void add_case(DType dt)
{
    start();
    int64_t n = 4099;
    float *a = random_values(n, -1, 1, 11, dt), *b = random_values(n, -1, 1, 12, dt);
    float *want = malloc((size_t)n * sizeof *want);
    Tensor ha = tensor1(a, DT_F32, n), hb = tensor1(b, DT_F32, n), hy = tensor1(want, DT_F32, n);
    op_add_forward(&cpu, hy, ha, hb);
    Tensor da = upload(ha, dt), db = upload(hb, dt), dy = gpu_zeros(hy, dt);
    op_add_forward(&gpu, dy, da, db);
    expect_close("add_forward", dy, want, tol_for(dt));
    op_add_forward(&gpu, da, da, db); /* out aliasing a */
    expect_close("add_forward in place", da, want, tol_for(dt));
    ctx_free(&gpu, da.data), ctx_free(&gpu, db.data), ctx_free(&gpu, dy.data);
    free(a), free(b), free(want);
    finish();
}

Test(cuda, add_forward_f32) { add_case(DT_F32); }
Test(cuda, add_forward_bf16) { add_case(DT_BF16); }

static void accumulate_case(DType dt)
{
    start();
    int64_t n = 4099;
    float *dst = random_values(n, -1, 1, 13, dt), *src = random_values(n, -1, 1, 14, dt);
    Tensor hd = tensor2(dst, DT_F32, 1, n), hs = tensor2(src, DT_F32, 1, n);
    Tensor dd = upload(hd, dt), ds = upload(hs, dt);
    op_accumulate(&cpu, hd, hs);
    op_accumulate(&gpu, dd, ds);
    expect_close("accumulate", dd, dst, tol_for(dt));
    ctx_free(&gpu, dd.data), ctx_free(&gpu, ds.data);
    free(dst), free(src);
    finish();
}

Test(cuda, accumulate_f32) { accumulate_case(DT_F32); }
Test(cuda, accumulate_bf16) { accumulate_case(DT_BF16); }

/* out[B,T,D] = in + row[T,D]; row is an F32 parameter */
static void add_bcast_case(DType dt)
{
    start();
    int64_t B = 5, T = 17, D = 24;
    float *x = random_values(B * T * D, -1, 1, 15, dt), *row = random_values(T * D, -1, 1, 16, DT_F32);
    float *want = malloc((size_t)(B * T * D) * sizeof *want);
    Tensor hx = tensor3(x, DT_F32, B, T, D), hr = tensor3(row, DT_F32, 1, T, D);
    Tensor hy = tensor3(want, DT_F32, B, T, D);
    op_add_bcast_forward(&cpu, hy, hx, hr);
    Tensor dx = upload(hx, dt), dr = upload(hr, DT_F32), dy = gpu_zeros(hy, dt);
    op_add_bcast_forward(&gpu, dy, dx, dr);
    expect_close("add_bcast_forward", dy, want, tol_for(dt));
    ctx_free(&gpu, dx.data), ctx_free(&gpu, dr.data), ctx_free(&gpu, dy.data);
    free(x), free(row), free(want);
    finish();
}

Test(cuda, add_bcast_forward_f32) { add_bcast_case(DT_F32); }
Test(cuda, add_bcast_forward_bf16) { add_bcast_case(DT_BF16); }

/* ---- token slices (copies: the results must be exact) -------------------------------------- */

static void token_case(DType dt)
{
    start();
    int64_t B = 3, T = 11, n = 4, D = 10;
    int at = 5;
    float *seq = random_values(B * T * D, -1, 1, 17, dt), *part = random_values(B * n * D, -1, 1, 18, dt);
    float *want = malloc((size_t)(B * n * D) * sizeof *want);
    Tensor hseq = tensor3(seq, DT_F32, B, T, D), hpart = tensor3(part, DT_F32, B, n, D);
    Tensor hslice = tensor3(want, DT_F32, B, n, D);
    Tensor dseq = upload(hseq, dt), dpart = upload(hpart, dt), dslice = gpu_zeros(hslice, dt);

    op_token_slice_forward(&cpu, hslice, hseq, at);
    op_token_slice_forward(&gpu, dslice, dseq, at);
    expect_close("token_slice_forward", dslice, want, 1e-30);

    op_token_place_forward(&cpu, hseq, hpart, at);
    op_token_place_forward(&gpu, dseq, dpart, at);
    expect_close("token_place_forward", dseq, seq, 1e-30); /* other tokens untouched */

    ctx_free(&gpu, dseq.data), ctx_free(&gpu, dpart.data), ctx_free(&gpu, dslice.data);
    free(seq), free(part), free(want);
    finish();
}

Test(cuda, token_slice_place_f32) { token_case(DT_F32); }
Test(cuda, token_slice_place_bf16) { token_case(DT_BF16); }

/* ---- timestep embedding ----------------------------------------------------------------------- */

static void timestep_case(DType dt, int64_t D)
{
    int64_t B = 16;
    float *t = random_values(B, 0, 1000, 19, DT_F32); /* fractional, up to U-ViT's 1000 */
    t[0] = 0.0f, t[1] = 999.0f;
    float *want = malloc((size_t)(B * D) * sizeof *want);
    Tensor ht = tensor1(t, DT_F32, B), hy = tensor2(want, DT_F32, B, D);
    op_timestep_embedding_forward(&cpu, hy, ht);
    Tensor dtime = upload(ht, DT_F32), dy = gpu_zeros(hy, dt);
    op_timestep_embedding_forward(&gpu, dy, dtime);
    expect_close(D % 2 ? "timestep_embedding odd D" : "timestep_embedding", dy, want, tol_for(dt));
    ctx_free(&gpu, dtime.data), ctx_free(&gpu, dy.data);
    free(t), free(want);
}

Test(cuda, timestep_embedding_f32)
{
    start();
    timestep_case(DT_F32, 512);
    timestep_case(DT_F32, 33);
    finish();
}
Test(cuda, timestep_embedding_bf16)
{
    start();
    timestep_case(DT_BF16, 512);
    timestep_case(DT_BF16, 33);
    finish();
}

/* ---- loss ---------------------------------------------------------------------------------------- */

static void mse_case(DType dt)
{
    start();
    int64_t n = 100003;
    float *p = random_values(n, -2, 2, 20, dt), *y = random_values(n, -1, 1, 21, dt);
    Tensor hp = tensor1(p, DT_F32, n), hy = tensor1(y, DT_F32, n);
    float want = op_mse_forward(&cpu, hp, hy);
    Tensor dp = upload(hp, dt), dy = upload(hy, dt);
    float got = op_mse_forward(&gpu, dp, dy);
    double err = fabs((double)got - want) / fabs((double)want);
    cr_log_info("mse_forward %s: relative error %.2e (limit %.0e)", dtype_name(dt), err, TOL_F32);
    /* both sum the same values in F64: tight for BF16 inputs too */
    cr_expect(err < TOL_F32, "mse_forward %s: got %.9g want %.9g", dtype_name(dt), got, want);
    ctx_free(&gpu, dp.data), ctx_free(&gpu, dy.data);
    free(p), free(y);
    finish();
}

Test(cuda, mse_forward_f32) { mse_case(DT_F32); }
Test(cuda, mse_forward_bf16) { mse_case(DT_BF16); }
