/*
 * conv2d.c: 2-D convolution (cross-correlation, as PyTorch's Conv2d) on the
 * CPU, forward and backward, through im2col and cpu_sgemm (oneDNN or OpenBLAS,
 * cpu_gemm.h).
 *
 * Per image b, with K = Ci*kh*kw and N = Ho*Wo:
 *   col[K,N]    the image's receptive fields, one row per (ci, ki, kj)
 *   out_b[Co,N] = w[Co,K] @ col[K,N] + bias
 *   dw[Co,K]   += dout_b[Co,N] @ col[K,N]^T
 *   dcol[K,N]   = w[Co,K]^T @ dout_b[Co,N], then col2im adds it into din_b
 * A 1x1, stride-1, unpadded conv needs no im2col: col is the image itself.
 *
 * Threads: when the batch has at least one image per thread, each thread
 * takes whole images with its own col buffer (a cpu_sgemm call inside an OpenMP
 * region runs single-threaded) and its own dw partial, summed at the end in
 * thread order, so results are deterministic for a given thread count.
 * Smaller batches go one image at a time with a multithreaded GEMM.
 */
#include <omp.h>
#include <string.h>

#include "cpu_gemm.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"

/* the sizes of one convolution, derived once from the tensor views */
typedef struct {
    int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
    int64_t K, N;           /* GEMM sizes: K = Ci*kh*kw, N = Ho*Wo */
    Conv2dParams p;
    int direct;             /* 1x1, stride 1, no padding: col is the image */
} ConvShape;

static ConvShape conv_shape(Tensor out, Tensor in, Tensor w, Conv2dParams p)
{
    ConvShape s;
    s.B = in.shape[0], s.Ci = in.shape[1], s.H = in.shape[2], s.W = in.shape[3];
    s.Co = w.shape[0], s.kh = w.shape[2], s.kw = w.shape[3];
    s.Ho = out.shape[2], s.Wo = out.shape[3];
    s.K = s.Ci * s.kh * s.kw;
    s.N = s.Ho * s.Wo;
    s.p = p;
    s.direct = s.kh == 1 && s.kw == 1 && p.stride_h == 1 && p.stride_w == 1 &&
               p.pad_h == 0 && p.pad_w == 0;
    return s;
}

/* the output columns ow in [*lo, *hi) whose input column ow*stride - pad + kj
   falls inside [0, W) */
