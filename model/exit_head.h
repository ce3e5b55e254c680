/*
 * exit_head.h: the pieces an early-exit method attaches after a U-ViT block:
 * an exit head (a copy of U-ViT's tail) and DeeDiff's timestep-aware
 * uncertainty estimation module (UEM), forward and backward, on explicit
 * buffers so that training (every exit, full batch) and sampling (one exit,
 * the rows still running) drive the same code.
 *
 * Shapes: B rows, N patch tokens, T = N + extras tokens, D width,
 * P = p*p*C values per patch token, image [B,C,H,W].
 *
 * Exit head g_i (paper eq. 9's output layer; the third-party
 * re-implementation's choice, REFERENCE.md section 2):
 *   hs  = hidden[:, extras:, :]           [B,N,D]  drop the extras tokens
 *   ln  = LayerNorm(hs)                   [B,N,D]  eps 1e-5
 *   dec = ln @ dec_w^T + dec_b            [B,N,P]
 *   out = conv3x3(unpatchify(dec))        [B,C,H,W] (no conv when U-ViT has none)
 * exactly U-ViT's norm, decoder_pred, unpatchify and final_layer.
 *
 * UEM (paper eq. 8, u = f(w_t^T [L_i, timesteps] + b_t), f = sigmoid): it
 * reads the head's normalised tokens ln (L_i, normalised so that one
 * estimator suits the growing scale of deeper hidden states) and the
 * sinusoidal embedding temb[B,D] of the network's time input. Our concrete
 * w_t, b_t: K timestep buckets, bucket k = min(K-1, floor(t K)) for the
 * continuous time t in [0,1], each with its own
 *   proj_w[k] [P,D] (on the tokens), time_w[k] [P,D] (on temb), bias[k] [P]
 * so for an image in bucket k:
 *   z   = ln @ proj_w[k]^T + (temb @ time_w[k]^T + bias[k])   [N,P]
 *   u   = unpatchify(sigmoid(z))                              [C,H,W]
 * the uncertainty map (the paper unpatchifies a transformer's UEM output).
 * K = 1 with time_input off is the plain module sigmoid(w^T L + b).
 * Rows are processed in runs of equal bucket, one GEMM per run (all rows of
 * a sampling step share their time, so one run).
 */
#ifndef DEEDIFF_EXIT_HEAD_H
#define DEEDIFF_EXIT_HEAD_H

#include "uvit.h"

/* one head's parameters (weights or gradients) */
typedef struct {
    Tensor norm_w, norm_b;     /* [D] */
    Tensor dec_w, dec_b;       /* [P,D], [P] */
    Tensor final_w, final_b;   /* [C,C,3,3], [C]; absent when conv is off */
} ExitHead;

/* one UEM's parameters (weights or gradients) */
typedef struct {
    int buckets;               /* K */
    Tensor proj_w;             /* [K,P,D] */
    Tensor time_w;             /* [K,P,D]; absent when the time input is off */
    Tensor bias;               /* [K,P] */
} Uem;

/* buffers of one exit for up to B rows (backend memory, F32) */
typedef struct {
    float *hs, *ln;            /* [B,N,D] */
    float *mean, *rstd;        /* [B*N] */
    float *dec;                /* [B,N,P] */
    float *img;                /* [B,C,H,W] before the conv */
    float *z, *utok;           /* [B,N,P] UEM logits and sigmoid */
    float *tbias;              /* [B,P] UEM: temb @ time_w[k]^T + bias[k] per row */
} ExitActs;

/* the sizes above, for a configuration */
typedef struct { int64_t N, D, P, C, H, T, extras; } ExitDims;
ExitDims exit_dims(const UViTConfig *c);

/* allocates / frees one ExitActs for B rows */
void exit_acts_alloc(Ctx *ctx, ExitActs *e, const UViTConfig *c, int B);
/* the buffers of rows r0.. of e, as an ExitActs of its own */
ExitActs exit_acts_rows(const ExitActs *e, const UViTConfig *c, int r0);
void exit_acts_free(Ctx *ctx, ExitActs *e);

/* the bucket of continuous time t in [0,1] among K */
int uem_bucket(double t, int K);

/* ---- forward ------------------------------------------------------------------------- */
/* e->hs, e->ln (and its statistics) from hidden[B,T,D] */
void exit_head_norm(Ctx *ctx, const UViTConfig *c, const ExitHead *h, ExitActs *e, Tensor hidden);
/* out[B,C,H,W] from ln rows [B,N,D] (e->dec, e->img as scratch) */
void exit_head_decode(Ctx *ctx, const UViTConfig *c, const ExitHead *h, ExitActs *e, const float *ln,
                      int B, Tensor out);
/* u[B,C,H,W] from e->ln and temb[B,D] (may be absent when the UEM has no
   time input); bucket[B] per row (host) */
void uem_forward(Ctx *ctx, const UViTConfig *c, const Uem *q, ExitActs *e, int B, Tensor temb,
                 const int *bucket, Tensor u);

/* ---- backward (accumulates into every gradient given; any may be none) ------------- */
/* from dout[B,C,H,W] into the head's gradients and d_ln[B,N,D] (scratch
   d_img [B,C,H,W], d_dec [B,N,P] are overwritten) */
void exit_head_decode_backward(Ctx *ctx, const UViTConfig *c, const ExitHead *h, const ExitHead *g,
                               ExitActs *e, int B, Tensor dout, Tensor d_ln, float *d_img, float *d_dec);
/* from du[B,C,H,W] into the UEM's gradients and d_ln (scratch d_utok,
   d_z [B,N,P], d_tbias [B,P] overwritten) */
void uem_backward(Ctx *ctx, const UViTConfig *c, const Uem *q, const Uem *g, ExitActs *e, int B,
                  Tensor temb, const int *bucket, Tensor du, Tensor d_ln, float *d_utok, float *d_z,
                  float *d_tbias);
/* from d_ln into the norm's gradients and d_hidden[B,T,D] (may be none; d_hs
   [B,N,D] scratch overwritten) */
void exit_head_norm_backward(Ctx *ctx, const UViTConfig *c, const ExitHead *h, const ExitHead *g,
                             ExitActs *e, int B, Tensor d_ln, Tensor d_hidden, float *d_hs);

/* multiply-adds per image: a head's decode, a UEM's evaluation
   (norm and elementwise not counted, as uvit_macs) */
double exit_head_macs(const UViTConfig *c);
double uem_macs(const UViTConfig *c, int time_input);

#endif
