/*
 * attention_short.c: attention's forward and backward for short sequences,
 * one (b, h) pair at a time in registers and L1, with no GEMM library call
 * (cpu_attention_short.h says when attention.c takes it).
 *
 * The small Fashion-MNIST U-ViT (T = 50, hd = 32) made 256 sgemm calls of
 * 50 x 50 x 32 per block; each paid the library's packing and buffer
 * allocation, and the softmax's rows of 50 ended in scalar tails. Here, for
 * one (b, h), with Tp = T rounded up to 16 and the formulas of attention.c:
 *
 * Forward
 *   kt[hd, Tp]  = K^T, columns T.. zero; vp[T, hd] = V packed
 *   then for each block of ROWS query rows i:
 *     s[ROWS, Tp] = Q[i, :] kt * hd^-0.5          (ROWS x up to COLS vectors
 *                                                  of keys in registers)
 *     s[r, :]     = softmax(s[r, :T]), 0 past T   (max-subtracted, over
 *                                                  whole vectors)
 *     O[i, :]     = s[:, :T] vp                   (ROWS x up to COLS vectors
 *                                                  of channels)
 *   The probabilities are normalised before P V, and the saved ones
 *   (training) are the floats P V used.
 *
 * Backward
 *   vt[hd, Tp]  = V^T; kp[T, hd] = K packed; dks, dvs [T, hd] = 0
 *   then for each block of ROWS rows i, with pb[ROWS, Tp] = P[i, :] (zero
 *   past T, and zero rows past T so that they add nothing):
 *     ds[ROWS, Tp] = dO[i, :] vt;  ds = pb * (ds - rowsum(pb * ds))   (dS)
 *     dQ[i, :]     (+)= ds kp * hd^-0.5
 *     dks          += ds^T Q[i, :];  dvs += pb^T dO[i, :]
 *   and last dK (+)= dks * hd^-0.5, dV (+)= dvs.
 *
 * Only the summation order differs from the GEMM path (each dot product's
 * order of d or of j is kept; the library's blocking is not). The products
 * use GNU C vectors of 16 floats, one AVX-512 register, so the register
 * blocking is the code's, not the compiler's guess; the Makefile builds this
 * file with -ffp-contract=fast so that acc += a * b is one fused
 * multiply-add, as the library's is.
 */
#include <math.h>
#include <string.h>

#include "cpu_attention_short.h"
#include "cpu_math.h"
#include "cpu_parallel.h"

typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));

/* query rows per block, and vectors of 16 (keys, or channels) per block:
   ROWS x COLS = 16 accumulators, half the AVX-512 registers */
#define ROWS 4
#define COLS 4

static inline vf16 load16(const float *p)
{
    vf16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, vf16 v) { memcpy(p, &v, sizeof v); }

/* one butterfly stage of a 16 x 16 transpose: for rows x = m[i], y =
   m[i + b] (bit b of i clear), swap the elements (i, l) and (i + b, l - b)
   for every lane l with bit b set; after the stages b = 8, 4, 2, 1 the
   rows are the columns. X_b and Y_b pick x's and y's new lanes from x:y. */
#define X_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define Y_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define X_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define Y_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define X_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define Y_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define X_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define Y_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define TRANSPOSE_STAGE(m, b, X, Y)                                             \
    for (int i = 0; i < 16; i++)                                                \
        if (!(i & (b))) {                                                       \
            vf16 x = m[i], y = m[i + (b)];                                      \
            m[i] = __builtin_shufflevector(x, y, X);                            \
            m[i + (b)] = __builtin_shufflevector(x, y, Y);                      \
        }

/* dst[d, j] = src[j, d] for the 16 x 16 tile at src (rows of ld floats, the
   rows from n on read as zeros) into dst (rows of ldd floats) */
