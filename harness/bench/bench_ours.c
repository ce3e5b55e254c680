/*
 * bench_ours.c: our U-ViT's images/s on a context (bench_ours.h).
 */
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/optim.h"
#include "bench_ours.h"
#include "bench_util.h"

/* n floats of backend memory holding host[n] */
static float *backend_copy(Ctx *ctx, const float *host, int64_t n)
{
    float *d = ctx_alloc(ctx, (size_t)n * sizeof(float));
    ctx_upload(ctx, d, host, (size_t)n * sizeof(float));
    return d;
}

/* the median seconds of one forward of the B images x on an inference
   arena: the network evaluation a sampler makes (model/denoiser.c) */
static double time_forward(Ctx *ctx, const UViT *m, Tensor x, Tensor t, Tensor out, int warmup, int iters)
{
    UViTActs *acts = uvit_acts_create(ctx, m, (int)x.shape[0], 0);
    double *dt = xmalloc((size_t)iters * sizeof(double));
    for (int it = 0; it < warmup + iters; it++) {
        ctx_sync(ctx);
        double t0 = bench_now();
        uvit_forward(ctx, m, acts, x, t, cond_none(), out);
        ctx_sync(ctx);
        if (it >= warmup) dt[it - warmup] = bench_now() - t0;
    }
    double med = bench_median(dt, iters);
    uvit_acts_destroy(ctx, acts);
    free(dt);
    return med;
}

/* the median seconds of the training step's parts on the B images x: the
   forward and backward (from dout) on a training arena, then the update */
static void time_training(Ctx *ctx, UViT *m, Tensor x, Tensor t, Tensor out, Tensor dout, int warmup,
                          int iters, double *fwdbwd_s, double *train_s)
{
    UViTActs *acts = uvit_acts_create(ctx, m, (int)x.shape[0], 1);
    uvit_enable_grads(m, ctx);
    OptimConfig oc = optim_config_uvit(1);
    oc.lr = 1e-12;
    oc.warmup_steps = 0;
    Optimizer opt;
    optim_create(&opt, ctx, &oc, m->weights, m->total);
    double *fb = xmalloc((size_t)iters * sizeof(double)), *train = xmalloc((size_t)iters * sizeof(double));
    for (int it = 0; it < warmup + iters; it++) {
        ctx_sync(ctx);
        double t0 = bench_now();
        uvit_forward(ctx, m, acts, x, t, cond_none(), out);
        uvit_zero_grads(m, ctx);
        uvit_backward(ctx, m, acts, dout);
        ctx_sync(ctx);
        double t1 = bench_now();
        CHECK(optim_step(ctx, &opt, m) == 0, "bench: %s", err_msg());
        ctx_sync(ctx);
        if (it >= warmup) fb[it - warmup] = t1 - t0, train[it - warmup] = bench_now() - t0;
    }
    *fwdbwd_s = bench_median(fb, iters);
    *train_s = bench_median(train, iters);
    optim_destroy(&opt, ctx);
    uvit_acts_destroy(ctx, acts);
    free(fb), free(train);
}

void bench_ours(Ctx *ctx, UViT *m, int batch, int warmup, int iters, int training, OurTimes *r)
{
    const UViTConfig *c = &m->cfg;
    int B = batch;
    int64_t n = (int64_t)B * c->in_chans * c->img_size * c->img_size;
    float *host = xmalloc((size_t)n * sizeof(float)), *ht = xmalloc((size_t)B * sizeof(float));
    for (int i = 0; i < B; i++) ht[i] = 999.0f * (i + 0.5f) / B;
    philox_fill_normal(host, n, 2, RNG_TEST, 0, 0);
    float *x = backend_copy(ctx, host, n), *t = backend_copy(ctx, ht, B);
    philox_fill_normal(host, n, 2, RNG_TEST, 1, 0);
    float *dout = training ? backend_copy(ctx, host, n) : NULL;
    float *out = ctx_alloc(ctx, (size_t)n * sizeof(float));
    // x, out, dout are (B, C, H, W) F32; t is (B,)
    Tensor tx = tensor4(x, DT_F32, B, c->in_chans, c->img_size, c->img_size);
    Tensor to = tensor4(out, DT_F32, B, c->in_chans, c->img_size, c->img_size);
    Tensor td = tensor4(dout, DT_F32, B, c->in_chans, c->img_size, c->img_size);
    UViTMacs macs;
    uvit_macs(c, &macs);
    memset(r, 0, sizeof *r);
    r->gflop_fwd = 2 * macs.total / 1e9;
    r->fwd_ips = B / time_forward(ctx, m, tx, tensor1(t, DT_F32, B), to, warmup, iters);
    if (training) {
        double fb, train;
        time_training(ctx, m, tx, tensor1(t, DT_F32, B), to, td, warmup, iters, &fb, &train);
        r->fwdbwd_ips = B / fb;
        r->train_ips = B / train;
    }
    ctx_free(ctx, x), ctx_free(ctx, t), ctx_free(ctx, out);
    if (dout) ctx_free(ctx, dout);
    free(host), free(ht);
}
