/*
 * vpsde_train.c: U-ViT's noise-prediction loss on a batch (vpsde_train.h).
 * Scalars per image (t, the marginal coefficients) are host doubles; the
 * tensors (eps, x_t, the loss) go through ops.
 */
#include "vpsde_train.h"

#include <math.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"

static int64_t per_image(const TrainNoise *tn)
{
    return (int64_t)tn->channels * tn->height * tn->width;
}

void train_noise_create(TrainNoise *tn, Ctx *ctx, TrainNoiseKind kind, int max_batch,
                        int channels, int height, int width)
{
    CHECK(max_batch >= 1 && channels >= 1 && height >= 1 && width >= 1,
          "train_noise_create: batch %d, image %dx%dx%d", max_batch, channels, height, width);
    memset(tn, 0, sizeof *tn);
    tn->kind = kind;
    tn->sde = vpsde_default();
    if (kind == TRAIN_NOISE_DISCRETE) discrete_schedule_sd(&tn->disc);
    tn->max_batch = max_batch;
    tn->channels = channels;
    tn->height = height;
    tn->width = width;
    size_t B = (size_t)max_batch, img = (size_t)max_batch * (size_t)per_image(tn) * sizeof(float);
    tn->t = xcalloc(B, sizeof *tn->t);
    tn->a = xcalloc(B, sizeof *tn->a);
    tn->s = xcalloc(B, sizeof *tn->s);
    tn->net_t_host = xcalloc(B, sizeof *tn->net_t_host);
    tn->ids = xcalloc(B, sizeof *tn->ids);
    tn->y_host = xcalloc(B, sizeof *tn->y_host);
    for (int b = 0; b < max_batch; b++) tn->ids[b] = b;
    tn->eps = ctx_alloc(ctx, img);
    tn->x_t = ctx_alloc(ctx, img);
    tn->pred = ctx_alloc(ctx, img);
    tn->dpred = ctx_alloc(ctx, img);
    tn->net_t = ctx_alloc(ctx, B * sizeof(float));
    tn->y = ctx_alloc(ctx, B * sizeof(int64_t));
}

void train_noise_destroy(TrainNoise *tn, Ctx *ctx)
{
    free(tn->t); free(tn->a); free(tn->s); free(tn->net_t_host); free(tn->ids); free(tn->y_host);
    ctx_free(ctx, tn->eps);
    ctx_free(ctx, tn->x_t);
    ctx_free(ctx, tn->pred);
    ctx_free(ctx, tn->dpred);
    ctx_free(ctx, tn->net_t);
    ctx_free(ctx, tn->y);
    if (tn->context) ctx_free(ctx, tn->context);
    free(tn->context_host);
    memset(tn, 0, sizeof *tn);
}

static Tensor images(const TrainNoise *tn, float *data)
{
    return tensor4(data, DT_F32, tn->batch, tn->channels, tn->height, tn->width);
}
Tensor train_noise_eps(const TrainNoise *tn) { return images(tn, tn->eps); }
Tensor train_noise_x_t(const TrainNoise *tn) { return images(tn, tn->x_t); }
Tensor train_noise_dpred(const TrainNoise *tn) { return images(tn, tn->dpred); }
Tensor train_noise_net_t(const TrainNoise *tn) { return tensor1(tn->net_t, DT_F32, tn->batch); }
Tensor train_noise_y(const TrainNoise *tn) { return tensor1(tn->y, DT_I64, tn->batch); }

/* image b at time t (continuous t, or discrete n held as a double): the
   network's time input and the marginal's coefficients */
static void set_time(TrainNoise *tn, int b, double t)
{
    double cum_alpha, cum_beta;
    tn->t[b] = t;
    if (tn->kind == TRAIN_NOISE_DISCRETE) {
        int n = (int)t;
        tn->net_t_host[b] = (float)n;
        cum_alpha = tn->disc.cum_alphas[n];
        cum_beta = tn->disc.cum_betas[n];
    } else {
        tn->net_t_host[b] = (float)(t * VPSDE_T_SCALE);
        cum_alpha = vpsde_cum_alpha(&tn->sde, t);
        cum_beta = vpsde_cum_beta(&tn->sde, t);
    }
    tn->a[b] = (float)sqrt(cum_alpha);
    tn->s[b] = (float)sqrt(cum_beta);
}

/* the batch x0[B,C,H,W] fits the buffers; sets tn->batch */
static int check_batch(TrainNoise *tn, Tensor x0, const char *who)
{
    CHECK(x0.ndim == 4 && x0.shape[0] >= 1 && x0.shape[0] <= tn->max_batch &&
          x0.shape[1] == tn->channels && x0.shape[2] == tn->height && x0.shape[3] == tn->width,
          "%s: x0 %s does not fit [<=%d, %d, %d, %d]", who,
          tensor_shape_str(x0, (char[96]){0}, 96), tn->max_batch, tn->channels, tn->height,
          tn->width);
    tn->batch = (int)x0.shape[0];
    return tn->batch;
}

