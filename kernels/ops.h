/*
 * ops.h: the one interface between model code and numeric kernels.
 *
 * Every op takes a context (which backend, its streams and library handles,
 * scratch space) and tensor views. The CPU backend (kernels/cpu/) is the fp32
 * reference; the CUDA backend (kernels/cuda/) keeps the same contract with
 * BF16 activations and F32 accumulation. Model code calls only these
 * functions, so it does not change when the backend does.
 *
 * Conventions (read these once, they hold for every op below):
 *   - Shapes are row-major. "[M, K]" for a linear input means any tensor whose
 *     last dimension is K; M is the product of the leading dimensions.
 *   - A forward op overwrites its output.
 *   - A backward op ACCUMULATES (+=) into every gradient it is given, so
 *     residual branches and skip connections add up naturally. Callers zero
 *     gradient buffers once per step. Any gradient may be tensor_none() when
 *     it is not needed (e.g. the input gradient of the first layer). The
 *     few ops with a `_set` form write their input gradient (=) instead,
 *     for a scratch gradient that would otherwise be zeroed right before:
 *     the same numbers without the pass over memory.
 *   - Rows are independent everywhere (no op mixes two images), so a batch
 *     may shrink between ops (early exit drops rows).
 *   - Shapes are checked in kernels/ops.c once for both backends; a mismatch
 *     is a programming error and aborts with both shapes printed.
 */
#ifndef DEEDIFF_OPS_H
#define DEEDIFF_OPS_H

#include "tensor.h"

typedef enum { BACKEND_CPU = 0, BACKEND_CUDA = 1 } Backend;

typedef struct OpTable OpTable;
struct PhaseHooks;   /* kernels/phase.h */

/* The arithmetic of a context's matrix products.
 *   fp32  the CPU reference (the default): fp32 operands and accumulation
 *   bf16  the CPU's linear layers (forward and backward) round their GEMM
 *         operands to bf16 (round to nearest even, as the CUDA backend's
 *         __float2bfloat16_rn) and accumulate in fp32 (oneDNN's matmul);
 *         everything else stays fp32: activations, attention, norms,
 *         weights and their updates. Needs AVX512-BF16 or AMX.
 *         The CUDA backend is bf16 always (bf16 activations).            */
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } Precision;

typedef struct Ctx {
    Backend backend;
    const OpTable *ops;
    DType act_dtype;      /* activation dtype: F32 on CPU, BF16 on CUDA */
    void *backend_state;  /* CUDA: stream, cuBLAS(Lt) handles; CPU: NULL */
    int threads;          /* CPU threads (OpenMP and OpenBLAS) */
    void *scratch;        /* backend memory that an op may use in a call */
    size_t scratch_bytes;
    Precision precision;  /* CPU: fp32 (ctx_init_cpu) or bf16 (ctx_set_precision); CUDA: bf16 */
    const struct PhaseHooks *phases;  /* NULL unless a profiler listens (kernels/phase.h) */
    struct Ctx *workers;  /* CPU: one-thread contexts of ctx_split_run, made on first use */
    int num_workers;
} Ctx;

/* ---- contexts and memory ------------------------------------------------ */

/* a CPU context; threads <= 0 means all cores */
void ctx_init_cpu(Ctx *ctx, int threads);
/* a CUDA context on device `device`; returns -1 (err_msg set) when no CUDA
   build or no usable GPU */
int ctx_init_cuda(Ctx *ctx, int device);
/* sets the context's precision; -1 (err_msg set, one line) when this
   backend or CPU cannot: bf16 on a CPU without AVX512-BF16 or AMX, fp32 on
   CUDA                                                                     */
int ctx_set_precision(Ctx *ctx, Precision p);
/* "fp32" or "bf16"; and back (-1 for any other name)                      */
const char *precision_name(Precision p);
int precision_from_name(const char *name, Precision *out);
void ctx_destroy(Ctx *ctx);
int ctx_cuda_available(void);
/* the GPU's name for a CUDA context ("NVIDIA H200"), NULL on the CPU       */
const char *ctx_device_name(const Ctx *ctx);

