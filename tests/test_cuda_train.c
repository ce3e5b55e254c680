/*
 * test_cuda_train.c: the CUDA backend's training and sampling ops against
 * the CPU reference: the losses (MSE, DeeDiff's uncertainty losses, cross
 * entropy) and the KL autoencoder's posterior (the sample and its KL term)
 * forward and backward, the optimizer updates and reductions, and
 * the sampler arithmetic (tests/support/cuda_compare.h has the rules).
 * AdamW, the EMA, the scale, axpby and the Philox normals promise the
 * CPU's F32 bits exactly (kernels/cuda/cuda_optim.cu, cuda_sampler.cu).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <string.h>

#include "kernels/philox.h"
#include "tests/support/cuda_compare.h"

static void expect_rel(const char *what, double got, double want, double tol)
{
    double err = fabs(got - want) / fmax(fabs(want), 1e-30);
    cr_log_info("%s: relative error %.2e (limit %.0e)", what, err, tol);
    cr_expect(err < tol, "%s: got %.9g want %.9g", what, got, want);
}

/* ---- losses ------------------------------------------------------------------------------ */

static void mse_case(DType dt)
{
    cc_start();
    int64_t n = 100003;
    float *p = cc_values(n, -2, 2, 20, dt), *y = cc_values(n, -1, 1, 21, DT_F32); /* y stays F32: mixed */
    Tensor hp = tensor1(p, DT_F32, n), hy = tensor1(y, DT_F32, n);
    Tensor dp = cc_upload(hp, dt), dy = cc_upload(hy, DT_F32);
    /* both sum the same values in F64: tight for BF16 inputs too */
    expect_rel("mse_forward", op_mse_forward(&cc_gpu, dp, dy), op_mse_forward(&cc_cpu, hp, hy), CC_TOL_F32);
    float *g = cc_values(n, -1, 1, 22, dt);
    Tensor hg = tensor1(g, DT_F32, n), dg = cc_upload(hg, dt);
    op_mse_backward(&cc_cpu, hg, hp, hy, 0.7f);
    op_mse_backward(&cc_gpu, dg, dp, dy, 0.7f);
    cc_expect_close("mse_backward", dg, g, cc_tol(dt));
    cc_finish();
}

Test(cuda, mse_f32) { mse_case(DT_F32); }
Test(cuda, mse_bf16) { mse_case(DT_BF16); }

static void uncertainty_case(DType dt)
{
    cc_start();
    int64_t n = 3 * 32 * 32 * 5;
    float *g = cc_values(n, -2, 2, 30, dt), *eps = cc_values(n, -2, 2, 31, DT_F32), *u = cc_values(n, 0, 1, 32, dt);
    Tensor hg = tensor1(g, DT_F32, n), he = tensor1(eps, DT_F32, n), hu = tensor1(u, DT_F32, n);
    Tensor dg = cc_upload(hg, dt), de = cc_upload(he, DT_F32), du = cc_upload(hu, dt);
    UncertaintyLoss want = op_uncertainty_loss_forward(&cc_cpu, hg, he, hu);
    UncertaintyLoss got = op_uncertainty_loss_forward(&cc_gpu, dg, de, du);
    expect_rel("uncertainty lu", got.lu, want.lu, CC_TOL_F32);
    expect_rel("uncertainty lual", got.lual, want.lual, CC_TOL_F32);

    float *gg = cc_values(n, -1, 1, 33, dt), *gu = cc_values(n, -1, 1, 34, dt);
    Tensor hgg = tensor1(gg, DT_F32, n), hgu = tensor1(gu, DT_F32, n);
    Tensor dgg = cc_upload(hgg, dt), dgu = cc_upload(hgu, dt);
    op_uncertainty_loss_backward(&cc_cpu, hgg, hgu, hg, he, hu, 0.3f, 1.7f, 1.7f);
    op_uncertainty_loss_backward(&cc_gpu, dgg, dgu, dg, de, du, 0.3f, 1.7f, 1.7f);
    cc_expect_close("uncertainty dg", dgg, gg, cc_tol(dt));
    cc_expect_close("uncertainty du", dgu, gu, cc_tol(dt));
    op_uncertainty_loss_backward(&cc_cpu, tensor_none(), hgu, hg, he, hu, 0.3f, 1.7f, 0.0f); /* u detached */
    op_uncertainty_loss_backward(&cc_gpu, tensor_none(), dgu, dg, de, du, 0.3f, 1.7f, 0.0f);
    cc_expect_close("uncertainty du, dg absent", dgu, gu, cc_tol(dt));
    cc_finish();
}

Test(cuda, uncertainty_loss_f32) { uncertainty_case(DT_F32); }
Test(cuda, uncertainty_loss_bf16) { uncertainty_case(DT_BF16); }

