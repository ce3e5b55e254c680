/*
 * sampler_run.c: the machinery every sampler shares (evaluation counting,
 * per-image coefficients, Philox noise), the dispatch on the sampler kind,
 * and sample_run, which takes n images through a sampler batch by batch.
 */
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/phase.h"
#include "../kernels/philox.h"
#include "sampler_internal.h"

/* ---- one batch through one sampler ------------------------------------------------------ */

int sampler_run_begin(SamplerRun *r, Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg,
                      Tensor x, Conditioning cond, const int64_t *ids, int nbuf)
{
    memset(r, 0, sizeof *r);
    if (sampler_config_check(cfg) != 0) return -1;
    CHECK(x.ndim >= 2 && x.dtype == DT_F32, "sampler: x must be an F32 [B, ...] tensor");
    CHECK(ids != NULL, "sampler: ids must not be NULL");
    CHECK(nbuf <= SAMPLER_MAX_BUFFERS, "sampler: %d buffers", nbuf);
    int B = (int)x.shape[0];
    if (B < 1 || B > p->max_batch)
        return err_set("sampler: batch: %d images, the predictor takes 1..%d", B, p->max_batch);
    CHECK(!tensor_present(cond.y) || tensor_numel(cond.y) == B, "sampler: y must be [B]");
    CHECK(!tensor_present(cond.context) || cond.context.shape[0] == B, "sampler: context must be [B, L, Dc]");
    r->ctx = ctx;
    r->pred = p;
    r->cfg = cfg;
    r->cond = cond;
    r->ids = ids;
    r->B = B;
    r->sched = malloc(sizeof *r->sched);
    r->t = malloc((size_t)B * sizeof *r->t);
    r->ca = malloc((size_t)B * sizeof *r->ca);
    r->cb = malloc((size_t)B * sizeof *r->cb);
    CHECK(r->sched && r->t && r->ca && r->cb, "sampler: out of host memory");
    sampler_schedule_init(r->sched, cfg->schedule);
    r->nbuf = nbuf;
    for (int i = 0; i < nbuf; i++) {
        r->buf[i] = x;
        r->buf[i].data = ctx_alloc(ctx, tensor_bytes(x));
    }
    return 0;
}

void sampler_run_end(SamplerRun *r)
{
    for (int i = 0; i < r->nbuf; i++) ctx_free(r->ctx, r->buf[i].data);
    free(r->sched);
    free(r->t);
    free(r->ca);
    free(r->cb);
    memset(r, 0, sizeof *r);
}

int sampler_predict(SamplerRun *r, Tensor x, double t, Tensor eps)
{
    for (int i = 0; i < r->B; i++) r->t[i] = t;
    phase_begin(r->ctx, PHASE_SAMPLE_STEP, r->eval);
    int rc = r->pred->predict(r->pred, r->ctx, x, r->t, r->cond, r->ids, r->eval, eps);
    phase_end(r->ctx, PHASE_SAMPLE_STEP);
    r->eval++;
    return rc;
}

static void fill(float *dst, int n, double v)
{
    for (int i = 0; i < n; i++) dst[i] = (float)v;
}

void sampler_axpby(SamplerRun *r, Tensor out, double a, Tensor x, double b, Tensor y)
{
    fill(r->ca, r->B, a);
    fill(r->cb, r->B, b);
    op_axpby(r->ctx, out, r->ca, x, r->cb, y);
}

void sampler_axpbycz(SamplerRun *r, Tensor out, double a, Tensor x, double b, Tensor y,
                     double c, Tensor w)
{
    CHECK(out.data != w.data, "sampler_axpbycz: out aliases w");
    sampler_axpby(r, out, a, x, b, y);
    sampler_axpby(r, out, 1.0, out, c, w);
}

void sampler_add_noise(SamplerRun *r, Tensor x, double c, uint32_t step)
{
    fill(r->ca, r->B, c);
    op_add_randn(r->ctx, x, r->ca, r->ids, r->cfg->seed, RNG_SAMPLE_STEP, step);
}

double sampler_linspace_at(double start, double stop, int num, int i)
{
    if (num == 1) return start;
    if (i == num - 1) return stop;
    return start + i * ((stop - start) / (num - 1));
}

