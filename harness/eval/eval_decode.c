/*
 * eval_decode.c: decoding latent samples for eval (see eval_decode.h).
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../cli/progress.h"
#include "eval_decode.h"

int eval_decoder_open(Ctx *ctx, const char *path, const UViTConfig *model, EvalDecoder *d)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    if (file_sha256(path, d->sha256) || autoencoder_load(&d->m, ctx, path)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err_msg());
        return err_set("--autoencoder: %s", why);
    }
    const AutoencoderConfig *c = &d->m.cfg;
    if (c->embed_dim != model->in_chans) {
        err_set("--autoencoder: %s: config: embed_dim %d, but the model samples %d-channel latents", path,
                c->embed_dim, model->in_chans);
        eval_decoder_close(ctx, d);
        return -1;
    }
    d->channels = c->out_ch;
    d->side = model->img_size * autoencoder_factor(c);
    return 0;
}

void eval_decoder_close(Ctx *ctx, EvalDecoder *d)
{
    if (d->m.weights) autoencoder_destroy(&d->m, ctx);
    d->m.weights = NULL;
}

double eval_decoder_run(Ctx *ctx, EvalDecoder *d, const float *latents, int64_t n, int batch, float *images)
{
    int64_t f = autoencoder_factor(&d->m.cfg), h = d->side / f;
    int64_t zc = d->m.cfg.embed_dim, per_z = zc * h * h, per_x = (int64_t)d->channels * d->side * d->side;
    int chunk = n < batch ? (int)n : batch;
    AutoencoderActs *acts = autoencoder_acts_create(ctx, &d->m, AE_DECODER, chunk, d->side, d->side, 0);
    float *z = ctx_alloc(ctx, (size_t)(chunk * per_z) * sizeof(float));      // [chunk, zc, h, h]
    float *x = ctx_alloc(ctx, (size_t)(chunk * per_x) * sizeof(float));      // [chunk, C, side, side]
    double t0 = progress_now();
    for (int64_t at = 0; at < n; at += chunk) {
        int64_t k = n - at < chunk ? n - at : chunk;
        ctx_upload(ctx, z, latents + at * per_z, (size_t)(k * per_z) * sizeof(float));
        autoencoder_decode(ctx, &d->m, acts, tensor4(z, DT_F32, k, zc, h, h),
                           tensor4(x, DT_F32, k, d->channels, d->side, d->side));
        ctx_download(ctx, images + at * per_x, x, (size_t)(k * per_x) * sizeof(float));
    }
    ctx_sync(ctx);
    double seconds = progress_now() - t0;
    ctx_free(ctx, z);
    ctx_free(ctx, x);
    autoencoder_acts_destroy(ctx, acts);
    return seconds;
}