static inline void transpose16(float *dst, int64_t ldd, const float *src, int64_t ld, int64_t n)
{
    vf16 m[16];
    for (int i = 0; i < 16; i++) m[i] = i < n ? load16(src + i * ld) : (vf16){0};
    TRANSPOSE_STAGE(m, 8, X_8, Y_8)
    TRANSPOSE_STAGE(m, 4, X_4, Y_4)
    TRANSPOSE_STAGE(m, 2, X_2, Y_2)
    TRANSPOSE_STAGE(m, 1, X_1, Y_1)
    for (int i = 0; i < 16; i++) store16(dst + i * ldd, m[i]);
}

/* vectors of 16 in the block of n floats that starts at `at`: COLS, or
   fewer at the end; the dispatchers below turn it into a constant */
static inline int block_vectors(int64_t n, int64_t at)
{
    return (n - at) / 16 < COLS ? (int)((n - at) / 16) : COLS;
}

/* s[r, j0 .. j0 + 16 nc) = alpha * x[r] . kt[:, j] for the ROWS rows x[r]
   (hd values each); nc is a constant after inlining */
static inline __attribute__((always_inline)) void dot_block(float *s, int64_t Tp, const float *const *x,
                                                             const float *kt, int64_t hd, int64_t j0, int nc,
                                                             float alpha)
{
    vf16 acc[ROWS][COLS] = {{{0}}};
    for (int64_t d = 0; d < hd; d++) {
        vf16 k[COLS];
        for (int c = 0; c < nc; c++) k[c] = load16(kt + d * Tp + j0 + 16 * c);
        for (int r = 0; r < ROWS; r++) {
            float xv = x[r][d];
            for (int c = 0; c < nc; c++) acc[r][c] += k[c] * xv;
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < nc; c++) store16(s + r * Tp + j0 + 16 * c, acc[r][c] * alpha);
}

/* s[ROWS, Tp] = alpha * x kt: the rows x[r] against every column of kt */
static void dot_rows(float *s, int64_t Tp, const float *const *x, const float *kt, int64_t hd, float alpha)
{
    for (int64_t j0 = 0; j0 < Tp; j0 += 16 * COLS) {
        switch (block_vectors(Tp, j0)) {
        case 1: dot_block(s, Tp, x, kt, hd, j0, 1, alpha); break;
        case 2: dot_block(s, Tp, x, kt, hd, j0, 2, alpha); break;
        case 3: dot_block(s, Tp, x, kt, hd, j0, 3, alpha); break;
        default: dot_block(s, Tp, x, kt, hd, j0, COLS, alpha); break;
        }
    }
}

/* o[r][c0 .. c0 + 16 nv) (=, or += when add) alpha * sum over j < T of
   s[r, j] v[j, c0 ..] for the ROWS rows o[r]; v is [T, hd] packed; nv is
   a constant after inlining */
static inline __attribute__((always_inline)) void mix_block(float *const *o, const float *s, int64_t Tp,
                                                             const float *v, int64_t hd, int64_t T, int64_t c0,
                                                             int nv, float alpha, int add)
{
    vf16 acc[ROWS][COLS] = {{{0}}};
    for (int64_t j = 0; j < T; j++) {
        vf16 x[COLS];
        for (int c = 0; c < nv; c++) x[c] = load16(v + j * hd + c0 + 16 * c);
        for (int r = 0; r < ROWS; r++) {
            float w = s[r * Tp + j];
            for (int c = 0; c < nv; c++) acc[r][c] += x[c] * w;
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < nv; c++) {
            float *dst = o[r] + c0 + 16 * c;
            store16(dst, add ? load16(dst) + acc[r][c] * alpha : acc[r][c] * alpha);
        }
}

/* the rows o[r][:hd] (=, or += when add) alpha * s[r, :T] v */
static void mix_rows(float *const *o, const float *s, int64_t Tp, const float *v, int64_t hd, int64_t T,
                     float alpha, int add)
{
    for (int64_t c0 = 0; c0 < hd; c0 += 16 * COLS) {
        switch (block_vectors(hd, c0)) {
        case 1: mix_block(o, s, Tp, v, hd, T, c0, 1, alpha, add); break;
        case 2: mix_block(o, s, Tp, v, hd, T, c0, 2, alpha, add); break;
        case 3: mix_block(o, s, Tp, v, hd, T, c0, 3, alpha, add); break;
        default: mix_block(o, s, Tp, v, hd, T, c0, COLS, alpha, add); break;
        }
    }
}

/* acc[j, c0 .. c0 + 16 nv) += sum over r of w[r, j] x[r][c0 ..] for every
   j < T: the transposed product w^T x of one row block, accumulated into
   acc [T, hd] packed; nv is a constant after inlining */
static inline __attribute__((always_inline)) void spread_block(float *acc, int64_t hd, const float *w, int64_t Tp,
                                                                const float *const *x, int64_t T, int64_t c0,
                                                                int nv)
{
    vf16 xr[ROWS][COLS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < nv; c++) xr[r][c] = load16(x[r] + c0 + 16 * c);
    for (int64_t j = 0; j < T; j++) {
        float *a = acc + j * hd + c0;
        vf16 sum[COLS];
        for (int c = 0; c < nv; c++) sum[c] = load16(a + 16 * c);
        for (int r = 0; r < ROWS; r++) {
            float wr = w[r * Tp + j];
            for (int c = 0; c < nv; c++) sum[c] += xr[r][c] * wr;
        }
        for (int c = 0; c < nv; c++) store16(a + 16 * c, sum[c]);
    }
}

/* acc[T, hd] += w[:, :T]^T x for the ROWS rows x[r] */
static void spread_rows(float *acc, int64_t hd, const float *w, int64_t Tp, const float *const *x, int64_t T)
{
    for (int64_t c0 = 0; c0 < hd; c0 += 16 * COLS) {
        switch (block_vectors(hd, c0)) {
        case 1: spread_block(acc, hd, w, Tp, x, T, c0, 1); break;
        case 2: spread_block(acc, hd, w, Tp, x, T, c0, 2); break;
        case 3: spread_block(acc, hd, w, Tp, x, T, c0, 3); break;
        default: spread_block(acc, hd, w, Tp, x, T, c0, COLS); break;
        }
    }
}

/* xt[hd, Tp] = x^T for x [T, hd] with row stride ld, zero columns past T */
static void pack_transposed(float *xt, int64_t Tp, const float *x, int64_t ld, int64_t T, int64_t hd)
{
    for (int64_t j0 = 0; j0 < T; j0 += 16)
        for (int64_t d0 = 0; d0 < hd; d0 += 16) transpose16(xt + d0 * Tp + j0, Tp, x + j0 * ld + d0, ld, T - j0);
}

/* xp[T, hd] = x [T, hd] with row stride ld, packed */
static void pack_rows(float *xp, const float *x, int64_t ld, int64_t T, int64_t hd)
{
    for (int64_t j = 0; j < T; j++) memcpy(xp + j * hd, x + j * ld, (size_t)hd * sizeof(float));
}

/* the ROWS rows of the block at i0: rows past T read row T-1 and write to
   spare (ROWS x hd), so every block is whole */
static void block_rows(const float **in, float **out, int64_t i0, int64_t T, const float *x, int64_t ldx,
                       float *y, int64_t ldy, float *spare, int64_t hd)
{
    for (int r = 0; r < ROWS; r++) {
        int64_t i = i0 + r < T ? i0 + r : T - 1;
        if (in) in[r] = x + i * ldx;
        if (out) out[r] = i0 + r < T ? y + i * ldy : spare + r * hd;
    }
}

static inline vf16 max16(vf16 a, vf16 b)
{
    vi16 gt = a > b;
    return (vf16)((gt & (vi16)a) | (~gt & (vi16)b));
}

/* lane l of v moved to lane l ^ b: the halvings of a tree reduction */
#define HALF_8(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)
#define HALF_4(v) __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)
#define HALF_2(v) __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define HALF_1(v) __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14)

/* the largest of v's 16 floats, and their sum: a tree of halvings, so a
   row's reduction is 4 dependent steps, not 16 */
static inline float hmax16(vf16 v)
{
    v = max16(v, HALF_8(v));
    v = max16(v, HALF_4(v));
    v = max16(v, HALF_2(v));
    v = max16(v, HALF_1(v));
    return v[0];
}

static inline float hsum16(vf16 v)
{
    v += HALF_8(v);
    v += HALF_4(v);
    v += HALF_2(v);
    v += HALF_1(v);
    return v[0];
}

/* each of the ROWS rows s[r, :Tp] <- softmax(s[r, :T]), zero past T; Tp a
   multiple of 16, s 64-byte aligned. The rows' reductions are independent,
   so their latencies overlap; the exp is cpu_expf's, vectorised by the
   compiler. The last vector's pads are masked out (lanes where live is 0)
   before the max and after the exp, in registers: scalar stores there would
   stall the vector loads that follow them. */
static void softmax_rows(float *s, int64_t T, int64_t Tp)
{
    vi16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    vi16 live = lane < (int32_t)(T - (Tp - 16));
    vi16 neg_inf = (vi16)((vf16){0} - INFINITY);
    float mx[ROWS];
    for (int r = 0; r < ROWS; r++) {
        float *last = s + r * Tp + Tp - 16;
        store16(last, (vf16)((live & (vi16)load16(last)) | (~live & neg_inf)));
        vf16 m = load16(s + r * Tp);
        for (int64_t j = 16; j < Tp; j += 16) m = max16(m, load16(s + r * Tp + j));
        mx[r] = hmax16(m);
    }
    for (int r = 0; r < ROWS; r++) {
        float *p = s + r * Tp, c = mx[r];
        #pragma omp simd aligned(p : 64)
        for (int64_t j = 0; j < Tp; j++) p[j] = cpu_expf(p[j] - c);
    }
    for (int r = 0; r < ROWS; r++) {
        float *last = s + r * Tp + Tp - 16;
        store16(last, (vf16)(live & (vi16)load16(last)));
        vf16 sum = load16(s + r * Tp);
        for (int64_t j = 16; j < Tp; j += 16) sum += load16(s + r * Tp + j);
        mx[r] = 1.0f / hsum16(sum);
    }
    for (int r = 0; r < ROWS; r++)
        for (int64_t j = 0; j < Tp; j += 16) store16(s + r * Tp + j, load16(s + r * Tp + j) * mx[r]);
}

/* floats of one thread's scratch in the forward: kt, vp, s and the spare
   rows. Every piece a thread carves from ctx_scratch (64-byte aligned) is a
   whole number of 16-float lines (hd % 16 == 0, Tp padded), so all stay
   aligned, which softmax_rows's aligned loops rely on; the backward's
   pieces likewise. */
static int64_t forward_floats(int64_t T, int64_t hd)
{
    int64_t Tp = cpu_pad16(T);
    return hd * Tp + T * hd + ROWS * Tp + ROWS * hd;
}

/* one (b, h) pair: q, k, v are [T, hd] with row stride ld, y is [T, hd]
   with row stride A, saved (or NULL) is [T, T] */
static void attend_pair(float *y, int64_t A, float *saved, const float *q, const float *k, const float *v,
                        int64_t ld, int64_t T, int64_t hd, float scale, float *work)
{
    int64_t Tp = cpu_pad16(T);
    float *kt = work, *vp = kt + hd * Tp, *s = vp + T * hd, *spare = s + ROWS * Tp;
    /* kt is (hd,Tp): K^T with zero columns past T; vp is (T,hd): V packed.
       Rows of qkv lie 3A floats apart, which maps them onto few L1 sets;
       packed, the pair's K and V stay in L1 while every row block reads
       them. */
    pack_transposed(kt, Tp, k, ld, T, hd);
    pack_rows(vp, v, ld, T, hd);
    for (int64_t i0 = 0; i0 < T; i0 += ROWS) {
        const float *qr[ROWS];
        float *orow[ROWS];
        block_rows(qr, orow, i0, T, q, ld, y, A, spare, hd);
        // s is (ROWS,Tp)
        dot_rows(s, Tp, qr, kt, hd, scale);
        softmax_rows(s, T, Tp);
        for (int r = 0; r < ROWS && saved && i0 + r < T; r++)
            memcpy(saved + (i0 + r) * T, s + r * Tp, (size_t)T * sizeof(float));
        mix_rows(orow, s, Tp, vp, hd, T, 1.0f, 0);
    }
}

/* floats of one thread's scratch in the backward: vt, kp, the P and dS
   blocks, the dK and dV sums and the spare rows */
static int64_t backward_floats(int64_t T, int64_t hd)
{
    int64_t Tp = cpu_pad16(T);
    return hd * Tp + 3 * T * hd + 2 * ROWS * Tp + ROWS * hd;
}

/* one (b, h) pair's backward: q, k, v and dq, dk, dv are [T, hd] with row
   stride ld, g (dO) is [T, hd] with row stride A, p is [T, T]; set: dq, dk
   and dv are written, not accumulated */
static void attend_pair_backward(float *dq, float *dk, float *dv, const float *q, const float *k, const float *v,
                                 int64_t ld, const float *g, int64_t A, const float *p, int64_t T, int64_t hd,
                                 float scale, int set, float *work)
{
    int64_t Tp = cpu_pad16(T);
    float *vt = work, *kp = vt + hd * Tp, *dks = kp + T * hd, *dvs = dks + T * hd;
    float *pb = dvs + T * hd, *ds = pb + ROWS * Tp, *spare = ds + ROWS * Tp;
    // vt is (hd,Tp) = V^T; kp is (T,hd) = K packed; dks, dvs are (T,hd) sums
    pack_transposed(vt, Tp, v, ld, T, hd);
    pack_rows(kp, k, ld, T, hd);
    memset(dks, 0, (size_t)(2 * T * hd) * sizeof(float));
    memset(spare, 0, (size_t)(ROWS * hd) * sizeof(float));  /* dQ's rows past T may accumulate */
    for (int64_t i0 = 0; i0 < T; i0 += ROWS) {
        const float *qr[ROWS], *gr[ROWS];
        float *dqr[ROWS];
        block_rows(qr, dqr, i0, T, q, ld, dq, ld, spare, hd);
        block_rows(gr, NULL, i0, T, g, A, NULL, 0, NULL, hd);
        /* pb (ROWS,Tp): this block's rows of P, zero past T and in rows past
           T, so those add nothing below */
        memset(pb, 0, (size_t)(ROWS * Tp) * sizeof(float));
        for (int r = 0; r < ROWS && i0 + r < T; r++) memcpy(pb + r * Tp, p + (i0 + r) * T, (size_t)T * sizeof(float));
        // ds (ROWS,Tp) = dO V^T, then dS = P * (dP - rowsum(P * dP))
        dot_rows(ds, Tp, gr, vt, hd, 1.0f);
        for (int r = 0; r < ROWS; r++) {
            vf16 dot = {0};
            for (int64_t j = 0; j < Tp; j += 16) dot += load16(pb + r * Tp + j) * load16(ds + r * Tp + j);
            float d = hsum16(dot);
            for (int64_t j = 0; j < Tp; j += 16)
                store16(ds + r * Tp + j, load16(pb + r * Tp + j) * (load16(ds + r * Tp + j) - d));
        }
        mix_rows(dqr, ds, Tp, kp, hd, T, scale, !set);  // dQ = dS K * scale
        spread_rows(dks, hd, ds, Tp, qr, T);             // dK += dS^T Q
        spread_rows(dvs, hd, pb, Tp, gr, T);             // dV += P^T dO
    }
    for (int64_t j = 0; j < T; j++)
        for (int64_t d = 0; d < hd; d += 16) {
            vf16 gk = load16(dks + j * hd + d) * scale, gv = load16(dvs + j * hd + d);
            store16(dk + j * ld + d, set ? gk : load16(dk + j * ld + d) + gk);
            store16(dv + j * ld + d, set ? gv : load16(dv + j * ld + d) + gv);
        }
}

/* the B*H (b, h) pairs of activations act [B, T, A] with `heads` heads, and
   the threads that share them, each with `per` floats of scratch */
typedef struct {
    int64_t B, T, A, H, hd, ld;
    float scale;
    int nt;
    float *work;
} Pairs;

static Pairs pairs_of(Ctx *ctx, Tensor act, int heads, int64_t (*floats)(int64_t T, int64_t hd), int64_t *per)
{
    Pairs p = {.B = act.shape[0], .T = act.shape[1], .A = act.shape[2], .H = heads};
    p.hd = p.A / p.H, p.ld = 3 * p.A;
    p.scale = 1.0f / sqrtf((float)p.hd);
    p.nt = cpu_pair_threads(ctx, p.B * p.H);
    *per = floats(p.T, p.hd);
    if (p.B > 0 && p.T > 0) p.work = ctx_scratch(ctx, (size_t)(p.nt * *per) * sizeof(float));
    return p;
}

void cpu_attention_short_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv, int heads)
{
    // qkv is (B,T,3A), out is (B,T,A), probs is (B,H,T,T) or none
    int64_t per;
    Pairs p = pairs_of(ctx, out, heads, forward_floats, &per);
    if (!p.work) return;
    float *saved = tensor_present(probs) ? tensor_f32(probs) : NULL;
    const float *x = tensor_f32(qkv);
    float *y = tensor_f32(out);

    #pragma omp parallel for num_threads(p.nt) schedule(static)
    for (int64_t bh = 0; bh < p.B * p.H; bh++) {
        int64_t b = bh / p.H, h = bh % p.H, T = p.T;
        const float *q = x + b * T * p.ld + h * p.hd;
        attend_pair(y + b * T * p.A + h * p.hd, p.A, saved ? saved + bh * T * T : NULL, q, q + p.A, q + 2 * p.A,
                    p.ld, T, p.hd, p.scale, p.work + omp_get_thread_num() * per);
    }
}

void cpu_attention_short_backward(Ctx *ctx, int set, Tensor dqkv, Tensor dout, Tensor qkv, Tensor probs,
                                  int heads)
{
    // dout is (B,T,A), qkv and dqkv are (B,T,3A), probs is (B,H,T,T)
    int64_t per;
    Pairs p = pairs_of(ctx, dout, heads, backward_floats, &per);
    if (!p.work) return;
    const float *x = tensor_f32(qkv), *g = tensor_f32(dout), *P = tensor_f32(probs);
    float *dx = tensor_f32(dqkv);

    #pragma omp parallel for num_threads(p.nt) schedule(static)
    for (int64_t bh = 0; bh < p.B * p.H; bh++) {
        int64_t b = bh / p.H, h = bh % p.H, T = p.T, off = b * T * p.ld + h * p.hd;
        const float *q = x + off;
        float *dq = dx + off;
        attend_pair_backward(dq, dq + p.A, dq + 2 * p.A, q, q + p.A, q + 2 * p.A, p.ld, g + b * T * p.A + h * p.hd,
                             p.A, P + bh * T * T, T, p.hd, p.scale, set, p.work + omp_get_thread_num() * per);
    }
}
