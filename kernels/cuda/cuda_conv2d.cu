/*
 * cuda_conv2d.cu: 2-D convolution (cross-correlation, as PyTorch's Conv2d),
 * forward and backward, as im2col + GEMMs through cuda_gemm (cuBLASLt).
 *
 * Per image b, with K = Ci*kh*kw and N = Ho*Wo (row-major shapes):
 *   col_b[K,N]   the image's receptive fields, one row per (ci, ki, kj)
 *   out_b[Co,N]  = w[Co,K] @ col_b + bias         (batched over images)
 *   dw[Co,K]    += dout_b[Co,N] @ col_b^T          (image after image: a fixed order)
 *   dcol_b[K,N]  = w^T @ dout_b, then col2im adds it into din_b (batched)
 *   db[Co]      += sum over (b, n) of dout         (cuda_channel_sum)
 * In column-major terms (cuda_gemm.h): out_b^T (N x Co, ld N) = col_b^T (N x K,
 * ld N) @ w^T (K x Co, ld K); dw^T (K x Co, ld K) += op_T(col_b^T) @ dout_b^T
 * (N x Co, ld N); dcol_b^T (N x K, ld N) = dout_b^T @ op_T(w^T). A 1x1,
 * stride-1, unpadded conv needs no im2col: col_b is the image itself.
 *
 * col2im gathers (one thread per input cell sums the columns that read it),
 * so no atomics. Images go in chunks whose col buffers fit CONV_SCRATCH_BYTES.
 *
 * Dtypes: F32 in and out (dout) -> F32 GEMMs (exact F32, no TF32: the FID
 * Inception's features stay the CPU's to 1e-5); any BF16 among them -> BF16
 * GEMMs with F32 accumulation, col in BF16, F32 w rounded to BF16, dout
 * rounded to BF16 when it is F32. dcol is F32; w, b, dw, db are F32; in and
 * out may differ in dtype (U-ViT's final conv: a BF16 image to F32 noise).
 */
#include "cuda_gemm.h"
#include "cuda_ops.h"
#include "cuda_reduce.h"

#define CONV_SCRATCH_BYTES ((size_t)256 << 20) /* per chunk of images */

typedef struct {
    int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
    int64_t K, N;  /* GEMM sizes: K = Ci*kh*kw, N = Ho*Wo */
    Conv2dParams p;
    int direct;    /* 1x1, stride 1, no padding */
} ConvShape;

static ConvShape conv_shape(Tensor out, Tensor in, Tensor w, Conv2dParams p)
{
    ConvShape s;
    s.B = in.shape[0], s.Ci = in.shape[1], s.H = in.shape[2], s.W = in.shape[3];
    s.Co = w.shape[0], s.kh = w.shape[2], s.kw = w.shape[3];
    s.Ho = out.shape[2], s.Wo = out.shape[3];
    s.K = s.Ci * s.kh * s.kw, s.N = s.Ho * s.Wo, s.p = p;
    s.direct = s.kh == 1 && s.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
    return s;
}

// col is (G, K, N) for images b0 .. b0+G-1 of in (B, Ci, H, W); zero in the padding
__global__ void im2col_kernel(CudaOut col, CudaIn in, ConvShape s, int64_t b0, int64_t G)
{
    CUDA_GRID_STRIDE(e, G * s.K * s.N) {
        int64_t g = e / (s.K * s.N), k = (e / s.N) % s.K, n = e % s.N;
        int64_t ci = k / (s.kh * s.kw), ki = (k / s.kw) % s.kh, kj = k % s.kw;
        int64_t ih = (n / s.Wo) * s.p.stride_h - s.p.pad_h + ki;
        int64_t iw = (n % s.Wo) * s.p.stride_w - s.p.pad_w + kj;
        float v = 0.0f;
        if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
            v = load_f32(in, (((b0 + g) * s.Ci + ci) * s.H + ih) * s.W + iw);
        store_f32(col, e, v);
    }
}

