/*
 * ops.c: the front door of every op. Checks shapes once for all backends,
 * then calls the context's backend table (kernels/op_table.h).
 *
 * A failed check is a programming error in the caller (model code builds
 * every view), so it aborts with the op's name and the shapes involved.
 */
#include <string.h>

#include "errors.h"
#include "op_table.h"

/* ---- checks ---------------------------------------------------------------- */

#define SHAPE(t) tensor_shape_str((t), (char[96]){0}, 96)

static void need(int cond, const char *op, const char *what, Tensor a, Tensor b)
{
    if (!cond) FATAL("%s: %s (shapes %s and %s)", op, what, SHAPE(a), SHAPE(b));
}

static void same_shape(const char *op, Tensor a, Tensor b)
{
    int ok = a.ndim == b.ndim;
    for (int i = 0; ok && i < a.ndim; i++) ok = a.shape[i] == b.shape[i];
    need(ok, op, "shapes differ", a, b);
}

/* an optional tensor: when present it must have b's shape */
static void same_shape_opt(const char *op, Tensor a, Tensor b)
{
    if (tensor_present(a)) same_shape(op, a, b);
}

static void same_numel(const char *op, Tensor a, Tensor b)
{
    need(tensor_numel(a) == tensor_numel(b), op, "element counts differ", a, b);
}

static void need_ndim(const char *op, Tensor t, int nd)
{
    if (t.ndim != nd) FATAL("%s: expected a %d-d tensor, got %s", op, nd, SHAPE(t));
}

/* a one-input op's backward: din, dout and in have the same element count */
static void same_numel3(const char *op, Tensor din, Tensor dout, Tensor in)
{
    same_numel(op, din, in);
    same_numel(op, dout, in);
}

/* aborts when the context's backend lacks op fn */
#define NEED_OP(fn)                                                            \
    do {                                                                       \
        if (!ctx->ops->fn)                                                     \
            FATAL("op " #fn " is not implemented on backend %s", ctx->ops->name); \
    } while (0)

/* an optional entry (op_table.h): runs it and returns from the op when the
   backend fills it; else the op goes on to compose it from the plain ops */
#define CALL_OPTIONAL(fn, ...)                                                 \
    do {                                                                       \
        if (ctx->ops->fn) {                                                    \
            ctx->ops->fn(__VA_ARGS__);                                         \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CALL(fn, ...)                                                          \
    do {                                                                       \
        NEED_OP(fn);                                                           \
        ctx->ops->fn(__VA_ARGS__);                                             \
    } while (0)

/* ---- contexts and memory ------------------------------------------------- */

void ctx_init_cpu(Ctx *ctx, int threads)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->backend = BACKEND_CPU;
    ctx->ops = &cpu_op_table;
    ctx->act_dtype = DT_F32;
    ctx->threads = threads;
}

int ctx_cuda_available(void)
{
#ifdef DEEDIFF_CUDA
    return cuda_device_count() > 0;
#else
    return 0;
#endif
}

const char *ctx_device_name(const Ctx *ctx)
{
#ifdef DEEDIFF_CUDA
    if (ctx->backend == BACKEND_CUDA) return cuda_device_name(ctx);
#endif
    (void)ctx;
    return NULL;
}

int ctx_init_cuda(Ctx *ctx, int device)
{
    memset(ctx, 0, sizeof *ctx);
#ifdef DEEDIFF_CUDA
    int rc = cuda_ctx_init(ctx, device);
    ctx->precision = PRECISION_BF16;
    return rc;
#else
    (void)device;
    return err_set("--backend cuda: this deediff was built without CUDA (no nvcc found at build time)");
#endif
}

const char *precision_name(Precision p) { return p == PRECISION_BF16 ? "bf16" : "fp32"; }

int precision_from_name(const char *name, Precision *out)
{
    if (!strcmp(name, "fp32")) *out = PRECISION_FP32;
    else if (!strcmp(name, "bf16")) *out = PRECISION_BF16;
    else return -1;
    return 0;
}

int ctx_set_precision(Ctx *ctx, Precision p)
{
    if (ctx->backend == BACKEND_CUDA && p != PRECISION_BF16)
        return err_set("--precision %s: the CUDA backend computes in bf16 only", precision_name(p));
    if (ctx->backend == BACKEND_CPU && !cpu_precision_supported(p))
        return err_set("--precision %s: this CPU has no native bf16 products (neither avx512_bf16 nor "
                       "amx_bf16 among its flags); use fp32", precision_name(p));
    ctx->precision = p;
    return 0;
}

void ctx_destroy(Ctx *ctx)
{
    if (ctx->workers) cpu_split_destroy(ctx);
    if (ctx->scratch) ctx->ops->free(ctx, ctx->scratch);
    if (ctx->ops && ctx->ops->destroy) ctx->ops->destroy(ctx);
    memset(ctx, 0, sizeof *ctx);
}

void *ctx_alloc(Ctx *ctx, size_t bytes) { return ctx->ops->alloc(ctx, bytes); }
void ctx_free(Ctx *ctx, void *p) { if (p) ctx->ops->free(ctx, p); }
void ctx_upload(Ctx *ctx, void *dst, const void *src, size_t n) { ctx->ops->upload(ctx, dst, src, n); }
void ctx_download(Ctx *ctx, void *dst, const void *src, size_t n) { ctx->ops->download(ctx, dst, src, n); }
void ctx_copy(Ctx *ctx, void *dst, const void *src, size_t n) { ctx->ops->copy(ctx, dst, src, n); }
void ctx_zero(Ctx *ctx, Tensor t) { if (tensor_present(t)) ctx->ops->zero(ctx, t.data, tensor_bytes(t)); }
void ctx_sync(Ctx *ctx) { ctx->ops->sync(ctx); }

void *ctx_stream(Ctx *ctx)
{
#ifdef DEEDIFF_CUDA
    if (ctx->backend == BACKEND_CUDA) return cuda_ctx_stream(ctx);
#endif
    (void)ctx;
    return NULL;
}

void *ctx_scratch(Ctx *ctx, size_t bytes)
{
    if (bytes > ctx->scratch_bytes) {
        if (ctx->scratch) ctx->ops->free(ctx, ctx->scratch);
        ctx->scratch = ctx->ops->alloc(ctx, bytes);
        ctx->scratch_bytes = bytes;
    }
    return ctx->scratch;
}

int ctx_split_threads(const Ctx *ctx)
{
    return ctx->backend == BACKEND_CPU && ctx->precision == PRECISION_FP32 ? cpu_split_threads(ctx) : 1;
}

int ctx_split_pieces(const Ctx *ctx, int most, int items)
{
    int n = most < items ? most : items, threads = ctx_split_threads(ctx);
    return n < threads ? n : threads;
}

void ctx_split_run(Ctx *ctx, int n, CtxPieceFn fn, void *user)
{
    CHECK(n >= 1 && n <= ctx_split_threads(ctx), "ctx_split_run: %d pieces, at most %d on this context", n,
          ctx_split_threads(ctx));
    if (n == 1) fn(ctx, 0, user);
    else cpu_split_run(ctx, n, fn, user);
}

/* ---- linear ------------------------------------------------------------------ */

static void check_linear(const char *op, Tensor out, Tensor in, Tensor w, Tensor b)
{
    need_ndim(op, w, 2);
    need(tensor_cols(in) == w.shape[1], op, "in's last dim != w's in-features", in, w);
    need(tensor_cols(out) == w.shape[0] && tensor_rows(out) == tensor_rows(in), op,
         "out is not [M, N]", out, in);
    if (tensor_present(b)) need(tensor_numel(b) == w.shape[0], op, "bias size != N", b, w);
}

static void check_linear_backward(const char *op, Tensor din, Tensor dw, Tensor db, Tensor dout,
                                  Tensor in, Tensor w)
{
    need_ndim(op, w, 2);
    need(tensor_cols(in) == w.shape[1] && tensor_cols(dout) == w.shape[0] &&
         tensor_rows(dout) == tensor_rows(in), op, "dout/in do not fit w", dout, in);
    same_shape_opt(op, din, in);
    same_shape_opt(op, dw, w);
    if (tensor_present(db)) need(tensor_numel(db) == w.shape[0], op, "db size != N", db, w);
}

void op_linear_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b)
{
    check_linear("linear_forward", out, in, w, b);
    CALL(linear_forward, ctx, out, in, w, b);
}

void op_linear_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                        Tensor in, Tensor w)
{
    check_linear_backward("linear_backward", din, dw, db, dout, in, w);
    CALL(linear_backward, ctx, din, dw, db, dout, in, w);
}

