/*
 * test_cuda_ops.c: the CUDA backend's context and table, and its transformer
 * core against the CPU reference: linear, LayerNorm and the attention (fused,
 * and composed for heads wider than 128),
 * forward and backward, F32 and BF16 (tests/support/cuda_compare.h has the
 * rules). The other ops: test_cuda_pointwise.c, test_cuda_train.c,
 * test_cuda_vision.c, the fused and _set forms test_cuda_fused.c; all are
 * suite "cuda", which make gpu-check runs.
 *
 * Without a CUDA build or without a GPU every comparison skips with "no CUDA
 * device"; init_fails_cleanly_without_device then checks that asking for a
 * GPU fails with a one-line message, and table_fills_every_entry checks the
 * CUDA table on any CUDA build.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <string.h>

#include "kernels/errors.h"
#include "kernels/op_coverage.h"
#include "tests/support/cuda_compare.h"
#include "tests/support/cuda_composed.h"

/* ---- contexts and the table ------------------------------------------------------ */

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

static int cuda_leaves_composed(const char *name)
{
    for (int i = 0; cuda_composed[i]; i++)
        if (!strcmp(cuda_composed[i], name)) return 1;
    return 0;
}

/* every entry the CPU table fills, the CUDA table fills too (no GPU
   needed), but for the optional fused forms listed in cuda_composed; and
   each of those is a real, optional, unfilled entry */
Test(cuda, table_fills_every_entry)
{
    const OpTable *cuda = op_backend_table(BACKEND_CUDA), *cpu = op_backend_table(BACKEND_CPU);
    if (!cuda) cr_skip_test("this build has no CUDA");
    int entries = 0;
    for (const OpEntry *e = op_entries; e->name; e++, entries++)
        if (op_entry_filled(cpu, e) && !cuda_leaves_composed(e->name))
            cr_expect(op_entry_filled(cuda, e), "cuda lacks %s%s", e->name,
                      e->optional ? " (optional: fill it, or list it in cuda_composed with its reason)" : "");
    for (int i = 0; cuda_composed[i]; i++) {
        const OpEntry *e = op_entry_find(cuda_composed[i]);
        cr_expect(e && e->optional && !op_entry_filled(cuda, e), "cuda_composed: %s is not an optional entry "
                  "that the CUDA table leaves NULL", cuda_composed[i]);
    }
    cr_expect_gt(entries, 60, "%d entries: the generated list looks short", entries);
}

/* ---- linear ---------------------------------------------------------------------- */

/* out[M,N] = in[M,K] w[N,K]^T + b and the backward; w_dt: the GPU weights' dtype */
/* bias: 0 none, 1 its own allocation, BIAS_OFFSET two elements into one
   (8 bytes in F32: packed parameters put exit-head biases there, which a
   fused-bias cuBLASLt kernel may not read) */
enum { BIAS_OFFSET = 2 };

static void check_linear(int64_t M, int64_t K, int64_t N, int bias, DType dt, DType w_dt, const char *what)
{
    double tol = dt == DT_F32 ? CC_TOL_GEMM_F32 : CC_TOL_BF16;
    float *x = cc_values(M * K, -1, 1, 1, dt), *w = cc_values(N * K, -0.5f, 0.5f, 2, w_dt);
    float *b = cc_values(N, -1, 1, 3, w_dt), *y = cc_values(M * N, 0, 0, 0, DT_F32);
    Tensor hx = tensor2(x, DT_F32, M, K), hw = tensor2(w, DT_F32, N, K), hy = tensor2(y, DT_F32, M, N);
    Tensor hb = bias ? tensor1(b, DT_F32, N) : tensor_none();
    op_linear_forward(&cc_cpu, hy, hx, hw, hb);
    Tensor dx = cc_upload(hx, dt), dw = cc_upload(hw, w_dt), dy = cc_zeros(hy, dt);
    Tensor db = bias ? cc_upload(hb, w_dt) : tensor_none();
    if (bias == BIAS_OFFSET) {
        // a (N + 2) buffer whose last N elements are b
        float *wide = cc_values(N + 2, -1, 1, 3, w_dt);
        memcpy(wide + 2, b, sizeof(float) * (size_t)N);
        Tensor whole = cc_upload(tensor1(wide, DT_F32, N + 2), w_dt);
        db = tensor1((char *)whole.data + 2 * dtype_size(w_dt), w_dt, N);
    }
    op_linear_forward(&cc_gpu, dy, dx, dw, db);
    cc_expect_close(what, dy, y, tol);
    if (w_dt != DT_F32) return; /* gradients are for F32 master weights */

    /* backward; every gradient starts nonzero: the op must add */
    float *g = cc_values(M * N, -1, 1, 4, dt), *gx = cc_values(M * K, -1, 1, 5, dt);
    float *gw = cc_values(N * K, -1, 1, 6, DT_F32), *gb = cc_values(N, -1, 1, 7, DT_F32);
    Tensor hg = tensor2(g, DT_F32, M, N), hgx = tensor2(gx, DT_F32, M, K);
    Tensor hgw = tensor2(gw, DT_F32, N, K), hgb = bias ? tensor1(gb, DT_F32, N) : tensor_none();
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dgw = cc_upload(hgw, DT_F32);
    Tensor dgb = bias ? cc_upload(hgb, DT_F32) : tensor_none();
    op_linear_backward(&cc_cpu, hgx, hgw, hgb, hg, hx, hw);
    op_linear_backward(&cc_gpu, dgx, dgw, dgb, dg, dx, dw);
    char label[160];
    snprintf(label, sizeof label, "%s: din", what);
    cc_expect_close(label, dgx, gx, tol);
    snprintf(label, sizeof label, "%s: dw", what);
    cc_expect_close(label, dgw, gw, tol);
    if (bias) {
        snprintf(label, sizeof label, "%s: db", what);
        cc_expect_close(label, dgb, gb, CC_TOL_F32);
    }
}