// din (B, Ci, H, W) += the fields of dcol (G, K, N) for images b0 ..: one
// thread per input cell, summing every (ki, kj) whose column reads it
__global__ void col2im_add_kernel(CudaOut din, const float *dcol, ConvShape s, int64_t b0, int64_t G)
{
    CUDA_GRID_STRIDE(x, G * s.Ci * s.H * s.W) {
        int64_t g = x / (s.Ci * s.H * s.W), ci = (x / (s.H * s.W)) % s.Ci;
        int64_t ih = (x / s.W) % s.H, iw = x % s.W;
        const float *col = dcol + g * s.K * s.N;
        float sum = 0.0f;
        for (int64_t ki = 0; ki < s.kh; ki++) {
            int64_t th = ih + s.p.pad_h - ki;
            if (th < 0 || th % s.p.stride_h || th / s.p.stride_h >= s.Ho) continue;
            for (int64_t kj = 0; kj < s.kw; kj++) {
                int64_t tw = iw + s.p.pad_w - kj;
                if (tw < 0 || tw % s.p.stride_w || tw / s.p.stride_w >= s.Wo) continue;
                int64_t k = (ci * s.kh + ki) * s.kw + kj;
                sum += col[k * s.N + (th / s.p.stride_h) * s.Wo + tw / s.p.stride_w];
            }
        }
        add_f32(din, b0 * s.Ci * s.H * s.W + x, sum);
    }
}

// out (B, Co, N) = b[co] everywhere
__global__ void fill_channels_kernel(CudaOut out, const float *b, int64_t Co, int64_t N, int64_t n)
{
    CUDA_GRID_STRIDE(i, n) store_f32(out, i, b[(i / N) % Co]);
}

/* db[co] += sum over images and positions of dout */
struct BiasGrad {
    CudaIn dout;
    float *db;
    int64_t Co, N;
    __device__ void operator()(int64_t b, int64_t c, int64_t i, double *acc) const
    {
        acc[0] += load_f32(dout, (b * Co + c) * N + i);
    }
    __device__ void finish(int64_t c, const double *sums) const { db[c] += (float)sums[0]; }
};

/* images per chunk when each image needs per_image bytes of scratch */
static int64_t chunk_images(int64_t B, size_t per_image)
{
    int64_t G = per_image ? (int64_t)(CONV_SCRATCH_BYTES / per_image) : B;
    return G < 1 ? 1 : G > B ? B : G;
}

/* the GEMM operand of images b0 .. b0+g-1's columns (G, K, N) in dtype cd:
   the image itself for a direct conv of the same dtype, else im2col into col */
static const void *columns(Ctx *ctx, const char *op, const ConvShape *s, Tensor in, DType cd,
                           void *col, int64_t b0, int64_t g)
{
    if (s->direct && in.dtype == cd)
        return (const char *)in.data + (size_t)(b0 * s->Ci * s->H * s->W) * dtype_size(cd);
    CudaOut c = {col, cd == DT_BF16};
    CUDA_LAUNCH(ctx, g * s->K * s->N, im2col_kernel, c, cuda_in(op, in), *s, b0, g);
    return col;
}

void cuda_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Conv2dParams p)
{
    const char *op = "conv2d_forward";
    ConvShape s = conv_shape(out, in, w, p);
    DType cd = cuda_act_dtype(op, in) == DT_F32 && cuda_act_dtype(op, out) == DT_F32 ? DT_F32 : DT_BF16;
    if (tensor_present(b)) cuda_need_f32(op, "b", b);
    cuda_gemm_check_dims(op, s.N, s.Co, s.K);
    if (s.B * s.Co * s.N == 0) return;
    size_t es = dtype_size(cd);
    size_t col_image = s.direct && in.dtype == cd ? 0 : cuda_align((size_t)(s.K * s.N) * es);
    int64_t G = chunk_images(s.B, col_image);
    /* scratch: [w in cd (Co*K) | col (G*K*N)] */
    size_t w_bytes = w.dtype == cd ? 0 : cuda_align((size_t)(s.Co * s.K) * es);
    char *scratch = (char *)ctx_scratch(ctx, w_bytes + (size_t)G * col_image + 256);
    const void *wp = cuda_as_dtype(ctx, op, w, cd, scratch);
    if (tensor_present(b))
        CUDA_LAUNCH(ctx, tensor_numel(out), fill_channels_kernel, cuda_out(op, out), (const float *)b.data,
                    s.Co, s.N, tensor_numel(out));

    for (int64_t b0 = 0; b0 < s.B; b0 += G) {
        int64_t g = G < s.B - b0 ? G : s.B - b0;
        CudaGemm m = cuda_gemm_problem(CUBLAS_OP_N, CUBLAS_OP_N, (int)s.N, (int)s.Co, (int)s.K, cd, out.dtype);
        m.A = columns(ctx, op, &s, in, cd, scratch + w_bytes, b0, g), m.lda = (int)s.N;  /* col_b^T: N x K */
        m.B = wp, m.ldb = (int)s.K;                                                     /* w^T: K x Co */
        m.C = (char *)out.data + (size_t)(b0 * s.Co * s.N) * dtype_size(out.dtype), m.ldc = (int)s.N;
        m.beta = tensor_present(b) ? 1.0f : 0.0f;
        m.batch = (int)g, m.stride_a = s.K * s.N, m.stride_b = 0, m.stride_c = s.Co * s.N;
        cuda_gemm(ctx, &m);
    }
}