static void valid_cols(const ConvShape *s, int64_t kj, int64_t *lo, int64_t *hi)
{
    int64_t sw = s->p.stride_w, off = kj - s->p.pad_w;
    int64_t a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int64_t b = s->W - off <= 0 ? 0 : (s->W - off + sw - 1) / sw;
    if (b > s->Wo) b = s->Wo;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* col[K,N] <- receptive fields of img[Ci,H,W]; zero where padding.
   threads > 1 splits the channels over an OpenMP team. */
static void im2col(const ConvShape *s, float *col, const float *img, int threads)
{
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t ci = 0; ci < s->Ci; ci++) {
        const float *plane = img + ci * s->H * s->W;  // plane is (H,W)
        for (int64_t ki = 0; ki < s->kh; ki++) {
            for (int64_t kj = 0; kj < s->kw; kj++) {
                float *row = col + ((ci * s->kh + ki) * s->kw + kj) * s->N;  // row is (Ho,Wo)
                int64_t lo, hi;
                valid_cols(s, kj, &lo, &hi);
                int64_t sw = s->p.stride_w, iw0 = lo * sw - s->p.pad_w + kj;
                for (int64_t oh = 0; oh < s->Ho; oh++) {
                    float *dst = row + oh * s->Wo;
                    int64_t ih = oh * s->p.stride_h - s->p.pad_h + ki;
                    if (ih < 0 || ih >= s->H) {
                        memset(dst, 0, (size_t)s->Wo * sizeof(float));
                        continue;
                    }
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (hi > lo) {
                        const float *src = plane + ih * s->W + iw0;
                        if (sw == 1) memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(float));
                        else for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[(ow - lo) * sw];
                    }
                    for (int64_t ow = hi; ow < s->Wo; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

/* img[Ci,H,W] += the fields of col[K,N] (the adjoint of im2col) */
static void col2im_add(const ConvShape *s, float *img, const float *col, int threads)
{
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t ci = 0; ci < s->Ci; ci++) {
        float *plane = img + ci * s->H * s->W;  // plane is (H,W)
        for (int64_t ki = 0; ki < s->kh; ki++) {
            for (int64_t kj = 0; kj < s->kw; kj++) {
                const float *row = col + ((ci * s->kh + ki) * s->kw + kj) * s->N;
                int64_t lo, hi;
                valid_cols(s, kj, &lo, &hi);
                int64_t sw = s->p.stride_w, iw0 = lo * sw - s->p.pad_w + kj;
                for (int64_t oh = 0; oh < s->Ho; oh++) {
                    int64_t ih = oh * s->p.stride_h - s->p.pad_h + ki;
                    if (ih < 0 || ih >= s->H || hi <= lo) continue;
                    const float *src = row + oh * s->Wo;
                    float *dst = plane + ih * s->W + iw0;
                    for (int64_t ow = lo; ow < hi; ow++) dst[(ow - lo) * sw] += src[ow];
                }
            }
        }
    }
}

/* images per team: `teams` threads each take whole images, or one team of
   one thread runs images in turn with a multithreaded GEMM */
static int conv_teams(const Ctx *ctx, int64_t B)
{
    int nt = cpu_threads(ctx);
    return B >= nt ? nt : 1;
}

void cpu_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b,
                        Conv2dParams p)
{
    ConvShape s = conv_shape(out, in, w, p);
    const float *inp = tensor_f32(in), *wp = tensor_f32(w);  // in is (B,Ci,H,W), w is (Co,K)
    const float *bp = tensor_present(b) ? tensor_f32(b) : NULL;
    float *outp = tensor_f32(out);                            // out is (B,Co,Ho,Wo)
    int teams = conv_teams(ctx, s.B);
    int inner = teams == 1 && s.K * s.N > CPU_PARALLEL_MIN ? cpu_threads(ctx) : 1;
    size_t col_n = s.direct ? 0 : (size_t)cpu_pad16(s.K * s.N);
    float *cols = s.direct ? NULL : ctx_scratch(ctx, (size_t)teams * col_n * sizeof(float));

    #pragma omp parallel num_threads(teams) if (teams > 1)
    {
        int tid = omp_get_thread_num();
        float *col = s.direct ? NULL : cols + (size_t)tid * col_n;  // col is (K,N)
        #pragma omp for schedule(static)
        for (int64_t bi = 0; bi < s.B; bi++) {
            const float *img = inp + bi * s.Ci * s.H * s.W;
            float *o = outp + bi * s.Co * s.N;  // o is (Co,N)
            if (!s.direct) im2col(&s, col, img, inner);
            const float *src = s.direct ? img : col;
            cpu_sgemm(GEMM_N, GEMM_N, s.Co, s.N, s.K, 1.0f, wp, s.K, src, s.N, 0.0f, o, s.N);
            if (bp)
                for (int64_t co = 0; co < s.Co; co++)
                    for (int64_t n = 0; n < s.N; n++) o[co * s.N + n] += bp[co];
        }
    }
}

/* db[Co] += dout summed over batch and positions */
static void conv_bias_backward(Ctx *ctx, const ConvShape *s, float *db, const float *dout)
{
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (s->B * s->Co * s->N > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t co = 0; co < s->Co; co++) {
        double acc = 0;
        for (int64_t bi = 0; bi < s->B; bi++) {
            const float *g = dout + (bi * s->Co + co) * s->N;
            float part = 0.0f;
            for (int64_t n = 0; n < s->N; n++) part += g[n];
            acc += part;
        }
        db[co] += (float)acc;
    }
}

void cpu_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db,
                         Tensor dout, Tensor in, Tensor w, Conv2dParams p)
{
    ConvShape s = conv_shape(dout, in, w, p);
    const float *inp = tensor_f32(in), *wp = tensor_f32(w);  // in is (B,Ci,H,W), w is (Co,K)
    const float *gp = tensor_f32(dout);                       // dout is (B,Co,Ho,Wo)
    float *dinp = tensor_present(din) ? tensor_f32(din) : NULL;
    float *dwp = tensor_present(dw) ? tensor_f32(dw) : NULL;
    if (tensor_present(db)) conv_bias_backward(ctx, &s, tensor_f32(db), gp);
    if (!dinp && !dwp) return;

    int teams = conv_teams(ctx, s.B);
    int inner = teams == 1 && s.K * s.N > CPU_PARALLEL_MIN ? cpu_threads(ctx) : 1;
    /* per team: a col buffer (reused for dcol), and a dw partial when teams > 1 */
    size_t col_n = s.direct ? 0 : (size_t)cpu_pad16(s.K * s.N);
    size_t dw_n = dwp && teams > 1 ? (size_t)cpu_pad16(s.Co * s.K) : 0;
    float *scratch = ctx_scratch(ctx, (size_t)teams * (col_n + dw_n) * sizeof(float) + 64);
    float *partials = scratch + (size_t)teams * col_n;
    if (dw_n) memset(partials, 0, (size_t)teams * dw_n * sizeof(float));

    #pragma omp parallel num_threads(teams) if (teams > 1)
    {
        int tid = omp_get_thread_num();
        float *col = scratch + (size_t)tid * col_n;          // col is (K,N)
        float *dw_acc = dw_n ? partials + (size_t)tid * dw_n : dwp;  // (Co,K)
        #pragma omp for schedule(static)
        for (int64_t bi = 0; bi < s.B; bi++) {
            const float *img = inp + bi * s.Ci * s.H * s.W;
            const float *g = gp + bi * s.Co * s.N;  // g is (Co,N)
            if (dwp) {
                if (!s.direct) im2col(&s, col, img, inner);
                const float *src = s.direct ? img : col;
                cpu_sgemm(GEMM_N, GEMM_T, s.Co, s.K, s.N, 1.0f, g, s.N, src, s.N, 1.0f, dw_acc, s.K);
            }
            if (dinp) {
                float *di = dinp + bi * s.Ci * s.H * s.W;
                /* direct: din_b[Ci,N] += w^T @ g; else dcol = w^T @ g, then col2im */
                float *dst = s.direct ? di : col;
                cpu_sgemm(GEMM_T, GEMM_N, s.K, s.N, s.Co, 1.0f, wp, s.K, g, s.N,
                          s.direct ? 1.0f : 0.0f, dst, s.N);
                if (!s.direct) col2im_add(&s, di, col, inner);
            }
        }
    }

    if (dw_n) {
        int64_t n = s.Co * s.K;
        #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n * teams > CPU_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float acc = 0.0f;
            for (int t = 0; t < teams; t++) acc += partials[(size_t)t * dw_n + i];
            dwp[i] += acc;
        }
    }
}