/* backend memory (host on CPU, device on CUDA); aborts when out of memory */
void *ctx_alloc(Ctx *ctx, size_t bytes);
void ctx_free(Ctx *ctx, void *p);
/* host <-> backend copies, and a copy within the backend */
void ctx_upload(Ctx *ctx, void *dst, const void *src_host, size_t bytes);
void ctx_download(Ctx *ctx, void *dst_host, const void *src, size_t bytes);
void ctx_copy(Ctx *ctx, void *dst, const void *src, size_t bytes);
void ctx_zero(Ctx *ctx, Tensor t);
/* waits for all queued work (no-op on CPU) */
void ctx_sync(Ctx *ctx);
/* the cudaStream_t every op of a CUDA context is queued on (for the
   harness's profiler: harness/profile/); NULL on the CPU backend */
void *ctx_stream(Ctx *ctx);
/* scratch of at least `bytes`, valid until the next call; grows only */
void *ctx_scratch(Ctx *ctx, size_t bytes);

/* ---- a batch run as pieces at once (CPU) ---------------------------------
 * A model whose images are independent may run a batch as n pieces at the
 * same time, each on a worker context of one thread with its own scratch,
 * instead of letting every op split its rows across the threads: on small
 * layers that saves the threads' meeting at the end of every op
 * (model/uvit.c says when it pays).
 * ctx_split_threads: the most pieces ctx can run at once: its threads on a
 *   CPU context in fp32, else 1.
 * ctx_split_pieces: pieces for `items` independent items (images, rows)
 *   when at most `most` are wanted: never more than items or than
 *   ctx_split_threads.
 * ctx_piece_start: where piece k of n starts among `items` (piece k is
 *   [start(k), start(k + 1))).
 * ctx_split_run: fn(worker, piece, user) for pieces 0..n-1 (n at most
 *   ctx_split_threads), all at once; returns when every piece is done. A
 *   worker is a one-thread fp32 CPU context, kept until ctx_destroy. */
typedef void (*CtxPieceFn)(Ctx *worker, int piece, void *user);
int ctx_split_threads(const Ctx *ctx);
int ctx_split_pieces(const Ctx *ctx, int most, int items);
static inline int ctx_piece_start(int items, int k, int n) { return (int)((int64_t)items * k / n); }
void ctx_split_run(Ctx *ctx, int n, CtxPieceFn fn, void *user);

/* ---- linear --------------------------------------------------------------
 * out[M,N] = in[M,K] @ w[N,K]^T + b[N]    (PyTorch nn.Linear layout)
 * b may be tensor_none().                                                   */
void op_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b);
void op_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                        Tensor dout, Tensor in, Tensor w);
/* the same, with din = dout @ w written, not accumulated (dw, db still +=) */
void op_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                            Tensor dout, Tensor in, Tensor w);

/* ---- fused linear layers (a transformer block's MLP and residuals) --------
 * linear_gelu:     pre[M,N] = in[M,K] @ w[N,K]^T + b[N],  out = gelu(pre)
 *                  pre may be tensor_none() (inference: out only).
 * backward:        dpre = dout * gelu'(pre), written into dpre[M,N] (scratch
 *                  owned by the caller), then op_linear_backward on dpre;
 *                  the _set form writes din as op_linear_backward_set does.
 * linear_residual: out[M,N] = in @ w^T + b + res[M,N]; out must not be res.
 *                  Its backward: op_linear_backward and op_accumulate(dres,
 *                  dout), see op_linear_residual_backward.
 * Each equals the unfused ops up to fp32 rounding, with fewer passes over
 * memory (kernels/cpu/linear_fused.c).                                       */
void op_linear_gelu_forward(Ctx *ctx, Tensor out, Tensor pre, Tensor in, Tensor w,
                            Tensor b);
void op_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                             Tensor dout, Tensor in, Tensor w, Tensor pre);
void op_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                                 Tensor dout, Tensor in, Tensor w, Tensor pre);
void op_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                                Tensor res);
void op_linear_residual_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dres,
                                 Tensor dout, Tensor in, Tensor w);