Test(cuda, cross_entropy)
{
    cc_start();
    int64_t B = 37, K = 10;
    float *x = cc_values(B * K, -4, 4, 35, DT_F32), *g = cc_values(B * K, -1, 1, 36, DT_F32);
    int64_t labels[37];
    for (int64_t b = 0; b < B; b++) labels[b] = (b * 7) % K;
    Tensor hx = tensor2(x, DT_F32, B, K), hl = tensor1(labels, DT_I64, B), hg = tensor2(g, DT_F32, B, K);
    Tensor dx = cc_upload(hx, DT_F32), dl = cc_upload_raw(hl), dg = cc_upload(hg, DT_F32);
    expect_rel("cross_entropy_forward", op_cross_entropy_forward(&cc_gpu, dx, dl),
               op_cross_entropy_forward(&cc_cpu, hx, hl), CC_TOL_F32);
    op_cross_entropy_backward(&cc_cpu, hg, hx, hl, 1.3f);
    op_cross_entropy_backward(&cc_gpu, dg, dx, dl, 1.3f);
    cc_expect_close("cross_entropy_backward", dg, g, CC_TOL_F32);
    cc_finish();
}

/* the KL autoencoder's posterior: z = mean + exp(logvar / 2) eps and its KL, the KL summed per
   image in F64 and over images in the CPU's order (so within 1e-6 of the CPU's float); a few
   log-variances lie outside the clamp [-30, 20] */
static void gaussian_sample_case(DType dt)
{
    cc_start();
    int64_t B = 3, C = 4, h = 5, w = 6, n = C * h * w;
    float *mom = cc_values(B * 2 * n, -2, 2, 130, dt), *eps = cc_values(B * n, -2, 2, 131, dt);
    for (int64_t b = 0; b < B; b++) {
        float *logvar = mom + (b * 2 + 1) * n;
        logvar[b] = -40.0f, logvar[n - 1 - b] = 25.0f; /* exact in BF16 too */
    }
    float *z = cc_values(B * n, 0, 0, 0, DT_F32);
    Tensor hm = tensor4(mom, DT_F32, B, 2 * C, h, w), he = tensor4(eps, DT_F32, B, C, h, w);
    Tensor hz = tensor4(z, DT_F32, B, C, h, w);
    Tensor dm = cc_upload(hm, dt), de = cc_upload(he, dt), dz = cc_zeros(hz, dt);
    float want = op_gaussian_sample_forward(&cc_cpu, hz, hm, he);
    expect_rel("gaussian_sample KL", op_gaussian_sample_forward(&cc_gpu, dz, dm, de), want, 1e-6);
    cc_expect_close("gaussian_sample z", dz, z, cc_tol(dt));
    expect_rel("gaussian_sample KL without z", op_gaussian_sample_forward(&cc_gpu, tensor_none(), dm, de),
               want, 1e-6);

    /* backward through z and the KL, then the KL alone; dmoments starts nonzero */
    float *g = cc_values(B * n, -1, 1, 132, dt), *gm = cc_values(B * 2 * n, -1, 1, 133, dt);
    Tensor hg = tensor4(g, DT_F32, B, C, h, w), hgm = tensor4(gm, DT_F32, B, 2 * C, h, w);
    Tensor dg = cc_upload(hg, dt), dgm = cc_upload(hgm, dt);
    op_gaussian_sample_backward(&cc_cpu, hgm, hg, hm, he, 0.7f);
    op_gaussian_sample_backward(&cc_gpu, dgm, dg, dm, de, 0.7f);
    cc_expect_close("gaussian_sample dmoments", dgm, gm, cc_tol(dt));
    op_gaussian_sample_backward(&cc_cpu, hgm, tensor_none(), hm, he, 1.3f);
    op_gaussian_sample_backward(&cc_gpu, dgm, tensor_none(), dm, de, 1.3f);
    cc_expect_close("gaussian_sample dmoments, dz absent", dgm, gm, cc_tol(dt));
    cc_finish();
}

Test(cuda, gaussian_sample_f32) { gaussian_sample_case(DT_F32); }
Test(cuda, gaussian_sample_bf16) { gaussian_sample_case(DT_BF16); }

/* ---- optimizer ---------------------------------------------------------------------------- */