void op_linear_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                            Tensor in, Tensor w)
{
    check_linear_backward("linear_backward_set", din, dw, db, dout, in, w);
    CALL_OPTIONAL(linear_backward_set, ctx, din, dw, db, dout, in, w);
    ctx_zero(ctx, din);  /* the fallback: zeroed, then accumulated into */
    op_linear_backward(ctx, din, dw, db, dout, in, w);
}

/* ---- fused linear layers ---------------------------------------------------- */

void op_linear_gelu_forward(Ctx *ctx, Tensor out, Tensor pre, Tensor in, Tensor w, Tensor b)
{
    const char *op = "linear_gelu_forward";
    check_linear(op, out, in, w, b);
    same_shape_opt(op, pre, out);
    CALL_OPTIONAL(linear_gelu_forward, ctx, out, pre, in, w, b);
    Tensor p = tensor_present(pre) ? pre : out;
    op_linear_forward(ctx, p, in, w, b);
    op_gelu_forward(ctx, out, p);
}

static void linear_gelu_backward(Ctx *ctx, int set, Tensor din, Tensor dw, Tensor db,
                                 Tensor dpre, Tensor dout, Tensor in, Tensor w, Tensor pre)
{
    const char *op = set ? "linear_gelu_backward_set" : "linear_gelu_backward";
    check_linear_backward(op, din, dw, db, dout, in, w);
    same_shape(op, pre, dout);
    same_shape(op, dpre, dout);
    void (*fused)(Ctx *, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) =
        set ? ctx->ops->linear_gelu_backward_set : ctx->ops->linear_gelu_backward;
    if (fused) {
        fused(ctx, din, dw, db, dpre, dout, in, w, pre);
        return;
    }
    ctx_zero(ctx, dpre);
    op_gelu_backward(ctx, dpre, dout, pre);
    (set ? op_linear_backward_set : op_linear_backward)(ctx, din, dw, db, dpre, in, w);
}

void op_linear_gelu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                             Tensor dout, Tensor in, Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 0, din, dw, db, dpre, dout, in, w, pre);
}

void op_linear_gelu_backward_set(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre,
                                 Tensor dout, Tensor in, Tensor w, Tensor pre)
{
    linear_gelu_backward(ctx, 1, din, dw, db, dpre, dout, in, w, pre);
}

void op_linear_residual_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Tensor res)
{
    const char *op = "linear_residual_forward";
    check_linear(op, out, in, w, b);
    same_shape(op, res, out);
    need(res.data != out.data, op, "out must not be res", out, res);
    CALL_OPTIONAL(linear_residual_forward, ctx, out, in, w, b, res);
    op_linear_forward(ctx, out, in, w, b);
    op_add_forward(ctx, out, out, res);
}

void op_linear_residual_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dres,
                                 Tensor dout, Tensor in, Tensor w)
{
    op_linear_backward(ctx, din, dw, db, dout, in, w);
    op_accumulate(ctx, dres, dout);
}