/* ---- LayerNorm over the last dimension ----------------------------------
 * out[M,C] = (in - mean) * rstd * w[C] + b[C]; mean[M], rstd[M] (F32) are
 * saved for the backward pass.                                             */
void op_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd,
                          Tensor in, Tensor w, Tensor b, float eps);
void op_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                           Tensor dout, Tensor in, Tensor w,
                           Tensor mean, Tensor rstd);

/* ---- multi-head self-attention core (no projections, no mask) -----------
 * qkv[B,T,3A] holds q, k, v in that order along the last axis, each split
 * into H heads of hd = A/H (U-ViT's "B L (K H D)" layout).
 * out[B,T,A] = softmax(q k^T * hd^-0.5) v per head, heads concatenated.
 * probs[B,H,T,T] receives the attention weights for the backward pass; it
 * may be tensor_none() in inference.                                       */
void op_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv,
                          int heads);
/* dprobs[B,H,T,T] is scratch owned by the caller; _set writes dqkv        */
void op_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout,
                           Tensor qkv, Tensor probs, int heads);
void op_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout,
                               Tensor qkv, Tensor probs, int heads);

/* ---- elementwise ---------------------------------------------------------
 * GELU is the exact form x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).          */
void op_gelu_forward(Ctx *ctx, Tensor out, Tensor in);
void op_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
/* SiLU: x * sigmoid(x) */
void op_silu_forward(Ctx *ctx, Tensor out, Tensor in);
void op_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
/* sigmoid: 1 / (1 + exp(-x)); the backward reads the input, as GELU's */
void op_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in);
void op_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
/* out = a + b, all the same shape (out may alias a or b) */
void op_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void op_add_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout);
/* dst += src, same shape */
void op_accumulate(Ctx *ctx, Tensor dst, Tensor src);
/* out[B,T,D] = in[B,T,D] + row[T,D] for every b (positional embedding) */
void op_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row);
void op_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout);
/* out[B,T,D] = in[B,T,D] + v[B,D] for every t: each image's own row added to
   all its tokens (the UEM's per-image time term); v and dv are F32 */
void op_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v);
void op_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout);

/* ---- concatenation along the last dimension -----------------------------
 * out[M, Ca+Cb] = [a[M,Ca], b[M,Cb]]                                      */
void op_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b);
void op_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout);

/* ---- token slices ----------------------------------------------------------
 * slice: out[B,n,D] = in[B, at:at+n, D]
 * place: seq[B, at:at+n, D] = src[B,n,D] (other rows of seq untouched)
 * Used to build U-ViT's [label, time, patches] sequence and to drop the
 * extra tokens before decoding.                                            */
void op_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at);
void op_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at);
void op_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at);
void op_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at);

/* ---- row copies: early exit's compaction, gathers and scatters -----------
 * out[dst_k] = in[src_k] for k < n, a row being everything past the first
 * dimension (out and in: one dtype, one row size); src_k = in_rows[k], or k
 * when in_rows is none, likewise dst_k with out_rows; n is the index lists'
 * length (the same when both are given), else out's rows. The lists are I64
 * on the context's backend, their rows in range and the dst_k distinct (the
 * callers' to keep: they live where the host cannot check them). out may be
 * in itself only with out_rows none and in_rows ascending, in_rows[k] >= k:
 * a compaction, the kept rows moved to the front in order. One op however
 * many rows (a GPU copy a row would cost a launch a row). No backward:
 * inference moves rows, training never does.                               */
void op_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows);

/* ---- exit scores: one number per row -----------------------------------
 * An early-exit rule's per-image score, reduced where the rows live (on a
 * GPU, downloading the rows would cost more than the block they decide on).
 * A row is everything past the first dimension; out is F32 [rows]. Sums are
 * in double, in an order fixed by the shape (the same bits however many
 * threads). No backward: a score decides, nothing is trained through it.
 *   row_mean:            out[r] = mean of in[r, :]          (in: F32)
 *   row_cosine_distance: out[r] = 1 - <a_r, b_r> / (|a_r| |b_r|), and 1
 *                        when either row is all zeros (a, b: one shape, F32
 *                        or the context's activation dtype)              */