static void linear_cases(DType dt)
{
    cc_start();
    check_linear(4 * 33, 96, 80, 1, dt, DT_F32, "linear 132x96 -> 80 + b");
    check_linear(4 * 33, 96, 80, 0, dt, DT_F32, "linear 132x96 -> 80");
    check_linear(7, 13, 5, 1, dt, DT_F32, "linear 7x13 -> 5 + b (unaligned)");
    check_linear(9, 40, 1, 1, dt, DT_F32, "linear 9x40 -> 1 + b");
    check_linear(2 * 257, 512, 1536, 1, dt, DT_F32, "linear 514x512 -> 1536 + b (U-ViT qkv)");
    check_linear(130, 64, 64, 1, dt, DT_F32, "linear 130 rows (db's row groups)");
    check_linear(4 * 33, 96, 80, BIAS_OFFSET, dt, DT_F32, "linear 132x96 -> 80 + b at 2 elements in");
    if (dt == DT_BF16) check_linear(64, 128, 96, 1, dt, DT_BF16, "linear BF16 weights");
    cc_finish();
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

/* ---- layernorm --------------------------------------------------------------------- */

static void layernorm_case(DType dt)
{
    cc_start();
    int64_t B = 3, T = 37, C = 200, M = B * T;
    float *x = cc_values(M * C, -2, 3, 4, dt); /* a nonzero mean */
    float *w = cc_values(C, 0.5f, 1.5f, 5, DT_F32), *b = cc_values(C, -0.5f, 0.5f, 6, DT_F32);
    float *y = cc_values(M * C, 0, 0, 0, DT_F32), *mean = cc_values(M, 0, 0, 0, DT_F32);
    float *rstd = cc_values(M, 0, 0, 0, DT_F32);
    Tensor hx = tensor3(x, DT_F32, B, T, C), hy = tensor3(y, DT_F32, B, T, C);
    Tensor hw = tensor1(w, DT_F32, C), hb = tensor1(b, DT_F32, C);
    Tensor hm = tensor2(mean, DT_F32, B, T), hr = tensor2(rstd, DT_F32, B, T);
    op_layernorm_forward(&cc_cpu, hy, hm, hr, hx, hw, hb, 1e-5f);
    Tensor dx = cc_upload(hx, dt), dw = cc_upload(hw, DT_F32), db = cc_upload(hb, DT_F32);
    Tensor dy = cc_zeros(hy, dt), dm = cc_zeros(hm, DT_F32), dr = cc_zeros(hr, DT_F32);
    op_layernorm_forward(&cc_gpu, dy, dm, dr, dx, dw, db, 1e-5f);
    cc_expect_close("layernorm out", dy, y, cc_tol(dt));
    cc_expect_close("layernorm mean", dm, mean, CC_TOL_F32);
    cc_expect_close("layernorm rstd", dr, rstd, CC_TOL_F32);

    /* backward from the CPU's statistics (both sides read the same) */
    float *g = cc_values(M * C, -1, 1, 7, dt), *gx = cc_values(M * C, -1, 1, 8, dt);
    float *gw = cc_values(C, -1, 1, 9, DT_F32), *gb = cc_values(C, -1, 1, 10, DT_F32);
    Tensor hg = tensor3(g, DT_F32, B, T, C), hgx = tensor3(gx, DT_F32, B, T, C);
    Tensor hgw = tensor1(gw, DT_F32, C), hgb = tensor1(gb, DT_F32, C);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dgw = cc_upload(hgw, DT_F32);
    Tensor dgb = cc_upload(hgb, DT_F32), dm2 = cc_upload(hm, DT_F32), dr2 = cc_upload(hr, DT_F32);
    op_layernorm_backward(&cc_cpu, hgx, hgw, hgb, hg, hx, hw, hm, hr);
    op_layernorm_backward(&cc_gpu, dgx, dgw, dgb, dg, dx, dw, dm2, dr2);
    cc_expect_close("layernorm din", dgx, gx, cc_tol(dt));
    cc_expect_close("layernorm dw", dgw, gw, CC_TOL_F32 * 10);
    cc_expect_close("layernorm db", dgb, gb, CC_TOL_F32);
    cc_finish();
}

Test(cuda, layernorm_f32) { layernorm_case(DT_F32); }
Test(cuda, layernorm_bf16) { layernorm_case(DT_BF16); }

/* ---- attention ---------------------------------------------------------------------- */

/* out = softmax(q k^T / sqrt(hd)) v for qkv[B,T,3A]; then the backward. The
   CPU keeps every probability; the GPU keeps each row's log-sum-exp (heads
   wider than 128: every probability too, cuda_attention_wide.cu). */
static void check_attention(int64_t B, int64_t T, int heads, int64_t hd, DType dt)
{
    int64_t A = heads * hd, H = heads;
    char what[96];
    snprintf(what, sizeof what, "attention B%lld T%lld H%d hd%lld", (long long)B, (long long)T, heads,
             (long long)hd);
    float *qkv = cc_values(B * T * 3 * A, -1.5f, 1.5f, 11, dt), *out = cc_values(B * T * A, 0, 0, 0, DT_F32);
    float *probs = cc_values(B * H * T * T, 0, 0, 0, DT_F32);
    Tensor hqkv = tensor3(qkv, DT_F32, B, T, 3 * A), hout = tensor3(out, DT_F32, B, T, A);
    Tensor hp = tensor4(probs, DT_F32, B, H, T, T);
    op_attention_forward(&cc_cpu, hout, hp, hqkv, heads);
    Tensor dqkv_in = cc_upload(hqkv, dt), dout = cc_zeros(hout, dt), dp = cc_zeros(hp, DT_F32);
    op_attention_forward(&cc_gpu, dout, dp, dqkv_in, heads);
    cc_expect_close(what, dout, out, cc_tol(dt));
    if (hd > 128) cc_expect_close("attention probs (composed path)", dp, probs, cc_tol(dt));
    Tensor dout2 = cc_zeros(hout, dt); /* inference: no probs */
    op_attention_forward(&cc_gpu, dout2, tensor_none(), dqkv_in, heads);
    cc_expect_close("attention without probs", dout2, out, cc_tol(dt));

    float *g = cc_values(B * T * A, -1, 1, 12, dt), *gx = cc_values(B * T * 3 * A, -1, 1, 13, dt);
    float *dprobs = cc_values(B * H * T * T, 0, 0, 0, DT_F32);
    Tensor hg = tensor3(g, DT_F32, B, T, A), hgx = tensor3(gx, DT_F32, B, T, 3 * A);
    Tensor hdp = tensor4(dprobs, DT_F32, B, H, T, T);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), ddp = cc_zeros(hdp, DT_F32);
    op_attention_backward(&cc_cpu, hgx, hdp, hg, hqkv, hp, heads);
    op_attention_backward(&cc_gpu, dgx, ddp, dg, dqkv_in, dp, heads);
    snprintf(what + strlen(what), sizeof what - strlen(what), ": dqkv");
    cc_expect_close(what, dgx, gx, cc_tol(dt) * (dt == DT_F32 ? 10 : 1));
}

static void attention_cases(DType dt)
{
    cc_start();
    check_attention(2, 65, 2, 32, dt);   /* T = 2 tiles + 1 row */
    check_attention(1, 100, 3, 64, dt);
    check_attention(2, 257, 2, 72, dt);  /* hd 72 (U-ViT-H) in the 128 tile */
    check_attention(1, 31, 1, 128, dt);  /* less than one tile */
    check_attention(1, 1100, 1, 64, dt); /* the longest U-ViT sequence */
    check_attention(2, 70, 2, 256, dt);  /* wider than the fused tiles: the composed path */
    check_attention(2, 64, 1, 512, dt);  /* the KL autoencoder's mid-block attention (8 x 8 latents) */
    check_attention(32769, 2, 2, 32, dt); /* B*H = 65538 pairs: past the grid's y extent, into z */
    cc_finish();
}

Test(cuda, attention_f32, .timeout = 120) { attention_cases(DT_F32); }
Test(cuda, attention_bf16, .timeout = 120) { attention_cases(DT_BF16); }