/* ---- layernorm --------------------------------------------------------------- */

void op_layernorm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in,
                          Tensor w, Tensor b, float eps)
{
    const char *op = "layernorm_forward";
    same_shape(op, out, in);
    need(tensor_numel(w) == tensor_cols(in) && tensor_numel(b) == tensor_cols(in), op,
         "w/b size != C", w, in);
    need(tensor_numel(mean) == tensor_rows(in) && tensor_numel(rstd) == tensor_rows(in), op,
         "mean/rstd size != M", mean, in);
    CALL(layernorm_forward, ctx, out, mean, rstd, in, w, b, eps);
}

void op_layernorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout,
                           Tensor in, Tensor w, Tensor mean, Tensor rstd)
{
    const char *op = "layernorm_backward";
    same_shape(op, dout, in);
    same_shape_opt(op, din, in);
    same_shape_opt(op, dw, w);
    same_shape_opt(op, db, w);
    need(tensor_numel(mean) == tensor_rows(in) && tensor_numel(rstd) == tensor_rows(in), op,
         "mean/rstd size != M", mean, in);
    CALL(layernorm_backward, ctx, din, dw, db, dout, in, w, mean, rstd);
}

/* ---- attention ------------------------------------------------------------- */

static void check_attention(const char *op, Tensor out, Tensor probs, Tensor qkv, int heads)
{
    need_ndim(op, qkv, 3);
    need_ndim(op, out, 3);
    int64_t B = qkv.shape[0], T = qkv.shape[1], A = out.shape[2];
    need(out.shape[0] == B && out.shape[1] == T && qkv.shape[2] == 3 * A, op,
         "qkv is not [B, T, 3A] for out [B, T, A]", qkv, out);
    if (heads <= 0 || A % heads) FATAL("%s: %d heads do not divide width %lld", op, heads, (long long)A);
    if (tensor_present(probs)) {
        need_ndim(op, probs, 4);
        need(probs.shape[0] == B && probs.shape[1] == heads && probs.shape[2] == T &&
             probs.shape[3] == T, op, "probs is not [B, H, T, T]", probs, qkv);
    }
}

void op_attention_forward(Ctx *ctx, Tensor out, Tensor probs, Tensor qkv, int heads)
{
    check_attention("attention_forward", out, probs, qkv, heads);
    CALL(attention_forward, ctx, out, probs, qkv, heads);
}

static void check_attention_backward(const char *op, Tensor dqkv, Tensor dprobs, Tensor dout,
                                     Tensor qkv, Tensor probs, int heads)
{
    if (!tensor_present(probs)) FATAL("%s: needs the probs saved by the forward pass", op);
    check_attention(op, dout, probs, qkv, heads);
    same_shape(op, dprobs, probs);
    same_shape_opt(op, dqkv, qkv);
}

void op_attention_backward(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv,
                           Tensor probs, int heads)
{
    check_attention_backward("attention_backward", dqkv, dprobs, dout, qkv, probs, heads);
    CALL(attention_backward, ctx, dqkv, dprobs, dout, qkv, probs, heads);
}

void op_attention_backward_set(Ctx *ctx, Tensor dqkv, Tensor dprobs, Tensor dout, Tensor qkv,
                               Tensor probs, int heads)
{
    check_attention_backward("attention_backward_set", dqkv, dprobs, dout, qkv, probs, heads);
    CALL_OPTIONAL(attention_backward_set, ctx, dqkv, dprobs, dout, qkv, probs, heads);
    ctx_zero(ctx, dqkv);  /* the fallback: zeroed, then accumulated into */
    CALL(attention_backward, ctx, dqkv, dprobs, dout, qkv, probs, heads);
}

/* ---- elementwise ------------------------------------------------------------ */

void op_gelu_forward(Ctx *ctx, Tensor out, Tensor in)
{
    same_numel("gelu_forward", out, in);
    CALL(gelu_forward, ctx, out, in);
}
void op_gelu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    same_numel3("gelu_backward", din, dout, in);
    CALL(gelu_backward, ctx, din, dout, in);
}
void op_sigmoid_forward(Ctx *ctx, Tensor out, Tensor in)
{
    same_numel("sigmoid_forward", out, in);
    CALL(sigmoid_forward, ctx, out, in);
}
void op_sigmoid_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    same_numel3("sigmoid_backward", din, dout, in);
    CALL(sigmoid_backward, ctx, din, dout, in);
}
void op_silu_forward(Ctx *ctx, Tensor out, Tensor in)
{
    same_numel("silu_forward", out, in);
    CALL(silu_forward, ctx, out, in);
}
void op_silu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    same_numel3("silu_backward", din, dout, in);
    CALL(silu_backward, ctx, din, dout, in);
}
void op_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    same_numel("add_forward", out, a);
    same_numel("add_forward", a, b);
    CALL(add_forward, ctx, out, a, b);
}
void op_accumulate(Ctx *ctx, Tensor dst, Tensor src)
{
    if (!tensor_present(dst)) return;
    same_numel("accumulate", dst, src);
    CALL(accumulate, ctx, dst, src);
}
void op_add_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout)
{
    op_accumulate(ctx, da, dout);
    op_accumulate(ctx, db, dout);
}
void op_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row)
{
    const char *op = "add_bcast_forward";
    same_shape(op, out, in);
    need(in.ndim >= 1 && tensor_numel(in) % tensor_numel(row) == 0 &&
         tensor_cols(in) == tensor_cols(row), op, "row does not tile in", in, row);
    CALL(add_bcast_forward, ctx, out, in, row);
}
void op_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout)
{
    const char *op = "add_bcast_backward";
    same_shape_opt(op, din, dout);
    if (tensor_present(drow))
        need(tensor_numel(dout) % tensor_numel(drow) == 0, op, "row does not tile dout", dout, drow);
    CALL(add_bcast_backward, ctx, din, drow, dout);
}
/* v is [B,D] for an x of [B,T,D] */
static void need_per_image_row(const char *op, Tensor x, Tensor v)
{
    need_ndim(op, x, 3);
    need_ndim(op, v, 2);
    need(v.shape[0] == x.shape[0] && v.shape[1] == x.shape[2], op, "v is not [B,D] of [B,T,D]", x, v);
    need(v.dtype == DT_F32, op, "v must be F32", x, v);
}
void op_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v)
{
    const char *op = "add_per_image_forward";
    same_shape(op, out, in);
    need_per_image_row(op, in, v);
    CALL(add_per_image_forward, ctx, out, in, v);
}
void op_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout)
{
    const char *op = "add_per_image_backward";
    same_shape_opt(op, din, dout);
    if (tensor_present(dv)) need_per_image_row(op, dout, dv);
    CALL(add_per_image_backward, ctx, din, dv, dout);
}