void op_row_mean(Ctx *ctx, Tensor out, Tensor in);
void op_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b);

/* ---- 2-D convolution (cross-correlation, as PyTorch) --------------------
 * out[B,Co,Ho,Wo] = conv(in[B,Ci,H,W], w[Co,Ci,kh,kw]) + b[Co]
 * Ho = (H + 2 pad_h - kh) / stride_h + 1, likewise Wo. b may be none.     */
typedef struct { int stride_h, stride_w, pad_h, pad_w; } Conv2dParams;
void op_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                       Conv2dParams p);
void op_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                        Tensor dout, Tensor in, Tensor w, Conv2dParams p);
/* out = relu(conv(in, w) + b): the FID Inception's BasicConv2d with its
 * BatchNorm folded in. On the CPU one oneDNN primitive (channels-last
 * inside, kernels/cpu/conv2d_relu.c); it equals op_conv2d_forward then
 * op_relu_forward up to fp32 rounding (and a NaN stays NaN). The backward
 * writes dpre = dout where out > 0, else 0, into dpre [B,Co,Ho,Wo]
 * (scratch owned by the caller), then runs op_conv2d_backward on it.     */
void op_conv2d_relu_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                            Conv2dParams p);
void op_conv2d_relu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                             Tensor dout, Tensor in, Tensor w, Tensor out, Conv2dParams p);

/* ---- patches ---------------------------------------------------------------
 * An image [B,C,H,W] cut into N = (H/p)(W/p) patches, row-major over the
 * patch grid, each flattened to P = C p p values in one of two orders:
 *   PATCH_CHW: (C, p1, p2), the order of a patch-embedding conv's weight
 *   PATCH_HWC: (p1, p2, C), U-ViT's unpatchify order
 * patchify:   tokens[B,N,P] <- img[B,C,H,W]
 * unpatchify: img[B,C,H,W]  <- tokens[B,N,P]                               */
typedef enum { PATCH_CHW = 0, PATCH_HWC = 1 } PatchLayout;
void op_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p,
                         PatchLayout layout);
void op_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p,
                          PatchLayout layout);
void op_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p,
                           PatchLayout layout);
void op_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p,
                            PatchLayout layout);

/* ---- embeddings ------------------------------------------------------------
 * timestep: out[B,D] = [cos(t f), sin(t f)], f_j = exp(-ln(10000) j / (D/2)),
 * j < D/2, zero last column when D is odd; t[B] F32 may be fractional.
 * The backward gives dt (the derivative in t), for completeness and tests.  */
void op_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t);
void op_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout,
                                    Tensor t);
/* lookup: out[B,D] = table[ids[b]]; ids[B] I64 already range-checked       */
void op_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table);
void op_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids);

/* ---- loss --------------------------------------------------------------------
 * mean squared error over all elements; backward adds
 * dloss * 2 (pred - target) / n into dpred.                                */
float op_mse_forward(Ctx *ctx, Tensor pred, Tensor target);
void op_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target,
                     float dloss);

/* ---- DeeDiff's uncertainty losses for one exit (paper eqs. 9, 10, 12) ---------
 * g (an exit head's noise prediction), eps (the true noise) and u (the
 * uncertainty map) have the same shape, n elements in all:
 *   u_hat = tanh(|g - eps|)            the pseudo uncertainty, a constant (detached)
 *   lu    = mean (u - u_hat)^2         eq. 10 for this exit
 *   lual  = mean (1 - u) (g - eps)^2   eq. 12 for this exit
 * Both are returned (summed in double). The backward adds, for the weights
 * w_u (of lu) and w_ual (of lual):
 *   dg += w_ual (1 - u) 2 (g - eps) / n
 *   du += w_u 2 (u - u_hat) / n  -  w_ual_u (g - eps)^2 / n
 * where w_ual_u is w_ual when L_UAL's gradient reaches u, 0 when u is
 * detached inside it. dg or du may be tensor_none().                        */
typedef struct { float lu, lual; } UncertaintyLoss;
UncertaintyLoss op_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u);
void op_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                  Tensor u, float w_u, float w_ual, float w_ual_u);

