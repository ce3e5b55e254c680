/*
 * bench_ours.c: our U-ViT's images/s on a context (bench_ours.h).
 */
#include <stdlib.h>

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
    UViTActs *acts = uvit_acts_create(ctx, m, B, training);
    Optimizer opt;
    if (training) {
        uvit_enable_grads(m, ctx);
        OptimConfig oc = optim_config_uvit(1);
        oc.lr = 1e-12;
        oc.warmup_steps = 0;
        optim_create(&opt, ctx, &oc, m->weights, m->total);
    }
    double *fwd = xmalloc((size_t)iters * sizeof(double)), *fb = xmalloc((size_t)iters * sizeof(double));
    double *train = xmalloc((size_t)iters * sizeof(double));
    for (int it = 0; it < warmup + iters; it++) {
        ctx_sync(ctx);
        double t0 = bench_now();
        uvit_forward(ctx, m, acts, tx, tensor1(t, DT_F32, B), cond_none(), to);
        ctx_sync(ctx);
        double t1 = bench_now(), t2 = t1, t3 = t1;
        if (training) {
            uvit_zero_grads(m, ctx);
            uvit_backward(ctx, m, acts, td);
            ctx_sync(ctx);
            t2 = bench_now();
            CHECK(optim_step(ctx, &opt, m) == 0, "bench: %s", err_msg());
            ctx_sync(ctx);
            t3 = bench_now();
        }
        if (it >= warmup) {
            int k = it - warmup;
            fwd[k] = t1 - t0, fb[k] = t2 - t0, train[k] = t3 - t0;
        }
    }
    UViTMacs macs;
    uvit_macs(c, &macs);
    r->fwd_ips = B / bench_median(fwd, iters);
    r->fwdbwd_ips = training ? B / bench_median(fb, iters) : 0;
    r->train_ips = training ? B / bench_median(train, iters) : 0;
    r->gflop_fwd = 2 * macs.total / 1e9;
    if (training) optim_destroy(&opt, ctx);
    uvit_acts_destroy(ctx, acts);
    ctx_free(ctx, x), ctx_free(ctx, t), ctx_free(ctx, out);
    if (dout) ctx_free(ctx, dout);
    free(host), free(ht), free(fwd), free(fb), free(train);
}
