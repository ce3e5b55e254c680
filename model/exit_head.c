/*
 * exit_head.c: exit heads and the timestep-aware UEM of exit_head.h,
 * forward and backward over the op interface.
 */
#include <math.h>

#include "../kernels/errors.h"
#include "exit_head.h"

ExitDims exit_dims(const UViTConfig *c)
{
    ExitDims d;
    d.N = uvit_num_patches(c);
    d.D = c->embed_dim;
    d.C = c->in_chans;
    d.P = (int64_t)c->patch_size * c->patch_size * c->in_chans;
    d.H = c->img_size;
    d.T = uvit_num_tokens(c);
    d.extras = uvit_num_extras(c);
    return d;
}

void exit_acts_alloc(Ctx *ctx, ExitActs *e, const UViTConfig *c, int B)
{
    ExitDims d = exit_dims(c);
    size_t f = sizeof(float), rows = (size_t)B;
    e->hs = ctx_alloc(ctx, rows * d.N * d.D * f);
    e->ln = ctx_alloc(ctx, rows * d.N * d.D * f);
    e->mean = ctx_alloc(ctx, rows * d.N * f);
    e->rstd = ctx_alloc(ctx, rows * d.N * f);
    e->dec = ctx_alloc(ctx, rows * d.N * d.P * f);
    e->img = ctx_alloc(ctx, rows * d.C * d.H * d.H * f);
    e->z = ctx_alloc(ctx, rows * d.N * d.P * f);
    e->utok = ctx_alloc(ctx, rows * d.N * d.P * f);
    e->tbias = ctx_alloc(ctx, rows * d.P * f);
}

ExitActs exit_acts_rows(const ExitActs *e, const UViTConfig *c, int r0)
{
    ExitDims d = exit_dims(c);
    size_t r = (size_t)r0;
    return (ExitActs){.hs = e->hs + r * d.N * d.D, .ln = e->ln + r * d.N * d.D, .mean = e->mean + r * d.N,
                      .rstd = e->rstd + r * d.N, .dec = e->dec + r * d.N * d.P,
                      .img = e->img + r * d.C * d.H * d.H, .z = e->z + r * d.N * d.P,
                      .utok = e->utok + r * d.N * d.P, .tbias = e->tbias + r * d.P};
}

void exit_acts_free(Ctx *ctx, ExitActs *e)
{
    float *all[] = {e->hs, e->ln, e->mean, e->rstd, e->dec, e->img, e->z, e->utok, e->tbias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) ctx_free(ctx, all[i]);
}

int uem_bucket(double t, int K)
{
    int k = (int)floor(t * K);
    return k < 0 ? 0 : k >= K ? K - 1 : k;
}

/* bucket k's [rows, cols] slice of a [K, rows, cols] parameter */
static Tensor bucket_of(Tensor w, int k, int64_t rows, int64_t cols)
{
    return tensor2((float *)w.data + (size_t)k * rows * cols, DT_F32, rows, cols);
}
static Tensor bucket_bias(Tensor b, int k, int64_t n)
{
    return tensor1((float *)b.data + (size_t)k * n, DT_F32, n);
}

/* ---- forward ------------------------------------------------------------------------- */

void exit_head_norm(Ctx *ctx, const UViTConfig *c, const ExitHead *h, ExitActs *e, Tensor hidden)
{
    ExitDims d = exit_dims(c);
    int64_t B = hidden.shape[0];
    Tensor hs = tensor3(e->hs, DT_F32, B, d.N, d.D), ln = tensor3(e->ln, DT_F32, B, d.N, d.D);
    op_token_slice_forward(ctx, hs, hidden, (int)d.extras);
    op_layernorm_forward(ctx, ln, tensor1(e->mean, DT_F32, B * d.N), tensor1(e->rstd, DT_F32, B * d.N), hs,
                         h->norm_w, h->norm_b, 1e-5f);
}