/* eps of (seed, step) and x_t = a x0 + s eps, once every image's time is set */
static void form_x_t(Ctx *ctx, TrainNoise *tn, Tensor x0, uint64_t seed, uint32_t step)
{
    Tensor eps = train_noise_eps(tn), x_t = train_noise_x_t(tn);
    op_randn(ctx, eps, tn->ids, seed, RNG_NOISE_TRAIN_EPS, step);
    op_axpby(ctx, x_t, tn->a, x0, tn->s, eps);
    ctx_upload(ctx, tn->net_t, tn->net_t_host, (size_t)tn->batch * sizeof(float));
}

void train_noise_draw(Ctx *ctx, TrainNoise *tn, Tensor x0, uint64_t seed, uint32_t step)
{
    int B = check_batch(tn, x0, "train_noise_draw");   // x0 is (B, C, H, W)
    for (int b = 0; b < B; b++) {
        if (tn->kind == TRAIN_NOISE_DISCRETE)
            // Schedule.sample: n uniform in {1..N}, the network sees n
            set_time(tn, b, 1 + (int)philox_below(seed, RNG_NOISE_TRAIN_T, step, (uint64_t)b,
                                                  (uint64_t)tn->disc.N));
        else
            // VPSDE.sample: t uniform, the network sees t * 999
            set_time(tn, b, philox_uniform_at(seed, RNG_NOISE_TRAIN_T, step, (uint64_t)b));
    }
    form_x_t(ctx, tn, x0, seed, step);
}

void train_noise_draw_at(Ctx *ctx, TrainNoise *tn, Tensor x0, double t, uint64_t seed, uint32_t step)
{
    int B = check_batch(tn, x0, "train_noise_draw_at");   // x0 is (B, C, H, W)
    if (tn->kind == TRAIN_NOISE_DISCRETE)
        CHECK(t == floor(t) && t >= 1 && t <= tn->disc.N, "train_noise_draw_at: n = %g is not in 1..%d", t,
              tn->disc.N);
    else
        CHECK(t > 0 && t <= 1, "train_noise_draw_at: t = %g is not in (0, 1]", t);
    for (int b = 0; b < B; b++) set_time(tn, b, t);
    form_x_t(ctx, tn, x0, seed, step);
}

void train_noise_labels(Ctx *ctx, TrainNoise *tn, const int64_t *labels, double p_uncond,
                        int64_t null_class, uint64_t seed, uint32_t step)
{
    CHECK(labels != NULL && tn->batch >= 1, "train_noise_labels: no labels or no draw yet");
    for (int b = 0; b < tn->batch; b++) {
        int drop = p_uncond > 0 && philox_uniform_at(seed, RNG_LABEL_DROP, step, (uint64_t)b) < p_uncond;
        tn->y_host[b] = drop ? null_class : labels[b];
    }
    ctx_upload(ctx, tn->y, tn->y_host, (size_t)tn->batch * sizeof(int64_t));
}

void train_noise_enable_context(TrainNoise *tn, Ctx *ctx, int len, int dim)
{
    CHECK(len > 0 && dim > 0 && !tn->context, "train_noise_enable_context: bad shape or enabled twice");
    tn->ctx_len = len, tn->ctx_dim = dim;
    size_t n = (size_t)tn->max_batch * len * dim;
    tn->context = ctx_alloc(ctx, n * sizeof(float));
    tn->context_host = xmalloc(n * sizeof(float));
}

void train_noise_context(Ctx *ctx, TrainNoise *tn, const float *prompts, const float *empty, double p_uncond,
                         uint64_t seed, uint32_t step)
{
    CHECK(tn->context && tn->batch >= 1, "train_noise_context: contexts not enabled or no draw yet");
    CHECK(empty || p_uncond == 0, "train_noise_context: dropout without an empty context");
    size_t per = (size_t)tn->ctx_len * tn->ctx_dim;
    for (int b = 0; b < tn->batch; b++) {
        int drop = p_uncond > 0 && philox_uniform_at(seed, RNG_LABEL_DROP, step, (uint64_t)b) < p_uncond;
        memcpy(tn->context_host + b * per, drop ? empty : prompts + b * per, per * sizeof(float));
    }
    ctx_upload(ctx, tn->context, tn->context_host, (size_t)tn->batch * per * sizeof(float));
}

Conditioning train_noise_cond(const TrainNoise *tn, int conditional)
{
    if (tn->context) return cond_context(tensor3(tn->context, DT_F32, tn->batch, tn->ctx_len, tn->ctx_dim));
    return cond_labels(conditional ? train_noise_y(tn) : tensor_none());
}

float train_noise_loss(Ctx *ctx, TrainNoise *tn, Tensor pred)
{
    Tensor eps = train_noise_eps(tn), dpred = train_noise_dpred(tn);
    float loss = op_mse_forward(ctx, pred, eps);
    ctx_zero(ctx, dpred);
    op_mse_backward(ctx, dpred, pred, eps, 1.0f);
    return loss;
}

float train_noise_uvit_loss(Ctx *ctx, TrainNoise *tn, const UViT *m, UViTActs *acts,
                            int conditional)
{
    Tensor pred = images(tn, tn->pred);
    uvit_forward(ctx, m, acts, train_noise_x_t(tn), train_noise_net_t(tn), train_noise_cond(tn, conditional), pred);
    return train_noise_loss(ctx, tn, pred);
}
