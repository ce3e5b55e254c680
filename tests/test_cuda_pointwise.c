/*
 * test_cuda_pointwise.c: the CUDA backend's elementwise and data-movement
 * ops against the CPU reference, forward and backward, F32 and BF16:
 * activations (GELU, SiLU, sigmoid, ReLU, affine), sums (add, accumulate,
 * the broadcast add), token slices, concatenation, patches, the timestep and
 * label embeddings, row copies, the early-exit scores (row mean, cosine
 * distance) (rules: tests/support/cuda_compare.h). Copies must be exact. Every backward starts from a nonzero gradient: ops must add.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/support/cuda_compare.h"

/* ---- activations -------------------------------------------------------------------- */

typedef void (*UnaryOp)(Ctx *, Tensor, Tensor);
typedef void (*UnaryBackward)(Ctx *, Tensor, Tensor, Tensor);

static void affine_fwd(Ctx *c, Tensor out, Tensor in) { op_affine_forward(c, out, in, 2.0f, -1.0f); }
static void affine_bwd(Ctx *c, Tensor din, Tensor dout, Tensor in) { (void)in; op_affine_backward(c, din, dout, 2.0f); }

static void unary_case(const char *what, UnaryOp fwd, UnaryBackward bwd, DType dt)
{
    cc_start();
    int64_t n = 10007;
    float *x = cc_values(n, -6, 6, 7, dt), *y = cc_values(n, 0, 0, 0, DT_F32);
    Tensor hx = tensor1(x, DT_F32, n), hy = tensor1(y, DT_F32, n);
    fwd(&cc_cpu, hy, hx);
    Tensor dx = cc_upload(hx, dt), dy = cc_zeros(hy, dt);
    fwd(&cc_gpu, dy, dx);
    cc_expect_close(what, dy, y, cc_tol(dt));

    float *g = cc_values(n, -1, 1, 8, dt), *gx = cc_values(n, -1, 1, 9, dt);
    Tensor hg = tensor1(g, DT_F32, n), hgx = tensor1(gx, DT_F32, n);
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt);
    bwd(&cc_cpu, hgx, hg, hx);
    bwd(&cc_gpu, dgx, dg, dx);
    cc_expect_close("... backward", dgx, gx, cc_tol(dt));
    cc_finish();
}

