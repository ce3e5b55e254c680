/*
 * pool.c: max, average and global average pooling over NCHW images on the
 * CPU, forward and backward (PyTorch's MaxPool2d, AvgPool2d and
 * AdaptiveAvgPool2d(1) with ceil_mode false), and the mean over the tokens
 * of a transformer's hidden state [B,T,D] -> [B,D].
 *
 * Every plane (b, c) is independent, so loops run over the B*C planes in
 * parallel; a backward writes only into its own plane, so it needs no atomics.
 * The forwards run each output row's whole windows as vector loops over the
 * row (pool_row: the same order of operations per output as the one-cell
 * functions, so the same floats), the clipped edges cell by cell.
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* the window of output (oh, ow), clipped to the image: rows [*h0, *h1),
   columns [*w0, *w1) */
static void pool_window(const Pool2dParams *p, int64_t H, int64_t W, int64_t oh, int64_t ow,
                        int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * p->stride_h - p->pad_h, ws = ow * p->stride_w - p->pad_w;
    int64_t he = hs + p->kernel_h, we = ws + p->kernel_w;
    *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws;
    *h1 = he > H ? H : he, *w1 = we > W ? W : we;
}

/* the number of cells an average divides by at (oh, ow) */
static float pool_divisor(const Pool2dParams *p, int64_t H, int64_t W, int64_t oh, int64_t ow)
{
    if (!p->count_include_pad) {
        int64_t h0, h1, w0, w1;
        pool_window(p, H, W, oh, ow, &h0, &h1, &w0, &w1);
        return (float)((h1 - h0) * (w1 - w0));
    }
    /* PyTorch counts the padded cells but not cells beyond the padding */
    int64_t hs = oh * p->stride_h - p->pad_h, ws = ow * p->stride_w - p->pad_w;
    int64_t he = hs + p->kernel_h, we = ws + p->kernel_w;
    if (he > H + p->pad_h) he = H + p->pad_h;
    if (we > W + p->pad_w) we = W + p->pad_w;
    return (float)((he - hs) * (we - ws));
}

/* the flat index in the plane of the window's maximum: the first maximum in
   row-major order, a NaN beating everything (PyTorch's rule) */
static int64_t argmax_window(const float *plane, const Pool2dParams *p, int64_t H, int64_t W,
                             int64_t oh, int64_t ow)
{
    int64_t h0, h1, w0, w1;
    pool_window(p, H, W, oh, ow, &h0, &h1, &w0, &w1);
    int64_t best = h0 * W + w0;
    float bv = -INFINITY;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
            float v = plane[h * W + w];
            if (v > bv || isnan(v)) {
                best = h * W + w, bv = v;
                if (isnan(v)) return best;
            }
        }
    return best;
}

/* ---- the window ops: what one output cell reads, and where its gradient goes ---- */

/* the value of output (oh, ow) from its window of plane (H,W) */
typedef float (*window_value)(const float *plane, const Pool2dParams *p, int64_t H, int64_t W,
                              int64_t oh, int64_t ow);
/* dplane (H,W) += what output (oh, ow) with gradient g gives its window;
   plane (H,W) is the forward input (max pooling needs it) */
typedef void (*window_spread)(float *dplane, const float *plane, const Pool2dParams *p,
                              int64_t H, int64_t W, int64_t oh, int64_t ow, float g);

static float max_value(const float *plane, const Pool2dParams *p, int64_t H, int64_t W,
                       int64_t oh, int64_t ow)
{
    return plane[argmax_window(plane, p, H, W, oh, ow)];
}

static void max_spread(float *dplane, const float *plane, const Pool2dParams *p, int64_t H,
                       int64_t W, int64_t oh, int64_t ow, float g)
{
    dplane[argmax_window(plane, p, H, W, oh, ow)] += g;
}

static float avg_value(const float *plane, const Pool2dParams *p, int64_t H, int64_t W,
                       int64_t oh, int64_t ow)
{
    int64_t h0, h1, w0, w1;
    pool_window(p, H, W, oh, ow, &h0, &h1, &w0, &w1);
    float sum = 0.0f;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) sum += plane[h * W + w];
    return sum / pool_divisor(p, H, W, oh, ow);
}