void exit_head_decode(Ctx *ctx, const UViTConfig *c, const ExitHead *h, ExitActs *e, const float *ln,
                      int B, Tensor out)
{
    ExitDims d = exit_dims(c);
    Tensor dec = tensor3(e->dec, DT_F32, B, d.N, d.P);
    op_linear_forward(ctx, dec, tensor3((void *)ln, DT_F32, B, d.N, d.D), h->dec_w, h->dec_b);
    if (c->conv) {
        Tensor img = tensor4(e->img, DT_F32, B, d.C, d.H, d.H);
        op_unpatchify_forward(ctx, img, dec, c->patch_size, PATCH_HWC);
        op_conv2d_forward(ctx, out, img, h->final_w, h->final_b, (Conv2dParams){1, 1, 1, 1});
    } else {
        op_unpatchify_forward(ctx, out, dec, c->patch_size, PATCH_HWC);
    }
}

/* the end of the run of rows from b on that share b's bucket */
static int run_end(const int *bucket, int b, int B)
{
    int e = b + 1;
    while (e < B && bucket[e] == bucket[b]) e++;
    return e;
}

void uem_forward(Ctx *ctx, const UViTConfig *c, const Uem *q, ExitActs *e, int B, Tensor temb,
                 const int *bucket, Tensor u)
{
    ExitDims d = exit_dims(c);
    int timed = tensor_present(q->time_w);
    /* one GEMM per run of rows in one bucket (a sampling step's rows share it) */
    for (int b0 = 0, b1; b0 < B; b0 = b1) {
        b1 = run_end(bucket, b0, B);
        int k = bucket[b0], r = b1 - b0;
        Tensor z = tensor3(e->z + (size_t)b0 * d.N * d.P, DT_F32, r, d.N, d.P);
        Tensor ln = tensor3(e->ln + (size_t)b0 * d.N * d.D, DT_F32, r, d.N, d.D);
        // z [r,N,P] = ln [r,N,D] @ proj_w[k]^T (+ bias[k] when there is no time input)
        op_linear_forward(ctx, z, ln, bucket_of(q->proj_w, k, d.P, d.D),
                          timed ? tensor_none() : bucket_bias(q->bias, k, d.P));
        if (!timed) continue;
        // tb [r,P] = temb [r,D] @ time_w[k]^T + bias[k]: the per-image part of w_t^T [L, t] + b_t
        Tensor tb = tensor2(e->tbias + (size_t)b0 * d.P, DT_F32, r, d.P);
        op_linear_forward(ctx, tb, tensor2((float *)temb.data + (size_t)b0 * d.D, DT_F32, r, d.D),
                          bucket_of(q->time_w, k, d.P, d.D), bucket_bias(q->bias, k, d.P));
        // z [r,N,P] += tb [r,P] over the tokens
        op_add_per_image_forward(ctx, z, z, tb);
    }
    Tensor z = tensor3(e->z, DT_F32, B, d.N, d.P), utok = tensor3(e->utok, DT_F32, B, d.N, d.P);
    op_sigmoid_forward(ctx, utok, z);
    op_unpatchify_forward(ctx, u, utok, c->patch_size, PATCH_HWC);
}

/* ---- backward ------------------------------------------------------------------------- */

void exit_head_decode_backward(Ctx *ctx, const UViTConfig *c, const ExitHead *h, const ExitHead *g,
                               ExitActs *e, int B, Tensor dout, Tensor d_ln, float *d_img, float *d_dec)
{
    ExitDims d = exit_dims(c);
    Tensor ddec = tensor3(d_dec, DT_F32, B, d.N, d.P);
    ctx_zero(ctx, ddec);
    if (c->conv) {
        Tensor dimg = tensor4(d_img, DT_F32, B, d.C, d.H, d.H);
        ctx_zero(ctx, dimg);
        op_conv2d_backward(ctx, dimg, g->final_w, g->final_b, dout, tensor4(e->img, DT_F32, B, d.C, d.H, d.H),
                           h->final_w, (Conv2dParams){1, 1, 1, 1});
        op_unpatchify_backward(ctx, ddec, dimg, c->patch_size, PATCH_HWC);
    } else {
        op_unpatchify_backward(ctx, ddec, dout, c->patch_size, PATCH_HWC);
    }
    op_linear_backward(ctx, d_ln, g->dec_w, g->dec_b, ddec, tensor3(e->ln, DT_F32, B, d.N, d.D), h->dec_w);
}