/* ---- optimizer updates and training-step helpers ---------------------------
 * In-place updates of flat F32 buffers (a model's whole parameter or
 * gradient buffer, padding included: padding floats are zero in every buffer
 * and stay zero). These are optimizer steps and reductions, not
 * differentiable layers: they have NO backward op. All are elementwise or a
 * reduction with a fixed summation order, so results do not depend on the
 * thread count.
 *
 * AdamW is torch.optim.AdamW (single-tensor path, torch 1.13), per element:
 *   p  = p * (1 - lr wd)                      decoupled weight decay, first
 *   m  = beta1 m + (1 - beta1) g
 *   v  = beta2 v + (1 - beta2) g g
 *   p  = p - (lr / (1 - beta1^step)) m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * The scalars (1 - lr wd, the bias corrections, the step size) are formed in
 * double as PyTorch's Python code does, then used as F32; `step` counts
 * updates from 1. params, grads, m, v: F32, equal element counts.           */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;   /* >= 1: this update's number (bias corrections) */
} AdamWParams;
void op_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v,
                   AdamWParams p);
/* ema = decay * ema + (1 - decay) * params, U-ViT's utils.ema():
   ema.mul_(rate).add_((1 - rate) * src), 1 - rate formed in double          */
void op_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay);
/* sum of x^2 over all elements, in double (global gradient norm^2)          */
double op_sum_squares(Ctx *ctx, Tensor x);
/* x *= s in place (gradient clipping)                                        */
void op_scale(Ctx *ctx, Tensor x, float s);
/* 1 when any element of x is NaN or +-Inf, else 0                           */
int op_has_nonfinite(Ctx *ctx, Tensor x);

/* ---- sampler arithmetic ------------------------------------------------------
 * The updates a diffusion sampler makes between network evaluations
 * (model/sampler_*.c). They are not layers of a network and have NO backward.
 * Every tensor is F32 on every backend (the sampler's state stays in full
 * precision), shaped [B, ...]; row i is image i with its own coefficients,
 * given as host arrays of B floats, so every image may sit at its own time.
 *
 * axpby: out[i,:] = a[i] x[i,:] + b[i] y[i,:]; out may alias x or y.
 *        (also forms x_t = sqrt(cum_alpha) x0 + sqrt(cum_beta) eps)
 * randn: out[i,j] = z(seed, purpose, step, ids[i]*n + j), n = numel / B,
 *        the standard normal of kernels/philox.h, addressed per image id so
 *        an image's noise does not depend on its batch.
 * add_randn: out[i,j] += c[i] z(seed, purpose, step, ids[i]*n + j).
 * ids[B] is a host array.                                                    */
void op_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y);
void op_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed,
              uint32_t purpose, uint32_t step);
void op_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids,
                  uint64_t seed, uint32_t purpose, uint32_t step);

/* ---- vision ops for the FID Inception network (NCHW, F32) ---------------------
 * Pooling windows follow PyTorch (ceil_mode false): Ho = (H + 2 pad_h - kh) /
 * stride_h + 1, likewise Wo; a window may hang over the padding.
 * max_pool2d: the largest value in the window (padding never wins); the
 *   backward recomputes the argmax from `in` and routes dout there; ties go
 *   to the first maximum in row-major window order, as PyTorch.
 * avg_pool2d: the window mean, dividing by kh*kw when count_include_pad is
 *   set, else by the number of window cells inside the image.            */
typedef struct {
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    int count_include_pad;  /* avg_pool2d only */
} Pool2dParams;
void op_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void op_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p);
void op_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p);
void op_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p);
/* global average pool: out[B,C] = mean over (H,W) of in[B,C,H,W]          */
void op_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in);
void op_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout);
/* token mean: out[B,D] = mean over T of in[B,T,D] (the pooled state of a
 * transformer's hidden tokens); backward accumulates dout / T into din    */
void op_token_mean_forward(Ctx *ctx, Tensor out, Tensor in);
void op_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout);
/* bilinear resize out[B,C,Ho,Wo] <- in[B,C,H,W], align_corners=False:
 * src = max(0, (dst + 0.5) * H / Ho - 0.5), computed in float as PyTorch,
 * neighbours i0 = floor(src) and min(i0 + 1, H - 1).                       */