/* ---- concat -------------------------------------------------------------------- */

void op_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    const char *op = "concat_forward";
    need(tensor_rows(a) == tensor_rows(b) && tensor_rows(out) == tensor_rows(a) &&
         tensor_cols(out) == tensor_cols(a) + tensor_cols(b), op, "out is not [M, Ca+Cb]", out, a);
    CALL(concat_forward, ctx, out, a, b);
}
void op_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout)
{
    const char *op = "concat_backward";
    if (tensor_present(da) && tensor_present(db))
        need(tensor_cols(dout) == tensor_cols(da) + tensor_cols(db), op, "dout is not [M, Ca+Cb]", dout, da);
    CALL(concat_backward, ctx, da, db, dout);
}

/* ---- token slices ------------------------------------------------------------- */

static void check_slice(const char *op, Tensor part, Tensor whole, int at)
{
    need_ndim(op, part, 3);
    need_ndim(op, whole, 3);
    need(part.shape[0] == whole.shape[0] && part.shape[2] == whole.shape[2] && at >= 0 &&
         at + part.shape[1] <= whole.shape[1], op, "slice does not fit", part, whole);
}
/* the length of a row index list: a 1-d I64 tensor */
static int64_t index_count(const char *op, Tensor rows, Tensor t)
{
    need(rows.dtype == DT_I64 && rows.ndim == 1, op, "row indices must be a 1-d I64 tensor", rows, t);
    return rows.shape[0];
}

void op_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows)
{
    const char *op = "rows_copy";
    need(out.ndim >= 1 && in.ndim >= 1 && out.dtype == in.dtype && tensor_item_numel(out) == tensor_item_numel(in), op,
         "out and in differ in dtype or row size", out, in);
    int has_out = tensor_present(out_rows), has_in = tensor_present(in_rows);
    int64_t n_out = has_out ? index_count(op, out_rows, out) : -1, n_in = has_in ? index_count(op, in_rows, in) : -1;
    int64_t n = has_out ? n_out : has_in ? n_in : out.shape[0];
    need(!has_out || !has_in || n_in == n_out, op, "the index lists differ in length", out_rows, in_rows);
    need(has_out || n <= out.shape[0], op, "more rows than out has", out, in);
    need(has_in || n <= in.shape[0], op, "more rows than in has", out, in);
    if (out.data == in.data)
        need(!has_out && has_in && n <= in.shape[0], op, "in place needs in_rows alone (a compaction)", out, in);
    if (n == 0 || tensor_item_numel(in) == 0) return;
    CALL(rows_copy, ctx, out, out_rows, in, in_rows);
}

/* out is F32 [rows of in], one score a row */
static void check_row_scores(const char *op, Tensor out, Tensor in)
{
    need(in.ndim >= 1 && out.ndim == 1 && out.dtype == DT_F32 && out.shape[0] == in.shape[0], op,
         "out is not F32 [rows] of in", out, in);
}

void op_row_mean(Ctx *ctx, Tensor out, Tensor in)
{
    const char *op = "row_mean";
    check_row_scores(op, out, in);
    need(in.dtype == DT_F32 && tensor_item_numel(in) > 0, op, "in must be F32 with non-empty rows", out, in);
    if (out.shape[0] > 0) CALL(row_mean, ctx, out, in);
}

void op_row_cosine_distance(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    const char *op = "row_cosine_distance";
    check_row_scores(op, out, a);
    same_shape(op, a, b);
    need(a.dtype == b.dtype && (a.dtype == DT_F32 || a.dtype == ctx->act_dtype), op,
         "a and b must share a dtype, F32 or the context's activations'", a, b);
    if (out.shape[0] > 0) CALL(row_cosine_distance, ctx, out, a, b);
}

void op_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at)
{
    check_slice("token_slice_forward", out, in, at);
    CALL(token_slice_forward, ctx, out, in, at);
}
void op_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at)
{
    if (!tensor_present(din)) return;
    check_slice("token_slice_backward", dout, din, at);
    CALL(token_slice_backward, ctx, din, dout, at);
}
void op_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at)
{
    check_slice("token_place_forward", src, seq, at);
    CALL(token_place_forward, ctx, seq, src, at);
}
void op_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at)
{
    if (!tensor_present(dsrc)) return;
    check_slice("token_place_backward", dsrc, dseq, at);
    CALL(token_place_backward, ctx, dsrc, dseq, at);
}

/* ---- conv2d --------------------------------------------------------------------- */