void uem_backward(Ctx *ctx, const UViTConfig *c, const Uem *q, const Uem *g, ExitActs *e, int B,
                  Tensor temb, const int *bucket, Tensor du, Tensor d_ln, float *d_utok, float *d_z,
                  float *d_tbias)
{
    ExitDims d = exit_dims(c);
    int timed = tensor_present(q->time_w);
    Tensor dut = tensor3(d_utok, DT_F32, B, d.N, d.P), dz = tensor3(d_z, DT_F32, B, d.N, d.P);
    ctx_zero(ctx, dut);
    op_unpatchify_backward(ctx, dut, du, c->patch_size, PATCH_HWC);
    ctx_zero(ctx, dz);
    op_sigmoid_backward(ctx, dz, dut, tensor3(e->z, DT_F32, B, d.N, d.P));
    for (int b0 = 0, b1; b0 < B; b0 = b1) {
        b1 = run_end(bucket, b0, B);
        int k = bucket[b0], r = b1 - b0;
        Tensor dzr = tensor3(d_z + (size_t)b0 * d.N * d.P, DT_F32, r, d.N, d.P);
        Tensor dlnr = tensor_present(d_ln)
                          ? tensor3((float *)d_ln.data + (size_t)b0 * d.N * d.D, DT_F32, r, d.N, d.D)
                          : tensor_none();
        op_linear_backward(ctx, dlnr, bucket_of(g->proj_w, k, d.P, d.D), timed ? tensor_none() : bucket_bias(g->bias, k, d.P),
                           dzr, tensor3(e->ln + (size_t)b0 * d.N * d.D, DT_F32, r, d.N, d.D),
                           bucket_of(q->proj_w, k, d.P, d.D));
        if (!timed) continue;
        // dtb [r,P]: each image's sum of dz over its tokens
        Tensor dtb = tensor2(d_tbias + (size_t)b0 * d.P, DT_F32, r, d.P);
        ctx_zero(ctx, dtb);
        op_add_per_image_backward(ctx, tensor_none(), dtb, dzr);
        op_linear_backward(ctx, tensor_none(), bucket_of(g->time_w, k, d.P, d.D), bucket_bias(g->bias, k, d.P), dtb,
                           tensor2((float *)temb.data + (size_t)b0 * d.D, DT_F32, r, d.D),
                           bucket_of(q->time_w, k, d.P, d.D));
    }
}

void exit_head_norm_backward(Ctx *ctx, const UViTConfig *c, const ExitHead *h, const ExitHead *g,
                             ExitActs *e, int B, Tensor d_ln, Tensor d_hidden, float *d_hs)
{
    ExitDims d = exit_dims(c);
    Tensor dhs = tensor3(d_hs, DT_F32, B, d.N, d.D);
    ctx_zero(ctx, dhs);
    op_layernorm_backward(ctx, dhs, g->norm_w, g->norm_b, d_ln, tensor3(e->hs, DT_F32, B, d.N, d.D), h->norm_w,
                          tensor1(e->mean, DT_F32, B * d.N), tensor1(e->rstd, DT_F32, B * d.N));
    if (tensor_present(d_hidden)) op_token_slice_backward(ctx, d_hidden, dhs, (int)d.extras);
}

/* ---- cost ------------------------------------------------------------------------------ */

double exit_head_macs(const UViTConfig *c)
{
    ExitDims d = exit_dims(c);
    double macs = (double)d.N * d.D * d.P;
    if (c->conv) macs += (double)d.H * d.H * d.C * d.C * 9;
    return macs;
}

double uem_macs(const UViTConfig *c, int time_input)
{
    ExitDims d = exit_dims(c);
    return (double)d.N * d.D * d.P + (time_input ? (double)d.D * d.P : 0);
}