#define UNARY_TESTS(name, fwd, bwd)                                                        \
    Test(cuda, name##_f32) { unary_case(#name, fwd, bwd, DT_F32); }                        \
    Test(cuda, name##_bf16) { unary_case(#name, fwd, bwd, DT_BF16); }

UNARY_TESTS(gelu, op_gelu_forward, op_gelu_backward)
UNARY_TESTS(silu, op_silu_forward, op_silu_backward)
UNARY_TESTS(sigmoid, op_sigmoid_forward, op_sigmoid_backward)
UNARY_TESTS(relu, op_relu_forward, op_relu_backward)
UNARY_TESTS(affine, affine_fwd, affine_bwd)

/* ---- sums ----------------------------------------------------------------------------- */

static void add_case(DType dt)
{
    cc_start();
    int64_t n = 4099;
    float *a = cc_values(n, -1, 1, 11, dt), *b = cc_values(n, -1, 1, 12, dt), *y = cc_values(n, 0, 0, 0, DT_F32);
    Tensor ha = tensor1(a, DT_F32, n), hb = tensor1(b, DT_F32, n), hy = tensor1(y, DT_F32, n);
    op_add_forward(&cc_cpu, hy, ha, hb);
    Tensor da = cc_upload(ha, dt), db = cc_upload(hb, dt), dy = cc_zeros(hy, dt);
    op_add_forward(&cc_gpu, dy, da, db);
    cc_expect_close("add_forward", dy, y, cc_tol(dt));
    op_add_forward(&cc_gpu, da, da, db); /* out aliasing a */
    cc_expect_close("add_forward in place", da, y, cc_tol(dt));

    /* add's backward is accumulate into both (kernels/ops.c) */
    float *g = cc_values(n, -1, 1, 13, dt), *ga = cc_values(n, -1, 1, 14, dt), *gb = cc_values(n, -1, 1, 15, dt);
    Tensor hg = tensor1(g, DT_F32, n), hga = tensor1(ga, DT_F32, n), hgb = tensor1(gb, DT_F32, n);
    Tensor dg = cc_upload(hg, dt), dga = cc_upload(hga, dt), dgb = cc_upload(hgb, dt);
    op_add_backward(&cc_cpu, hga, hgb, hg);
    op_add_backward(&cc_gpu, dga, dgb, dg);
    cc_expect_close("add_backward da", dga, ga, cc_tol(dt));
    cc_expect_close("add_backward db", dgb, gb, cc_tol(dt));
    cc_finish();
}

Test(cuda, add_f32) { add_case(DT_F32); }
Test(cuda, add_bf16) { add_case(DT_BF16); }

/* out[B,T,D] = in + a broadcast F32 row, and the row's gradient sum:
   per_image 0: row[T,D] to every image (add_bcast), summed over the batch;
   per_image 1: row[B,D], image b's to each of its tokens (add_per_image),
   summed over the tokens */
static void add_row_case(int per_image, DType dt)
{
    cc_start();
    int64_t B = 70, T = 17, D = 24; /* 70 rows: two row groups of add_bcast's column sum */
    if (per_image) B = 5, T = 130;   /* 130 tokens: three row groups of add_per_image's */
    Tensor hr_shape = per_image ? tensor2(NULL, DT_F32, B, D) : tensor3(NULL, DT_F32, 1, T, D);
    int64_t n = B * T * D, R = tensor_numel(hr_shape);
    float *x = cc_values(n, -1, 1, 15, dt), *row = cc_values(R, -1, 1, 16, DT_F32);
    float *y = cc_values(n, 0, 0, 0, DT_F32);
    Tensor hx = tensor3(x, DT_F32, B, T, D), hr = hr_shape, hy = tensor3(y, DT_F32, B, T, D);
    hr.data = row;
    Tensor dx = cc_upload(hx, dt), dr = cc_upload(hr, DT_F32), dy = cc_zeros(hy, dt);
    void (*fwd)(Ctx *, Tensor, Tensor, Tensor) = per_image ? op_add_per_image_forward : op_add_bcast_forward;
    void (*bwd)(Ctx *, Tensor, Tensor, Tensor) = per_image ? op_add_per_image_backward : op_add_bcast_backward;
    fwd(&cc_cpu, hy, hx, hr);
    fwd(&cc_gpu, dy, dx, dr);
    cc_expect_close("add row forward", dy, y, cc_tol(dt));

    float *g = cc_values(n, -1, 1, 17, dt), *gx = cc_values(n, -1, 1, 18, dt);
    float *grow = cc_values(R, -1, 1, 19, DT_F32);
    Tensor hg = tensor3(g, DT_F32, B, T, D), hgx = tensor3(gx, DT_F32, B, T, D), hgr = hr_shape;
    hgr.data = grow;
    Tensor dg = cc_upload(hg, dt), dgx = cc_upload(hgx, dt), dgr = cc_upload(hgr, DT_F32);
    bwd(&cc_cpu, hgx, hgr, hg);
    bwd(&cc_gpu, dgx, dgr, dg);
    cc_expect_close("add row backward din", dgx, gx, cc_tol(dt));
    cc_expect_close("add row backward drow", dgr, grow, CC_TOL_F32);
    cc_finish();
}

Test(cuda, add_bcast_f32) { add_row_case(0, DT_F32); }
Test(cuda, add_bcast_bf16) { add_row_case(0, DT_BF16); }
Test(cuda, add_per_image_f32) { add_row_case(1, DT_F32); }
Test(cuda, add_per_image_bf16) { add_row_case(1, DT_BF16); }

/* ---- token slices and concatenation (copies: exact) ---------------------------------------- */

static void token_case(DType dt)
{
    cc_start();
    int64_t B = 3, T = 11, n = 4, D = 10;
    int at = 5;
    float *seq = cc_values(B * T * D, -1, 1, 17, dt), *part = cc_values(B * n * D, -1, 1, 18, dt);
    float *slice = cc_values(B * n * D, 0, 0, 0, DT_F32);
    Tensor hseq = tensor3(seq, DT_F32, B, T, D), hpart = tensor3(part, DT_F32, B, n, D);
    Tensor hslice = tensor3(slice, DT_F32, B, n, D);
    Tensor dseq = cc_upload(hseq, dt), dpart = cc_upload(hpart, dt), dslice = cc_zeros(hslice, dt);
    op_token_slice_forward(&cc_cpu, hslice, hseq, at);
    op_token_slice_forward(&cc_gpu, dslice, dseq, at);
    cc_expect_close("token_slice_forward", dslice, slice, 1e-30);
    op_token_place_forward(&cc_cpu, hseq, hpart, at);
    op_token_place_forward(&cc_gpu, dseq, dpart, at);
    cc_expect_close("token_place_forward", dseq, seq, 1e-30); /* other tokens untouched */

    /* backwards: slice's adds dout into din's window, place's reads it back */
    float *gseq = cc_values(B * T * D, -1, 1, 19, dt), *gpart = cc_values(B * n * D, -1, 1, 20, dt);
    Tensor hgseq = tensor3(gseq, DT_F32, B, T, D), hgpart = tensor3(gpart, DT_F32, B, n, D);
    Tensor dgseq = cc_upload(hgseq, dt), dgpart = cc_upload(hgpart, dt);
    op_token_slice_backward(&cc_cpu, hgseq, hpart, at);
    op_token_slice_backward(&cc_gpu, dgseq, dpart, at);
    cc_expect_close("token_slice_backward", dgseq, gseq, cc_tol(dt));
    op_token_place_backward(&cc_cpu, hgpart, hgseq, at);
    op_token_place_backward(&cc_gpu, dgpart, dgseq, at);
    cc_expect_close("token_place_backward", dgpart, gpart, cc_tol(dt));
    cc_finish();
}

Test(cuda, token_slice_place_f32) { token_case(DT_F32); }
Test(cuda, token_slice_place_bf16) { token_case(DT_BF16); }

/* rows_copy, exact: a gather, a scatter, and the in-place compaction (the
   GPU's goes through scratch), for rows of R elements; R picks the copy
   unit: F32 4 -> 16 bytes, F32 5 -> 4, BF16 3 -> 2 */
static void rows_copy_case(int64_t R, DType dt)
{
    cc_start();
    int64_t B = 6, gather[] = {5, 0, 5, 2}, scatter[] = {3, 0, 2, 5}, keep[] = {1, 2, 4, 5};
    float *in = cc_values(B * R, -1, 1, 21, dt), *out = cc_values(B * R, -1, 1, 22, dt);
    Tensor hin = tensor2(in, DT_F32, B, R), hout = tensor2(out, DT_F32, B, R);
    Tensor din = cc_upload(hin, dt), dout = cc_upload(hout, dt);
    Tensor hg = tensor1(gather, DT_I64, 4), hs = tensor1(scatter, DT_I64, 4), hk = tensor1(keep, DT_I64, 4);
    Tensor dg = cc_upload_raw(hg), ds = cc_upload_raw(hs), dk = cc_upload_raw(hk);
    Tensor hfront = tensor2(out, DT_F32, 4, R), dfront = dout;
    dfront.shape[0] = 4;
    op_rows_copy(&cc_cpu, hfront, tensor_none(), hin, hg);
    op_rows_copy(&cc_gpu, dfront, tensor_none(), din, dg);
    cc_expect_close("rows_copy gather", dout, out, 1e-30);
    Tensor hin4 = hin, din4 = din;
    hin4.shape[0] = din4.shape[0] = 4;
    op_rows_copy(&cc_cpu, hout, hs, hin4, tensor_none());
    op_rows_copy(&cc_gpu, dout, ds, din4, tensor_none());
    cc_expect_close("rows_copy scatter", dout, out, 1e-30);
    op_rows_copy(&cc_cpu, hin, tensor_none(), hin, hk);
    op_rows_copy(&cc_gpu, din, tensor_none(), din, dk);
    cc_expect_close("rows_copy compaction", din, in, 1e-30);
    cc_finish();
}

Test(cuda, rows_copy)
{
    rows_copy_case(4, DT_F32);
    rows_copy_case(5, DT_F32);
    rows_copy_case(3, DT_BF16);
}

/* the exit scores: row_mean of F32 maps, row_cosine_distance of F32 and of
   BF16 hidden states (with a zero row), against the CPU */
Test(cuda, row_scores)
{
    cc_start();
    int64_t R = 9, n = 3 * 17 * 17;
    float *x = cc_values(R * n, -1, 3, 31, DT_F32), *mean = cc_values(R, 0, 0, 0, DT_F32);
    Tensor hx = tensor2(x, DT_F32, R, n), hm = tensor1(mean, DT_F32, R), dm = cc_zeros(hm, DT_F32);
    op_row_mean(&cc_cpu, hm, hx);
    op_row_mean(&cc_gpu, dm, cc_upload(hx, DT_F32));
    cc_expect_close("row_mean", dm, mean, 1e-6);
    for (int bf = 0; bf < 2; bf++) {
        DType dt = bf ? DT_BF16 : DT_F32;
        int64_t T = 65, D = 40;
        float *a = cc_values(R * T * D, -1, 1, 32, dt), *b = cc_values(R * T * D, -1, 1, 33, dt);
        for (int64_t j = 0; j < T * D; j++) b[2 * T * D + j] = 0.0f;   /* row 2: zero, scores 1 */
        float *score = cc_values(R, 0, 0, 0, DT_F32);
        Tensor ha = tensor3(a, DT_F32, R, T, D), hb = tensor3(b, DT_F32, R, T, D), hs = tensor1(score, DT_F32, R);
        Tensor ds = cc_zeros(hs, DT_F32);
        op_row_cosine_distance(&cc_cpu, hs, ha, hb);
        op_row_cosine_distance(&cc_gpu, ds, cc_upload(ha, dt), cc_upload(hb, dt));
        cc_expect_close(bf ? "row_cosine_distance bf16" : "row_cosine_distance f32", ds, score, 1e-6);
    }
    cc_finish();
}

/* an exit head slices F32 rows out of the backbone's BF16 activations: the
   copies convert when the two sides' dtypes differ (BF16 values, so exact) */
Test(cuda, token_slice_place_concat_mixed_dtypes)
{
    cc_start();
    int64_t B = 3, T = 11, n = 4, D = 10;
    int at = 5;
    float *seq = cc_values(B * T * D, -1, 1, 24, DT_BF16), *slice = cc_values(B * n * D, 0, 0, 0, DT_F32);
    Tensor hseq = tensor3(seq, DT_F32, B, T, D), hslice = tensor3(slice, DT_F32, B, n, D);
    Tensor dseq = cc_upload(hseq, DT_BF16), dslice = cc_zeros(hslice, DT_F32);
    op_token_slice_forward(&cc_cpu, hslice, hseq, at);
    op_token_slice_forward(&cc_gpu, dslice, dseq, at);  /* BF16 -> F32 */
    cc_expect_close("token_slice_forward bf16 -> f32", dslice, slice, 1e-30);
    float *part = cc_values(B * n * D, -1, 1, 25, DT_BF16);
    Tensor hpart = tensor3(part, DT_F32, B, n, D), dpart = cc_upload(hpart, DT_F32);
    op_token_place_forward(&cc_cpu, hseq, hpart, at);
    op_token_place_forward(&cc_gpu, dseq, dpart, at);  /* F32 -> BF16 */
    cc_expect_close("token_place_forward f32 -> bf16", dseq, seq, 1e-30);

    int64_t M = 37, Ca = 24, Cb = 40;
    float *a = cc_values(M * Ca, -1, 1, 26, DT_BF16), *b = cc_values(M * Cb, -1, 1, 27, DT_BF16);
    float *y = cc_values(M * (Ca + Cb), 0, 0, 0, DT_F32);
    Tensor ha = tensor2(a, DT_F32, M, Ca), hb = tensor2(b, DT_F32, M, Cb), hy = tensor2(y, DT_F32, M, Ca + Cb);
    op_concat_forward(&cc_cpu, hy, ha, hb);
    Tensor da = cc_upload(ha, DT_BF16), db = cc_upload(hb, DT_F32), dy = cc_zeros(hy, DT_F32);
    op_concat_forward(&cc_gpu, dy, da, db);
    cc_expect_close("concat_forward bf16, f32 -> f32", dy, y, 1e-30);
    cc_finish();
}

static void concat_case(DType dt)
{
    cc_start();
    int64_t M = 37, Ca = 24, Cb = 40, C = Ca + Cb;
    float *a = cc_values(M * Ca, -1, 1, 21, dt), *b = cc_values(M * Cb, -1, 1, 22, dt), *y = cc_values(M * C, 0, 0, 0, DT_F32);
    Tensor ha = tensor2(a, DT_F32, M, Ca), hb = tensor2(b, DT_F32, M, Cb), hy = tensor2(y, DT_F32, M, C);
    op_concat_forward(&cc_cpu, hy, ha, hb);
    Tensor da = cc_upload(ha, dt), db = cc_upload(hb, dt), dy = cc_zeros(hy, dt);
    op_concat_forward(&cc_gpu, dy, da, db);
    cc_expect_close("concat_forward", dy, y, 1e-30);

    float *g = cc_values(M * C, -1, 1, 23, dt);
    Tensor hg = tensor2(g, DT_F32, M, C), dg = cc_upload(hg, dt);
    op_concat_backward(&cc_cpu, ha, hb, hg);
    op_concat_backward(&cc_gpu, da, db, dg);
    cc_expect_close("concat_backward da", da, a, cc_tol(dt));
    cc_expect_close("concat_backward db", db, b, cc_tol(dt));
    op_concat_backward(&cc_cpu, tensor_none(), hb, hg); /* one side absent */
    op_concat_backward(&cc_gpu, tensor_none(), db, dg);
    cc_expect_close("concat_backward db alone", db, b, cc_tol(dt));
    cc_finish();
}

Test(cuda, concat_f32) { concat_case(DT_F32); }
Test(cuda, concat_bf16) { concat_case(DT_BF16); }

/* ---- patches --------------------------------------------------------------------------------- */

/* all four ops in one layout; the image may have another dtype than the tokens */
static void patch_case(PatchLayout layout, DType img_dt, DType tok_dt)
{
    int64_t B = 2, C = 3, H = 8, W = 12, p = 4, N = (H / p) * (W / p), P = C * p * p;
    const char *name = layout == PATCH_CHW ? "CHW" : "HWC";
    float *img = cc_values(B * C * H * W, -1, 1, 24, img_dt), *tok = cc_values(B * N * P, 0, 0, 0, DT_F32);
    Tensor himg = tensor4(img, DT_F32, B, C, H, W), htok = tensor3(tok, DT_F32, B, N, P);
    op_patchify_forward(&cc_cpu, htok, himg, (int)p, layout);
    Tensor dimg = cc_upload(himg, img_dt), dtok = cc_zeros(htok, tok_dt);
    op_patchify_forward(&cc_gpu, dtok, dimg, (int)p, layout);
    cc_expect_close(name, dtok, tok, tok_dt == DT_F32 ? 1e-30 : CC_TOL_BF16);

    float *back = cc_values(B * C * H * W, 0, 0, 0, DT_F32);
    Tensor hback = tensor4(back, DT_F32, B, C, H, W), dback = cc_zeros(hback, img_dt);
    op_unpatchify_forward(&cc_cpu, hback, htok, (int)p, layout);
    op_unpatchify_forward(&cc_gpu, dback, dtok, (int)p, layout);
    cc_expect_close("unpatchify_forward", dback, back, cc_tol(tok_dt));

    float *gimg = cc_values(B * C * H * W, -1, 1, 25, img_dt), *gtok = cc_values(B * N * P, -1, 1, 26, tok_dt);
    Tensor hgimg = tensor4(gimg, DT_F32, B, C, H, W), hgtok = tensor3(gtok, DT_F32, B, N, P);
    Tensor dgimg = cc_upload(hgimg, img_dt), dgtok = cc_upload(hgtok, tok_dt);
    op_patchify_backward(&cc_cpu, hgimg, hgtok, (int)p, layout);
    op_patchify_backward(&cc_gpu, dgimg, dgtok, (int)p, layout);
    cc_expect_close("patchify_backward", dgimg, gimg, cc_tol(img_dt));
    op_unpatchify_backward(&cc_cpu, hgtok, hgimg, (int)p, layout);
    op_unpatchify_backward(&cc_gpu, dgtok, dgimg, (int)p, layout);
    cc_expect_close("unpatchify_backward", dgtok, gtok, cc_tol(tok_dt));
}

Test(cuda, patches)
{
    cc_start();
    for (int l = 0; l < 2; l++) {
        patch_case((PatchLayout)l, DT_F32, DT_F32);
        patch_case((PatchLayout)l, DT_BF16, DT_BF16);
        patch_case((PatchLayout)l, DT_F32, DT_BF16); /* U-ViT: an F32 image, BF16 tokens */
    }
    cc_finish();
}

/* ---- timestep and label embeddings -------------------------------------------------------------- */

static void timestep_case(DType dt, int64_t D)
{
    int64_t B = 16;
    float *t = cc_values(B, 0, 1000, 19, DT_F32); /* fractional, up to U-ViT's 1000 */
    t[0] = 0.0f, t[1] = 999.0f;
    float *y = cc_values(B * D, 0, 0, 0, DT_F32);
    Tensor ht = tensor1(t, DT_F32, B), hy = tensor2(y, DT_F32, B, D);
    op_timestep_embedding_forward(&cc_cpu, hy, ht);
    Tensor dtime = cc_upload(ht, DT_F32), dy = cc_zeros(hy, dt);
    op_timestep_embedding_forward(&cc_gpu, dy, dtime);
    cc_expect_close(D % 2 ? "timestep_embedding odd D" : "timestep_embedding", dy, y, cc_tol(dt));

    float *g = cc_values(B * D, -1, 1, 20, dt), *gt = cc_values(B, -1, 1, 21, DT_F32);
    Tensor hg = tensor2(g, DT_F32, B, D), hgt = tensor1(gt, DT_F32, B);
    Tensor dg = cc_upload(hg, dt), dgt = cc_upload(hgt, DT_F32);
    op_timestep_embedding_backward(&cc_cpu, hgt, hg, ht);
    op_timestep_embedding_backward(&cc_gpu, dgt, dg, dtime);
    /* d/dt is large (|f| up to 1) and sums D/2 terms: F32 sin/cos differ by an ulp of t f */
    cc_expect_close("timestep_embedding_backward", dgt, gt, 1e-4);
}

Test(cuda, timestep_embedding_f32)
{
    cc_start();
    timestep_case(DT_F32, 512);
    timestep_case(DT_F32, 33);
    cc_finish();
}
Test(cuda, timestep_embedding_bf16)
{
    cc_start();
    timestep_case(DT_BF16, 512);
    timestep_case(DT_BF16, 33);
    cc_finish();
}

static void embedding_case(DType dt)
{
    cc_start();
    int64_t V = 11, D = 40, B = 9;
    int64_t ids[9] = {3, 0, 10, 3, 7, 3, 1, 10, 5}; /* repeats: the backward must add them all */
    float *table = cc_values(V * D, -1, 1, 27, DT_F32), *y = cc_values(B * D, 0, 0, 0, DT_F32);
    Tensor htab = tensor2(table, DT_F32, V, D), hids = tensor1(ids, DT_I64, B), hy = tensor2(y, DT_F32, B, D);
    op_embedding_forward(&cc_cpu, hy, hids, htab);
    Tensor dtab = cc_upload(htab, DT_F32), dids = cc_upload_raw(hids), dy = cc_zeros(hy, dt);
    op_embedding_forward(&cc_gpu, dy, dids, dtab);
    cc_expect_close("embedding_forward", dy, y, dt == DT_F32 ? 1e-30 : CC_TOL_BF16);

    float *g = cc_values(B * D, -1, 1, 28, dt), *gtab = cc_values(V * D, -1, 1, 29, DT_F32);
    Tensor hg = tensor2(g, DT_F32, B, D), hgtab = tensor2(gtab, DT_F32, V, D);
    Tensor dg = cc_upload(hg, dt), dgtab = cc_upload(hgtab, DT_F32);
    op_embedding_backward(&cc_cpu, hgtab, hg, hids);
    op_embedding_backward(&cc_gpu, dgtab, dg, dids);
    cc_expect_close("embedding_backward", dgtab, gtab, CC_TOL_F32);
    cc_finish();
}

Test(cuda, embedding_f32) { embedding_case(DT_F32); }
Test(cuda, embedding_bf16) { embedding_case(DT_BF16); }