static void check_conv(const char *op, Tensor out, Tensor in, Tensor w, Conv2dParams p)
{
    need_ndim(op, in, 4);
    need_ndim(op, w, 4);
    need_ndim(op, out, 4);
    if (p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0)
        FATAL("%s: bad stride/padding", op);
    int64_t Ho = (in.shape[2] + 2 * p.pad_h - w.shape[2]) / p.stride_h + 1;
    int64_t Wo = (in.shape[3] + 2 * p.pad_w - w.shape[3]) / p.stride_w + 1;
    need(in.shape[1] == w.shape[1], op, "in channels != w's", in, w);
    need(out.shape[0] == in.shape[0] && out.shape[1] == w.shape[0] && out.shape[2] == Ho &&
         out.shape[3] == Wo, op, "out is not [B, Co, Ho, Wo]", out, in);
}
void op_conv2d_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Conv2dParams p)
{
    check_conv("conv2d_forward", out, in, w, p);
    if (tensor_present(b)) need(tensor_numel(b) == w.shape[0], "conv2d_forward", "bias size != Co", b, w);
    CALL(conv2d_forward, ctx, out, in, w, b, p);
}
void op_conv2d_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                        Tensor w, Conv2dParams p)
{
    check_conv("conv2d_backward", dout, in, w, p);
    same_shape_opt("conv2d_backward", din, in);
    same_shape_opt("conv2d_backward", dw, w);
    if (tensor_present(db)) need(tensor_numel(db) == w.shape[0], "conv2d_backward", "db size != Co", db, w);
    CALL(conv2d_backward, ctx, din, dw, db, dout, in, w, p);
}

void op_conv2d_relu_forward(Ctx *ctx, Tensor out, Tensor in, Tensor w, Tensor b, Conv2dParams p)
{
    const char *op = "conv2d_relu_forward";
    check_conv(op, out, in, w, p);
    if (tensor_present(b)) need(tensor_numel(b) == w.shape[0], op, "bias size != Co", b, w);
    CALL_OPTIONAL(conv2d_relu_forward, ctx, out, in, w, b, p);
    op_conv2d_forward(ctx, out, in, w, b, p);
    op_relu_forward(ctx, out, out);
}

void op_conv2d_relu_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dpre, Tensor dout,
                             Tensor in, Tensor w, Tensor out, Conv2dParams p)
{
    const char *op = "conv2d_relu_backward";
    check_conv(op, dout, in, w, p);
    same_shape(op, out, dout);
    same_shape(op, dpre, dout);
    ctx_zero(ctx, dpre);
    op_relu_backward(ctx, dpre, dout, out);  /* out > 0 exactly where the ReLU's input was */
    op_conv2d_backward(ctx, din, dw, db, dpre, in, w, p);
}

/* ---- patches -------------------------------------------------------------------- */

static void check_patches(const char *op, Tensor tokens, Tensor img, int p)
{
    need_ndim(op, img, 4);
    need_ndim(op, tokens, 3);
    int64_t B = img.shape[0], C = img.shape[1], H = img.shape[2], W = img.shape[3];
    need(p > 0 && H % p == 0 && W % p == 0 && tokens.shape[0] == B &&
         tokens.shape[1] == (H / p) * (W / p) && tokens.shape[2] == C * p * p, op,
         "tokens is not [B, (H/p)(W/p), C p p]", tokens, img);
}
void op_patchify_forward(Ctx *ctx, Tensor tokens, Tensor img, int p, PatchLayout l)
{
    check_patches("patchify_forward", tokens, img, p);
    CALL(patchify_forward, ctx, tokens, img, p, l);
}
void op_patchify_backward(Ctx *ctx, Tensor dimg, Tensor dtokens, int p, PatchLayout l)
{
    if (!tensor_present(dimg)) return;
    check_patches("patchify_backward", dtokens, dimg, p);
    CALL(patchify_backward, ctx, dimg, dtokens, p, l);
}
void op_unpatchify_forward(Ctx *ctx, Tensor img, Tensor tokens, int p, PatchLayout l)
{
    check_patches("unpatchify_forward", tokens, img, p);
    CALL(unpatchify_forward, ctx, img, tokens, p, l);
}
void op_unpatchify_backward(Ctx *ctx, Tensor dtokens, Tensor dimg, int p, PatchLayout l)
{
    if (!tensor_present(dtokens)) return;
    check_patches("unpatchify_backward", dtokens, dimg, p);
    CALL(unpatchify_backward, ctx, dtokens, dimg, p, l);
}

/* ---- embeddings ------------------------------------------------------------------ */

void op_timestep_embedding_forward(Ctx *ctx, Tensor out, Tensor t)
{
    need(tensor_rows(out) == tensor_numel(t), "timestep_embedding_forward", "out is not [B, D]", out, t);
    CALL(timestep_embedding_forward, ctx, out, t);
}
void op_timestep_embedding_backward(Ctx *ctx, Tensor dt, Tensor dout, Tensor t)
{
    if (!tensor_present(dt)) return;
    need(tensor_rows(dout) == tensor_numel(t), "timestep_embedding_backward", "dout is not [B, D]", dout, t);
    same_numel("timestep_embedding_backward", dt, t);
    CALL(timestep_embedding_backward, ctx, dt, dout, t);
}
void op_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table)
{
    const char *op = "embedding_forward";
    need(ids.dtype == DT_I64, op, "ids must be I64", ids, table);
    need_ndim(op, table, 2);
    need(tensor_rows(out) == tensor_numel(ids) && tensor_cols(out) == table.shape[1], op,
         "out is not [B, D]", out, table);
    CALL(embedding_forward, ctx, out, ids, table);
}
void op_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids)
{
    if (!tensor_present(dtable)) return;
    need(ids.dtype == DT_I64 && tensor_rows(dout) == tensor_numel(ids) &&
         tensor_cols(dout) == tensor_cols(dtable), "embedding_backward", "shapes do not fit", dout, dtable);
    CALL(embedding_backward, ctx, dtable, dout, ids);
}

