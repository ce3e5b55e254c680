/*
 * test_ops_proxy.c: the op added for the FD-FMNIST feature network
 * ("ops_proxy" suite): softmax cross-entropy, forward against a
 * double-precision loop written here, backward against finite differences
 * of the forward, and the backward's accumulation (+=).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/ops.h"
#include "tests/support/gradcheck.h"

#define B 5
#define K 7

typedef struct {
    Ctx *ctx;
    float logits[B * K];
    int64_t labels[B];
    float loss;  /* the forward's output, rewritten by the gradcheck */
} XentRun;

static void xent_forward(void *user)
{
    XentRun *r = user;
    r->loss = op_cross_entropy_forward(r->ctx, tensor2(r->logits, DT_F32, B, K), tensor1(r->labels, DT_I64, B));
}

static void xent_setup(XentRun *r, Ctx *ctx)
{
    r->ctx = ctx;
    fill_uniform(r->logits, B * K, -4, 4, 11);
    for (int b = 0; b < B; b++) r->labels[b] = (b * 3) % K;
    r->logits[K + 2] = 60.0f;  // a large logit: logsumexp must not overflow
}

Test(ops_proxy, cross_entropy_forward_matches_double)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    XentRun r;
    xent_setup(&r, &ctx);
    xent_forward(&r);
    double want = 0;
    for (int b = 0; b < B; b++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < K; k++) m = fmax(m, r.logits[b * K + k]);
        for (int k = 0; k < K; k++) s += exp(r.logits[b * K + k] - m);
        want += m + log(s) - r.logits[b * K + r.labels[b]];
    }
    want /= B;
    cr_assert(isfinite(r.loss));
    cr_assert(fabs(r.loss - want) <= 1e-6 * (1 + fabs(want)), "loss %.9g, want %.9g", r.loss, want);
    ctx_destroy(&ctx);
}

Test(ops_proxy, cross_entropy_backward_matches_finite_differences)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    XentRun r;
    xent_setup(&r, &ctx);
    const float dloss = 1.7f;
    float grad[B * K] = {0};
    xent_forward(&r);
    op_cross_entropy_backward(&ctx, tensor2(grad, DT_F32, B, K), tensor2(r.logits, DT_F32, B, K),
                              tensor1(r.labels, DT_I64, B), dloss);
    GradCheck g = {&r.loss, 1, &dloss, xent_forward, &r};
    double err = gradcheck_max_error(&g, r.logits, B * K, grad, 1e-2f, B * K);
    cr_assert(err < 2e-3, "dlogits: max error %g", err);
    // each row's gradient sums to zero (softmax minus one-hot)
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += grad[b * K + k];
        cr_assert(fabs(s) < 1e-6, "row %d sums to %g", b, s);
    }
    ctx_destroy(&ctx);
}

Test(ops_proxy, cross_entropy_backward_accumulates)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    XentRun r;
    xent_setup(&r, &ctx);
    float fresh[B * K] = {0}, after[B * K];
    fill_uniform(after, B * K, -1, 1, 5);
    float pre[B * K];
    for (int i = 0; i < B * K; i++) pre[i] = after[i];
    Tensor lg = tensor2(r.logits, DT_F32, B, K), lb = tensor1(r.labels, DT_I64, B);
    op_cross_entropy_backward(&ctx, tensor2(fresh, DT_F32, B, K), lg, lb, 1.0f);
    op_cross_entropy_backward(&ctx, tensor2(after, DT_F32, B, K), lg, lb, 1.0f);
    for (int i = 0; i < B * K; i++)
        cr_assert(fabs(after[i] - (pre[i] + fresh[i])) <= 1e-6, "[%d]: %g, want %g + %g", i, after[i], pre[i],
                  fresh[i]);
    ctx_destroy(&ctx);
}