/* ---- public entry points ------------------------------------------------------------------ */

int sample_batch(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, Tensor x, Conditioning cond,
                 const int64_t *ids)
{
    switch (cfg->kind) {
    case SAMPLER_EM: return sample_em(ctx, p, cfg, x, cond, ids);
    case SAMPLER_DPM:
    case SAMPLER_DPMPP: return sample_dpm(ctx, p, cfg, x, cond, ids);
    case SAMPLER_DDIM: return sample_ddim(ctx, p, cfg, x, cond, ids);
    }
    return err_set("sampler: kind: %d is unknown", (int)cfg->kind);
}

void sample_init_noise(Ctx *ctx, Tensor x, uint64_t seed, const int64_t *ids)
{
    op_randn(ctx, x, ids, seed, RNG_SAMPLE_INIT, 0);
}

int sample_run_cond(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, int C, int H, int W,
                    int64_t n, const int64_t *ids, const SampleCond *cond, float *out)
{
    if (sampler_config_check(cfg) != 0) return -1;
    if (n < 0) return err_set("sampler: n: %lld images", (long long)n);
    int64_t chw = (int64_t)C * H * W, bmax = p->max_batch;
    CHECK(chw > 0 && bmax > 0, "sample_run: image %dx%dx%d, max batch %lld", C, H, W,
          (long long)bmax);
    const int64_t *labels = cond ? cond->labels : NULL;
    const float *contexts = cond ? cond->context : NULL;
    int64_t ctx_numel = contexts ? (int64_t)cond->context_len * cond->context_dim : 0;
    CHECK(!contexts || ctx_numel > 0, "sample_run: contexts of %d x %d", cond ? cond->context_len : 0,
          cond ? cond->context_dim : 0);
    float *xbuf = ctx_alloc(ctx, (size_t)(bmax * chw) * sizeof(float));
    int64_t *ybuf = labels ? ctx_alloc(ctx, (size_t)bmax * sizeof(int64_t)) : NULL;
    float *cbuf = contexts ? ctx_alloc(ctx, (size_t)(bmax * ctx_numel) * sizeof(float)) : NULL;
    int rc = 0;
    for (int64_t first = 0; first < n && rc == 0; first += bmax) {
        int64_t b = n - first < bmax ? n - first : bmax;
        Tensor x = tensor4(xbuf, DT_F32, b, C, H, W);   // x is (b, C, H, W)
        Conditioning c = cond_none();
        if (labels) {
            c.y = tensor1(ybuf, DT_I64, b);             // y is (b)
            ctx_upload(ctx, ybuf, labels + first, (size_t)b * sizeof(int64_t));
        }
        if (contexts) {
            c.context = tensor3(cbuf, DT_F32, b, cond->context_len, cond->context_dim);  // (b, L, Dc)
            ctx_upload(ctx, cbuf, contexts + first * ctx_numel, (size_t)(b * ctx_numel) * sizeof(float));
        }
        sample_init_noise(ctx, x, cfg->seed, ids + first);
        rc = sample_batch(ctx, p, cfg, x, c, ids + first);
        if (rc == 0) ctx_download(ctx, out + first * chw, xbuf, (size_t)(b * chw) * sizeof(float));
    }
    ctx_free(ctx, xbuf);
    if (ybuf) ctx_free(ctx, ybuf);
    if (cbuf) ctx_free(ctx, cbuf);
    return rc;
}

int sample_run(Ctx *ctx, NoisePredictor *p, const SamplerConfig *cfg, int C, int H, int W,
               int64_t n, const int64_t *ids, const int64_t *labels, float *out)
{
    SampleCond cond = {.labels = labels};
    return sample_run_cond(ctx, p, cfg, C, H, W, n, ids, &cond, out);
}

void sample_labels(uint64_t seed, const int64_t *ids, int64_t n, int num_classes, int64_t *labels)
{
    CHECK(num_classes >= 1, "sample_labels: %d classes", num_classes);
    for (int64_t i = 0; i < n; i++)
        labels[i] = (int64_t)philox_below(seed, RNG_SAMPLE_LABEL, 0, (uint64_t)ids[i],
                                          (uint64_t)num_classes);
}