/* ---- loss -------------------------------------------------------------------------- */

float op_mse_forward(Ctx *ctx, Tensor pred, Tensor target)
{
    same_numel("mse_forward", pred, target);
    NEED_OP(mse_forward);
    return ctx->ops->mse_forward(ctx, pred, target);
}
void op_mse_backward(Ctx *ctx, Tensor dpred, Tensor pred, Tensor target, float dloss)
{
    same_numel("mse_backward", pred, target);
    same_numel("mse_backward", dpred, pred);
    CALL(mse_backward, ctx, dpred, pred, target, dloss);
}

UncertaintyLoss op_uncertainty_loss_forward(Ctx *ctx, Tensor g, Tensor eps, Tensor u)
{
    same_numel("uncertainty_loss_forward", g, eps);
    same_numel("uncertainty_loss_forward", u, g);
    NEED_OP(uncertainty_loss_forward);
    return ctx->ops->uncertainty_loss_forward(ctx, g, eps, u);
}
void op_uncertainty_loss_backward(Ctx *ctx, Tensor dg, Tensor du, Tensor g, Tensor eps,
                                  Tensor u, float w_u, float w_ual, float w_ual_u)
{
    same_numel("uncertainty_loss_backward", g, eps);
    same_numel("uncertainty_loss_backward", u, g);
    if (tensor_present(dg)) same_numel("uncertainty_loss_backward", dg, g);
    if (tensor_present(du)) same_numel("uncertainty_loss_backward", du, g);
    CALL(uncertainty_loss_backward, ctx, dg, du, g, eps, u, w_u, w_ual, w_ual_u);
}

/* ---- sampler arithmetic -------------------------------------------------------------- */

static void sampler_tensor(const char *op, Tensor t)
{
    if (t.dtype != DT_F32 || t.ndim < 1 || t.shape[0] < 1)
        FATAL("%s: expected an F32 [B, ...] tensor, got %s %s", op, dtype_name(t.dtype), SHAPE(t));
}
void op_axpby(Ctx *ctx, Tensor out, const float *a, Tensor x, const float *b, Tensor y)
{
    const char *op = "axpby";
    sampler_tensor(op, out);
    same_shape(op, out, x);
    same_shape(op, out, y);
    need(x.dtype == DT_F32 && y.dtype == DT_F32, op, "x and y must be F32", x, y);
    if (!a || !b) FATAL("%s: coefficient arrays must not be NULL", op);
    CALL(axpby, ctx, out, a, x, b, y);
}
void op_randn(Ctx *ctx, Tensor out, const int64_t *ids, uint64_t seed, uint32_t purpose,
              uint32_t step)
{
    sampler_tensor("randn", out);
    if (!ids) FATAL("randn: ids must not be NULL");
    CALL(randn, ctx, out, ids, seed, purpose, step);
}
void op_add_randn(Ctx *ctx, Tensor out, const float *c, const int64_t *ids, uint64_t seed,
                  uint32_t purpose, uint32_t step)
{
    sampler_tensor("add_randn", out);
    if (!c || !ids) FATAL("add_randn: coefficients and ids must not be NULL");
    CALL(add_randn, ctx, out, c, ids, seed, purpose, step);
}

/* ---- optimizer updates (no backward) ----------------------------------------------- */

static void need_f32(const char *op, Tensor t)
{
    if (t.dtype != DT_F32) FATAL("%s: expected F32, got %s %s", op, dtype_name(t.dtype), SHAPE(t));
}

void op_adamw_step(Ctx *ctx, Tensor params, Tensor grads, Tensor m, Tensor v, AdamWParams p)
{
    const char *op = "adamw_step";
    need_f32(op, params); need_f32(op, grads); need_f32(op, m); need_f32(op, v);
    same_numel(op, params, grads);
    same_numel(op, params, m);
    same_numel(op, params, v);
    if (p.step < 1) FATAL("%s: step %lld, must be >= 1", op, (long long)p.step);
    CALL(adamw_step, ctx, params, grads, m, v, p);
}
void op_ema_update(Ctx *ctx, Tensor ema, Tensor params, double decay)
{
    need_f32("ema_update", ema); need_f32("ema_update", params);
    same_numel("ema_update", ema, params);
    CALL(ema_update, ctx, ema, params, decay);
}
double op_sum_squares(Ctx *ctx, Tensor x)
{
    need_f32("sum_squares", x);
    NEED_OP(sum_squares);
    return ctx->ops->sum_squares(ctx, x);
}
void op_scale(Ctx *ctx, Tensor x, float s)
{
    need_f32("scale", x);
    CALL(scale, ctx, x, s);
}
int op_has_nonfinite(Ctx *ctx, Tensor x)
{
    need_f32("has_nonfinite", x);
    NEED_OP(has_nonfinite);
    return ctx->ops->has_nonfinite(ctx, x);
}

/* ---- vision ops (FID Inception) -------------------------------------------------- */

static int64_t pool_out_size(int64_t n, int k, int s, int pad) { return (n + 2 * pad - k) / s + 1; }