void op_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in);
void op_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout);
/* BatchNorm2d in eval mode over channel dim 1 of in[B,C,H,W]:
 * out = (in - mean[C]) / sqrt(var[C] + eps) * w[C] + b[C].
 * The backward treats mean and var as constants (running statistics).     */
void op_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var,
                          Tensor w, Tensor b, float eps);
void op_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                           Tensor in, Tensor mean, Tensor var, Tensor w, float eps);
/* ReLU, any shape; out may alias in (the backward reads in, or out: the
 * sign test is the same)                                                    */
void op_relu_forward(Ctx *ctx, Tensor out, Tensor in);
void op_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in);
/* out = a * in + b elementwise (e.g. [0,1] -> [-1,1]); out may alias in    */
void op_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b);
void op_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a);

/* ---- latent-space ops (the KL autoencoder, model/autoencoder.h; NCHW, F32) ----
 * group_norm: GroupNorm over in[B,C,S...] (any trailing dims, S values per
 *   channel): channels split into G groups of C/G; per (b, g), over its
 *   (C/G)*S values: mean, biased variance, rstd = 1/sqrt(var + eps), then
 *   out = (in - mean) * rstd * w[c] + b[c]. w and b are [C], or both
 *   tensor_none() (affine=False). mean[B,G] and rstd[B,G] (F32) are saved
 *   for the backward pass, which adds into din, dw, db (any may be none).
 * upsample_nearest: out[B,C,sH,sW] <- in[B,C,H,W], out[.., y, x] =
 *   in[.., y/s_h, x/s_w] for the integer factors s_h = Ho/H, s_w = Wo/W
 *   (F.interpolate(mode='nearest', scale_factor=s)); the backward adds each
 *   output block's sum into its input pixel.
 * pad2d: zero padding out[B,C,top+H+bottom,left+W+right] with in at
 *   (top, left) (F.pad(x, (left, right, top, bottom))); the backward adds
 *   the inner window of dout into din.                                      */
void op_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                           Tensor w, Tensor b, int groups, float eps);
void op_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                            Tensor in, Tensor w, Tensor mean, Tensor rstd, int groups);
void op_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in);
void op_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout);
typedef struct { int top, bottom, left, right; } Pad2dParams;
void op_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p);
void op_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p);

/* ---- the KL autoencoder's posterior, for training it ---------------------------
 * moments[B,2C,h,w] hold the mean (channels 0..C-1) and the log-variance
 * (C..2C-1) of a diagonal Gaussian, the log-variance clamped to [-30, 20]
 * (libs/autoencoder.py DiagonalGaussianDistribution); eps[B,C,h,w] ~ N(0,1).
 * forward: z[B,C,h,w] = mean + exp(logvar / 2) eps, and returns
 *   KL = (1/B) sum_b 0.5 sum_{c,y,x} (mean^2 + exp(logvar) - 1 - logvar)
 *   (the posterior's kl() against N(0,1), averaged over the batch).
 * backward: dmoments += dz's share through z (dmean = dz,
 *   dlogvar = dz eps exp(logvar / 2) / 2) + kl_weight dKL/dmoments
 *   (mean / B, (exp(logvar) - 1) / (2B)); no gradient reaches a clamped
 *   log-variance. dz may be tensor_none() (the KL alone).                   */
float op_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps);
void op_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                 float kl_weight);

/* ---- classifier loss (the FD-FMNIST feature network, model/fmnist_net.h) ----
 * Softmax cross-entropy, the mean over the batch: logits[B,K] F32 and
 * labels[B] I64 with values in [0,K) (the caller checks them):
 *   loss = (1/B) sum_b [ logsumexp(logits[b,:]) - logits[b, labels[b]] ]
 * The backward adds dloss / B * (softmax(logits[b,:]) - onehot(labels[b]))
 * into dlogits[B,K]. Like mse, the forward returns the loss to the host.   */
float op_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels);
void op_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels,
                               float dloss);

#endif