void cuda_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in, Tensor w,
                          Conv2dParams p)
{
    const char *op = "conv2d_backward";
    ConvShape s = conv_shape(dout, in, w, p);
    DType cd = cuda_act_dtype(op, in) == DT_F32 && cuda_act_dtype(op, dout) == DT_F32 ? DT_F32 : DT_BF16;
    if (tensor_present(din)) cuda_act_dtype(op, din);
    if (tensor_present(dw)) cuda_need_f32(op, "dw", dw);
    if (tensor_present(db)) cuda_need_f32(op, "db", db);
    cuda_gemm_check_dims(op, s.K > s.N ? s.K : s.N, s.K > s.Co ? s.K : s.Co, s.N > s.Co ? s.N : s.Co);
    if (s.B * s.Co * s.N == 0) return;
    if (tensor_present(db)) cuda_channel_sum<1>(ctx, s.B, s.Co, s.N, BiasGrad{cuda_in(op, dout), (float *)db.data, s.Co, s.N});
    int want_dw = tensor_present(dw), want_din = tensor_present(din);
    if (!want_dw && !want_din) return;

    size_t es = dtype_size(cd);
    size_t col_image = want_dw && !(s.direct && in.dtype == cd) ? cuda_align((size_t)(s.K * s.N) * es) : 0;
    size_t dcol_image = want_din ? cuda_align((size_t)(s.K * s.N) * sizeof(float)) : 0;
    size_t dout_image = dout.dtype == cd ? 0 : cuda_align((size_t)(s.Co * s.N) * es);
    int64_t G = chunk_images(s.B, col_image + dcol_image + dout_image);
    /* scratch: [w in cd | col (G*K*N) | dcol (G*K*N) F32 | dout in cd (G*Co*N)] */
    size_t w_bytes = want_din && w.dtype != cd ? cuda_align((size_t)(s.Co * s.K) * es) : 0;
    char *scratch = (char *)ctx_scratch(ctx, w_bytes + (size_t)G * (col_image + dcol_image + dout_image) + 256);
    char *col = scratch + w_bytes, *dcol = col + (size_t)G * col_image, *dout_cd = dcol + (size_t)G * dcol_image;
    const void *wp = want_din ? cuda_as_dtype(ctx, op, w, cd, scratch) : NULL;

    for (int64_t b0 = 0; b0 < s.B; b0 += G) {
        int64_t g = G < s.B - b0 ? G : s.B - b0;
        const char *gp = (const char *)dout.data + (size_t)(b0 * s.Co * s.N) * dtype_size(dout.dtype);
        if (dout_image) { /* F32 dout rounded to BF16 for the BF16 GEMMs */
            cuda_cast_to_bf16(ctx, dout_cd, (const float *)gp, g * s.Co * s.N);
            gp = dout_cd;
        }
        if (want_dw) {
            const char *cols = (const char *)columns(ctx, op, &s, in, cd, col, b0, g);
            for (int64_t i = 0; i < g; i++) {
                CudaGemm m = cuda_gemm_problem(CUBLAS_OP_T, CUBLAS_OP_N, (int)s.K, (int)s.Co, (int)s.N, cd, DT_F32);
                m.A = cols + (size_t)(i * s.K * s.N) * es, m.lda = (int)s.N;  /* col_b^T: N x K */
                m.B = gp + (size_t)(i * s.Co * s.N) * es, m.ldb = (int)s.N;   /* dout_b^T: N x Co */
                m.C = dw.data, m.ldc = (int)s.K;                              /* dw^T: K x Co */
                m.beta = 1.0f;
                cuda_gemm(ctx, &m);
            }
        }
        if (want_din) {
            CudaGemm m = cuda_gemm_problem(CUBLAS_OP_N, CUBLAS_OP_T, (int)s.N, (int)s.K, (int)s.Co, cd, DT_F32);
            m.A = gp, m.lda = (int)s.N;       /* dout_b^T: N x Co */
            m.B = wp, m.ldb = (int)s.K;       /* w^T: K x Co, transposed to Co x K */
            m.C = dcol, m.ldc = (int)s.N;     /* dcol_b^T: N x K */
            m.batch = (int)g, m.stride_a = s.Co * s.N, m.stride_b = 0, m.stride_c = s.K * s.N;
            cuda_gemm(ctx, &m);
            CUDA_LAUNCH(ctx, g * s.Ci * s.H * s.W, col2im_add_kernel, cuda_out(op, din), (const float *)dcol, s, b0, g);
        }
    }
}