static void avg_spread(float *dplane, const float *plane, const Pool2dParams *p, int64_t H,
                       int64_t W, int64_t oh, int64_t ow, float g)
{
    int64_t h0, h1, w0, w1;
    pool_window(p, H, W, oh, ow, &h0, &h1, &w0, &w1);
    float share = g / pool_divisor(p, H, W, oh, ow);
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) dplane[h * W + w] += share;
}

/* ---- the plane loops max and average pooling share ---------------------------- */

/* the output columns [*lo, *hi) whose window lies inside the row (no
   clipping at either side) */
static void full_columns(const Pool2dParams *p, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi)
{
    int64_t s = p->stride_w, a = (p->pad_w + s - 1) / s;
    int64_t b = W - p->kernel_w + p->pad_w >= 0 ? (W - p->kernel_w + p->pad_w) / s + 1 : 0;
    *lo = a < Wo ? a : Wo;
    *hi = b < *lo ? *lo : b > Wo ? Wo : b;
}

/* m with v folded in: the larger, a NaN winning and the first of equals
   kept (max_value's rule, so the result is the same float) */
static inline float max_fold(float m, float v) { return v > m || v != v ? v : m; }

/* one output row oh of a plane: the columns with whole windows run as
   vector loops over ow, each accumulating its window in max_value's or
   avg_value's order (rows, then columns within a row), so every output is
   the same float as theirs; the clipped edge columns call value(). acc
   holds Wo floats. */
static void pool_row(float *o, const float *plane, const Pool2dParams *p, int64_t H, int64_t W,
                     int64_t Wo, int64_t oh, int64_t c0, int64_t c1, int is_max, window_value value,
                     float *acc)
{
    int64_t h0, h1, w0, w1, s = p->stride_w, kw = p->kernel_w;
    pool_window(p, H, W, oh, c0, &h0, &h1, &w0, &w1);
    for (int64_t ow = 0; ow < c0; ow++) o[ow] = value(plane, p, H, W, oh, ow);
    for (int64_t ow = c1; ow < Wo; ow++) o[ow] = value(plane, p, H, W, oh, ow);
    if (c1 <= c0 || h1 <= h0) {
        for (int64_t ow = c0; ow < c1; ow++) o[ow] = value(plane, p, H, W, oh, ow);
        return;
    }
    const float *first = plane + h0 * W + c0 * s - p->pad_w;  /* each window's first cell */
    #pragma omp simd
    for (int64_t i = 0; i < c1 - c0; i++) acc[i] = is_max ? first[i * s] : 0.0f;
    for (int64_t h = h0; h < h1; h++)
        for (int64_t j = 0; j < kw; j++) {
            if (is_max && h == h0 && j == 0) continue;
            const float *x = plane + h * W + c0 * s - p->pad_w + j;
            if (s == 1) {  /* Inception's branch pools: contiguous loads */
                if (is_max) {
                    #pragma omp simd
                    for (int64_t i = 0; i < c1 - c0; i++) acc[i] = max_fold(acc[i], x[i]);
                } else {
                    #pragma omp simd
                    for (int64_t i = 0; i < c1 - c0; i++) acc[i] += x[i];
                }
            } else if (is_max) {
                #pragma omp simd
                for (int64_t i = 0; i < c1 - c0; i++) acc[i] = max_fold(acc[i], x[i * s]);
            } else {
                #pragma omp simd
                for (int64_t i = 0; i < c1 - c0; i++) acc[i] += x[i * s];
            }
        }
    float div = is_max ? 1.0f : pool_divisor(p, H, W, oh, c0);  /* the same for whole windows */
    for (int64_t i = 0; i < c1 - c0; i++) o[c0 + i] = is_max ? acc[i] : acc[i] / div;
}