static void check_pool(const char *op, Tensor out, Tensor in, Pool2dParams p)
{
    need_ndim(op, in, 4);
    need_ndim(op, out, 4);
    if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 ||
        p.pad_w < 0 || 2 * p.pad_h > p.kernel_h || 2 * p.pad_w > p.kernel_w)
        FATAL("%s: bad kernel/stride/padding (padding must be at most half the kernel)", op);
    int64_t Ho = pool_out_size(in.shape[2], p.kernel_h, p.stride_h, p.pad_h);
    int64_t Wo = pool_out_size(in.shape[3], p.kernel_w, p.stride_w, p.pad_w);
    need(Ho >= 1 && Wo >= 1 && out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1] &&
         out.shape[2] == Ho && out.shape[3] == Wo, op, "out is not [B, C, Ho, Wo]", out, in);
}
void op_max_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    check_pool("max_pool2d_forward", out, in, p);
    CALL(max_pool2d_forward, ctx, out, in, p);
}
void op_max_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in, Pool2dParams p)
{
    if (!tensor_present(din)) return;
    check_pool("max_pool2d_backward", dout, in, p);
    same_shape("max_pool2d_backward", din, in);
    CALL(max_pool2d_backward, ctx, din, dout, in, p);
}
void op_avg_pool2d_forward(Ctx *ctx, Tensor out, Tensor in, Pool2dParams p)
{
    check_pool("avg_pool2d_forward", out, in, p);
    CALL(avg_pool2d_forward, ctx, out, in, p);
}
void op_avg_pool2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pool2dParams p)
{
    if (!tensor_present(din)) return;
    check_pool("avg_pool2d_backward", dout, din, p);
    CALL(avg_pool2d_backward, ctx, din, dout, p);
}

static void check_global_pool(const char *op, Tensor out, Tensor in)
{
    need_ndim(op, in, 4);
    need_ndim(op, out, 2);
    need(out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1], op, "out is not [B, C]", out, in);
}
void op_global_avg_pool_forward(Ctx *ctx, Tensor out, Tensor in)
{
    check_global_pool("global_avg_pool_forward", out, in);
    CALL(global_avg_pool_forward, ctx, out, in);
}
void op_global_avg_pool_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    if (!tensor_present(din)) return;
    check_global_pool("global_avg_pool_backward", dout, din);
    CALL(global_avg_pool_backward, ctx, din, dout);
}

static void check_token_mean(const char *op, Tensor out, Tensor in)
{
    need_ndim(op, in, 3);
    need_ndim(op, out, 2);
    need(out.shape[0] == in.shape[0] && out.shape[1] == in.shape[2], op, "out is not [B, D] of in [B, T, D]", out, in);
}
void op_token_mean_forward(Ctx *ctx, Tensor out, Tensor in)
{
    check_token_mean("token_mean_forward", out, in);
    CALL(token_mean_forward, ctx, out, in);
}
void op_token_mean_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    if (!tensor_present(din)) return;
    check_token_mean("token_mean_backward", dout, din);
    CALL(token_mean_backward, ctx, din, dout);
}

static void check_resize(const char *op, Tensor out, Tensor in)
{
    need_ndim(op, in, 4);
    need_ndim(op, out, 4);
    need(out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1] && out.shape[2] >= 1 &&
         out.shape[3] >= 1 && in.shape[2] >= 1 && in.shape[3] >= 1, op,
         "out is not [B, C, Ho, Wo] of in's B and C", out, in);
}
void op_resize_bilinear_forward(Ctx *ctx, Tensor out, Tensor in)
{
    check_resize("resize_bilinear_forward", out, in);
    CALL(resize_bilinear_forward, ctx, out, in);
}
void op_resize_bilinear_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    if (!tensor_present(din)) return;
    check_resize("resize_bilinear_backward", dout, din);
    CALL(resize_bilinear_backward, ctx, din, dout);
}

static void check_bn(const char *op, Tensor in, Tensor mean, Tensor var, Tensor w)
{
    need_ndim(op, in, 4);
    need(tensor_numel(mean) == in.shape[1] && tensor_numel(var) == in.shape[1] &&
         tensor_numel(w) == in.shape[1], op, "mean, var, w are not [C]", mean, in);
}
void op_batchnorm_forward(Ctx *ctx, Tensor out, Tensor in, Tensor mean, Tensor var, Tensor w,
                          Tensor b, float eps)
{
    check_bn("batchnorm_forward", in, mean, var, w);
    same_numel("batchnorm_forward", b, w);
    same_shape("batchnorm_forward", out, in);
    CALL(batchnorm_forward, ctx, out, in, mean, var, w, b, eps);
}
void op_batchnorm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                           Tensor mean, Tensor var, Tensor w, float eps)
{
    check_bn("batchnorm_backward", in, mean, var, w);
    same_shape("batchnorm_backward", dout, in);
    same_shape_opt("batchnorm_backward", din, in);
    if (tensor_present(dw)) same_numel("batchnorm_backward", dw, w);
    if (tensor_present(db)) same_numel("batchnorm_backward", db, w);
    CALL(batchnorm_backward, ctx, din, dw, db, dout, in, mean, var, w, eps);
}

void op_relu_forward(Ctx *ctx, Tensor out, Tensor in)
{
    same_numel("relu_forward", out, in);
    CALL(relu_forward, ctx, out, in);
}
void op_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    if (!tensor_present(din)) return;
    same_numel3("relu_backward", din, dout, in);
    CALL(relu_backward, ctx, din, dout, in);
}
void op_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b)
{
    same_numel("affine_forward", out, in);
    CALL(affine_forward, ctx, out, in, a, b);
}
void op_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a)
{
    if (!tensor_present(din)) return;
    same_numel("affine_backward", din, dout);
    CALL(affine_backward, ctx, din, dout, a);
}

/* ---- classifier loss (FD-FMNIST feature network) ------------------------------ */

static void check_cross_entropy(const char *op, Tensor logits, Tensor labels)
{
    need_ndim(op, logits, 2);
    need_ndim(op, labels, 1);
    need(logits.shape[0] == labels.shape[0], op, "logits [B,K] and labels [B] disagree on B", logits, labels);
    need(logits.shape[1] >= 1, op, "no classes", logits, labels);
    if (logits.dtype != DT_F32 || labels.dtype != DT_I64)
        FATAL("%s: expected F32 logits and I64 labels", op);
}
float op_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels)
{
    check_cross_entropy("cross_entropy_forward", logits, labels);
    NEED_OP(cross_entropy_forward);
    return ctx->ops->cross_entropy_forward(ctx, logits, labels);
}
void op_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels, float dloss)
{
    if (!tensor_present(dlogits)) return;
    check_cross_entropy("cross_entropy_backward", logits, labels);
    same_shape("cross_entropy_backward", dlogits, logits);
    CALL(cross_entropy_backward, ctx, dlogits, logits, labels, dloss);
}