Test(cuda, adamw_ema_scale_match_the_cpu_bits)
{
    cc_start();
    int64_t n = 70001;
    float *w = cc_values(n, -1, 1, 40, DT_F32), *m = cc_values(n, -0.1f, 0.1f, 41, DT_F32);
    float *v = cc_values(n, 0, 0.01f, 42, DT_F32), *ema = cc_values(n, -1, 1, 43, DT_F32);
    Tensor hw = tensor1(w, DT_F32, n), hm = tensor1(m, DT_F32, n), hv = tensor1(v, DT_F32, n);
    Tensor he = tensor1(ema, DT_F32, n);
    Tensor dw = cc_upload(hw, DT_F32), dm = cc_upload(hm, DT_F32), dv = cc_upload(hv, DT_F32);
    Tensor de = cc_upload(he, DT_F32);
    for (int64_t step = 1; step <= 3; step++) {
        float *g = cc_values(n, -1, 1, 44 + (uint64_t)step, DT_F32);
        Tensor hg = tensor1(g, DT_F32, n), dg = cc_upload(hg, DT_F32);
        AdamWParams p = {2e-4, 0.9, 0.999, 1e-8, 0.03, step};
        op_adamw_step(&cc_cpu, hw, hg, hm, hv, p);
        op_adamw_step(&cc_gpu, dw, dg, dm, dv, p);
        op_ema_update(&cc_cpu, he, hw, 0.9999);
        op_ema_update(&cc_gpu, de, dw, 0.9999);
    }
    cc_expect_equal("adamw params", dw, w);
    cc_expect_equal("adamw m", dm, m);
    cc_expect_equal("adamw v", dv, v);
    cc_expect_equal("ema", de, ema);
    op_scale(&cc_cpu, hw, 0.37f);
    op_scale(&cc_gpu, dw, 0.37f);
    cc_expect_equal("scale", dw, w);
    cc_finish();
}

Test(cuda, sum_squares_and_nonfinite)
{
    cc_start();
    int64_t n = 1000003;
    float *x = cc_values(n, -3, 3, 50, DT_F32);
    Tensor hx = tensor1(x, DT_F32, n), dx = cc_upload(hx, DT_F32);
    expect_rel("sum_squares", op_sum_squares(&cc_gpu, dx), op_sum_squares(&cc_cpu, hx), 1e-12);
    cr_expect_eq(op_has_nonfinite(&cc_gpu, dx), 0);
    const int64_t at[3] = {0, n / 2, n - 1};
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        float keep = x[at[i]];
        x[at[i]] = bad[i];
        Tensor d = cc_upload(hx, DT_F32);
        cr_expect_eq(op_has_nonfinite(&cc_gpu, d), 1, "%g at %lld not found", bad[i], (long long)at[i]);
        x[at[i]] = keep;
    }
    cc_finish();
}

/* ---- sampler arithmetic ---------------------------------------------------------------------- */

/* images of n values with ids out of order: n not a multiple of 4, so an
   image's Philox calls start and end mid-call */
Test(cuda, sampler_ops_match_the_cpu_bits)
{
    cc_start();
    int64_t B = 4, n = 3 * 7 * 5;
    const int64_t ids[4] = {5, 0, 17, 123456789};
    const float a[4] = {0.5f, -1.25f, 3.0f, 0.1f}, b[4] = {1.5f, 0.75f, -2.0f, 0.9f};
    float *x = cc_values(B * n, -1, 1, 60, DT_F32), *y = cc_values(B * n, -1, 1, 61, DT_F32);
    float *z = cc_values(B * n, 0, 0, 0, DT_F32);
    Tensor hx = tensor2(x, DT_F32, B, n), hy = tensor2(y, DT_F32, B, n), hz = tensor2(z, DT_F32, B, n);
    Tensor dx = cc_upload(hx, DT_F32), dy = cc_upload(hy, DT_F32), dz = cc_zeros(hz, DT_F32);
    op_axpby(&cc_cpu, hz, a, hx, b, hy);
    op_axpby(&cc_gpu, dz, a, dx, b, dy);
    cc_expect_equal("axpby", dz, z);
    op_axpby(&cc_cpu, hx, a, hx, b, hy); /* out aliasing x */
    op_axpby(&cc_gpu, dx, a, dx, b, dy);
    cc_expect_equal("axpby in place", dx, x);

    op_randn(&cc_cpu, hz, ids, 42, RNG_SAMPLE_INIT, 0);
    op_randn(&cc_gpu, dz, ids, 42, RNG_SAMPLE_INIT, 0);
    cc_expect_equal("randn", dz, z);
    op_add_randn(&cc_cpu, hz, b, ids, 7, RNG_SAMPLE_STEP, 31);
    op_add_randn(&cc_gpu, dz, b, ids, 7, RNG_SAMPLE_STEP, 31);
    cc_expect_equal("add_randn", dz, z);

    /* a CIFAR-sized batch: many calls per image */
    int64_t B2 = 3, n2 = 3 * 32 * 32;
    const int64_t ids2[3] = {2, 1, 0};
    float *w = cc_values(B2 * n2, 0, 0, 0, DT_F32);
    Tensor hw = tensor2(w, DT_F32, B2, n2), dw = cc_zeros(hw, DT_F32);
    op_randn(&cc_cpu, hw, ids2, 1234567, RNG_NOISE_TRAIN_EPS, 99);
    op_randn(&cc_gpu, dw, ids2, 1234567, RNG_NOISE_TRAIN_EPS, 99);
    cc_expect_equal("randn 3x3x32x32", dw, w);
    cc_finish();
}