static void pool2d_forward(Ctx *ctx, Tensor out, Tensor in, const Pool2dParams *p, int is_max)
{
    int64_t P = in.shape[0] * in.shape[1], H = in.shape[2], W = in.shape[3];
    int64_t Ho = out.shape[2], Wo = out.shape[3], c0, c1;
    const float *x = tensor_f32(in);  // x is (P,H,W)
    float *y = tensor_f32(out);       // y is (P,Ho,Wo)
    full_columns(p, W, Wo, &c0, &c1);
    window_value value = is_max ? max_value : avg_value;
    int nt = P * H * W > CPU_PARALLEL_MIN ? cpu_threads(ctx) : 1;
    float *accs = ctx_scratch(ctx, (size_t)(nt * cpu_pad16(Wo)) * sizeof(float));
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *acc = accs + omp_get_thread_num() * cpu_pad16(Wo);  // acc is (Wo)
        #pragma omp for schedule(static)
        for (int64_t pl = 0; pl < P; pl++)
            for (int64_t oh = 0; oh < Ho; oh++)
                pool_row(y + (pl * Ho + oh) * Wo, x + pl * H * W, p, H, W, Wo, oh, c0, c1, is_max, value, acc);
    }
}

/* in is the forward input, or none when spread does not read it */
static void pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, const Pool2dParams *p,
                            window_spread spread)
{
    int64_t P = din.shape[0] * din.shape[1], H = din.shape[2], W = din.shape[3];
    int64_t Ho = dout.shape[2], Wo = dout.shape[3];
    const float *x = tensor_present(in) ? tensor_f32(in) : NULL;  // x is (P,H,W) or NULL
    const float *g = tensor_f32(dout);                             // g is (P,Ho,Wo)
    float *dx = tensor_f32(din);                                   // dx is (P,H,W)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * H * W > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        const float *plane = x ? x + pl * H * W : NULL, *gp = g + pl * Ho * Wo;
        float *dp = dx + pl * H * W;
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) spread(dp, plane, p, H, W, oh, ow, gp[oh * Wo + ow]);
    }
}

void cpu_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    pool2d_forward(ctx, out, in, &p, 1);
}

void cpu_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p)
{
    pool2d_backward(ctx, din, dout, in, &p, max_spread);
}

void cpu_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    pool2d_forward(ctx, out, in, &p, 0);
}

void cpu_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p)
{
    pool2d_backward(ctx, din, dout, tensor_none(), &p, avg_spread);
}

void cpu_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in)
{
    int64_t P = in.shape[0] * in.shape[1], N = in.shape[2] * in.shape[3];
    const float *x = tensor_f32(in);  // x is (P,N)
    float *y = tensor_f32(out);       // y is (P)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        float sum = 0.0f;
        for (int64_t i = 0; i < N; i++) sum += x[pl * N + i];
        y[pl] = sum / (float)N;
    }
}

void cpu_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    int64_t P = din.shape[0] * din.shape[1], N = din.shape[2] * din.shape[3];
    const float *g = tensor_f32(dout);  // g is (P)
    float *dx = tensor_f32(din);        // dx is (P,N)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (P * N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t pl = 0; pl < P; pl++) {
        float share = g[pl] / (float)N;
        for (int64_t i = 0; i < N; i++) dx[pl * N + i] += share;
    }
}

void cpu_token_mean_forward(Ctx *ctx, Tensor out, Tensor in)
{
    int64_t B = in.shape[0], T = in.shape[1], D = in.shape[2];
    const float *x = tensor_f32(in);  // x is (B,T,D)
    float *y = tensor_f32(out);       // y is (B,D)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * T * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float *yb = y + b * D;
        for (int64_t d = 0; d < D; d++) yb[d] = 0.0f;
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < D; d++) yb[d] += x[(b * T + t) * D + d];
        for (int64_t d = 0; d < D; d++) yb[d] /= (float)T;
    }
}

void cpu_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    int64_t B = din.shape[0], T = din.shape[1], D = din.shape[2];
    const float *g = tensor_f32(dout);  // g is (B,D)
    float *dx = tensor_f32(din);        // dx is (B,T,D)
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * T * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < D; d++) dx[(b * T + t) * D + d] += g[b * D + d] / (float)T;
}