/* ---- latent-space ops (KL autoencoder) ----------------------------------------- */

static void check_group_norm(const char *op, Tensor in, Tensor mean, Tensor rstd, Tensor w, int groups)
{
    if (in.ndim < 2) FATAL("%s: expected in [B, C, ...], got %s", op, SHAPE(in));
    int64_t B = in.shape[0], C = in.shape[1];
    if (groups < 1 || C % groups) FATAL("%s: %d groups do not divide %lld channels", op, groups, (long long)C);
    need(tensor_numel(mean) == B * groups && tensor_numel(rstd) == B * groups, op,
         "mean/rstd are not [B, G]", mean, in);
    if (tensor_present(w)) need(tensor_numel(w) == C, op, "w is not [C]", w, in);
}
void op_group_norm_forward(Ctx *ctx, Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor w,
                           Tensor b, int groups, float eps)
{
    const char *op = "group_norm_forward";
    check_group_norm(op, in, mean, rstd, w, groups);
    same_shape(op, out, in);
    need(tensor_present(w) == tensor_present(b), op, "w and b must be both given or both none", w, b);
    if (tensor_present(b)) same_numel(op, b, w);
    CALL(group_norm_forward, ctx, out, mean, rstd, in, w, b, groups, eps);
}
void op_group_norm_backward(Ctx *ctx, Tensor din, Tensor dw, Tensor db, Tensor dout, Tensor in,
                            Tensor w, Tensor mean, Tensor rstd, int groups)
{
    const char *op = "group_norm_backward";
    check_group_norm(op, in, mean, rstd, w, groups);
    same_shape(op, dout, in);
    same_shape_opt(op, din, in);
    if ((tensor_present(dw) || tensor_present(db)) && !tensor_present(w))
        FATAL("%s: dw/db given for a group norm without affine parameters", op);
    if (tensor_present(dw)) same_numel(op, dw, w);
    if (tensor_present(db)) same_numel(op, db, w);
    CALL(group_norm_backward, ctx, din, dw, db, dout, in, w, mean, rstd, groups);
}

static void check_upsample(const char *op, Tensor out, Tensor in)
{
    need_ndim(op, in, 4);
    need_ndim(op, out, 4);
    need(out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1] && in.shape[2] >= 1 &&
         in.shape[3] >= 1 && out.shape[2] % in.shape[2] == 0 && out.shape[3] % in.shape[3] == 0 &&
         out.shape[2] >= in.shape[2] && out.shape[3] >= in.shape[3], op,
         "out is not [B, C, s_h H, s_w W] for integer factors", out, in);
}
void op_upsample_nearest_forward(Ctx *ctx, Tensor out, Tensor in)
{
    check_upsample("upsample_nearest_forward", out, in);
    CALL(upsample_nearest_forward, ctx, out, in);
}
void op_upsample_nearest_backward(Ctx *ctx, Tensor din, Tensor dout)
{
    if (!tensor_present(din)) return;
    check_upsample("upsample_nearest_backward", dout, din);
    CALL(upsample_nearest_backward, ctx, din, dout);
}

static void check_pad(const char *op, Tensor out, Tensor in, Pad2dParams p)
{
    need_ndim(op, in, 4);
    need_ndim(op, out, 4);
    if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) FATAL("%s: negative padding", op);
    need(out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1] &&
         out.shape[2] == in.shape[2] + p.top + p.bottom && out.shape[3] == in.shape[3] + p.left + p.right,
         op, "out is not [B, C, top+H+bottom, left+W+right]", out, in);
}
void op_pad2d_forward(Ctx *ctx, Tensor out, Tensor in, Pad2dParams p)
{
    check_pad("pad2d_forward", out, in, p);
    CALL(pad2d_forward, ctx, out, in, p);
}
void op_pad2d_backward(Ctx *ctx, Tensor din, Tensor dout, Pad2dParams p)
{
    if (!tensor_present(din)) return;
    check_pad("pad2d_backward", dout, din, p);
    CALL(pad2d_backward, ctx, din, dout, p);
}

static void check_gaussian(const char *op, Tensor z, Tensor moments, Tensor eps)
{
    need_ndim(op, moments, 4);
    need_ndim(op, eps, 4);
    need(eps.shape[0] >= 1, op, "an empty batch has no KL", moments, eps);
    need(eps.shape[0] == moments.shape[0] && 2 * eps.shape[1] == moments.shape[1] &&
         eps.shape[2] == moments.shape[2] && eps.shape[3] == moments.shape[3], op,
         "moments are not [B, 2C, h, w] for eps [B, C, h, w]", moments, eps);
    if (tensor_present(z)) same_shape(op, z, eps);
}
float op_gaussian_sample_forward(Ctx *ctx, Tensor z, Tensor moments, Tensor eps)
{
    check_gaussian("gaussian_sample_forward", z, moments, eps);
    NEED_OP(gaussian_sample_forward);
    return ctx->ops->gaussian_sample_forward(ctx, z, moments, eps);
}
void op_gaussian_sample_backward(Ctx *ctx, Tensor dmoments, Tensor dz, Tensor moments, Tensor eps,
                                 float kl_weight)
{
    check_gaussian("gaussian_sample_backward", dz, moments, eps);
    same_shape("gaussian_sample_backward", dmoments, moments);
    CALL(gaussian_sample_backward, ctx, dmoments, dz, moments, eps, kl_weight);
}
