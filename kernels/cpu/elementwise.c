/*
 * elementwise.c: adds, broadcast adds, concatenation, token slices and row
 * copies.
 *
 * All of these move memory and do at most one add per float, so the only
 * goals are streaming loops that vectorise and an even split across threads
 * (contiguous blocks, so threads meet at one cache line at most). Backward
 * passes accumulate (+=) into every gradient given; absent ones are skipped.
 */
#include <string.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* dst[n] += src[n] */
static void add_into(float *dst, const float *src, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void cpu_add_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    // out, a, b have n elements; out may alias a or b (each element is read
    // before it is written, so aliasing is safe)
    int64_t n = tensor_numel(out);
    float *y = tensor_f32(out);
    const float *x0 = tensor_f32(a), *x1 = tensor_f32(b);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t lo = c * CPU_CHUNK, hi = n - lo < CPU_CHUNK ? n : lo + CPU_CHUNK;
        #pragma omp simd
        for (int64_t i = lo; i < hi; i++) y[i] = x0[i] + x1[i];
    }
}

/* dst += src (the same element count) */
void cpu_accumulate(Ctx *ctx, Tensor dst, Tensor src) { cpu_run_unary(ctx, add_into, dst, src); }

void cpu_add_bcast_forward(Ctx *ctx, Tensor out, Tensor in, Tensor row)
{
    // in, out are (reps * R) floats, row is (R): out[r, j] = in[r, j] + row[j]
    int64_t n = tensor_numel(in), R = tensor_numel(row);
    if (n == 0) return;
    float *y = tensor_f32(out);
    const float *x = tensor_f32(in), *w = tensor_f32(row);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(n); c++) {
        int64_t lo = c * CPU_CHUNK, hi = n - lo < CPU_CHUNK ? n : lo + CPU_CHUNK;
        /* walk the chunk in pieces that do not wrap around the row */
        for (int64_t i = lo; i < hi;) {
            int64_t j = i % R, len = R - j < hi - i ? R - j : hi - i;
            #pragma omp simd
            for (int64_t k = 0; k < len; k++) y[i + k] = x[i + k] + w[j + k];
            i += len;
        }
    }
}

void cpu_add_bcast_backward(Ctx *ctx, Tensor din, Tensor drow, Tensor dout)
{
    // dout is (reps * R) floats; din += dout; drow[j] += sum over r of dout[r, j]
    int64_t n = tensor_numel(dout);
    const float *g = tensor_f32(dout);
    if (tensor_present(din)) cpu_accumulate(ctx, din, dout);
    if (!tensor_present(drow) || n == 0) return;
    int64_t R = tensor_numel(drow), reps = n / R;
    float *dw = tensor_f32(drow);
    /* each chunk owns a range of row columns and sums every repeat in order */
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < cpu_chunks(R); c++) {
        int64_t lo = c * CPU_CHUNK, len = R - lo < CPU_CHUNK ? R - lo : CPU_CHUNK;
        for (int64_t r = 0; r < reps; r++) add_into(dw + lo, g + r * R + lo, len);
    }
}

void cpu_add_per_image_forward(Ctx *ctx, Tensor out, Tensor in, Tensor v)
{
    // in, out are [B,T,D], v is [B,D]: out[b,t,:] = in[b,t,:] + v[b,:]
    int64_t B = in.shape[0], T = in.shape[1], D = in.shape[2], rows = B * T;
    float *y = tensor_f32(out);
    const float *x = tensor_f32(in), *w = tensor_f32(v);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (rows * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *vb = w + (r / T) * D;
        #pragma omp simd
        for (int64_t j = 0; j < D; j++) y[r * D + j] = x[r * D + j] + vb[j];
    }
}

void cpu_add_per_image_backward(Ctx *ctx, Tensor din, Tensor dv, Tensor dout)
{
    // dout is [B,T,D]; din += dout; dv[b,:] += sum over t of dout[b,t,:]
    if (tensor_present(din)) cpu_accumulate(ctx, din, dout);
    if (!tensor_present(dv)) return;
    int64_t B = dout.shape[0], T = dout.shape[1], D = dout.shape[2];
    const float *g = tensor_f32(dout);
    float *w = tensor_f32(dv);
    /* each image's sum is its own, in token order */
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * T * D > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) add_into(w + b * D, g + (b * T + t) * D, D);
}

void cpu_concat_forward(Ctx *ctx, Tensor out, Tensor a, Tensor b)
{
    // a is (M,Ca), b is (M,Cb), out is (M,Ca+Cb)
    int64_t M = tensor_rows(out), Ca = tensor_cols(a), Cb = tensor_cols(b), C = Ca + Cb;
    float *y = tensor_f32(out);
    const float *xa = tensor_f32(a), *xb = tensor_f32(b);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (M * C > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        memcpy(y + m * C, xa + m * Ca, (size_t)Ca * sizeof(float));
        memcpy(y + m * C + Ca, xb + m * Cb, (size_t)Cb * sizeof(float));
    }
}

void cpu_concat_backward(Ctx *ctx, Tensor da, Tensor db, Tensor dout)
{
    // dout is (M,Ca+Cb); da is (M,Ca), db is (M,Cb), either may be absent
    int64_t M = tensor_rows(dout), C = tensor_cols(dout);
    float *ga = tensor_present(da) ? tensor_f32(da) : NULL;
    float *gb = tensor_present(db) ? tensor_f32(db) : NULL;
    int64_t Ca = ga ? tensor_cols(da) : C - (gb ? tensor_cols(db) : 0), Cb = C - Ca;
    const float *g = tensor_f32(dout);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (M * C > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        if (ga) add_into(ga + m * Ca, g + m * C, Ca);
        if (gb) add_into(gb + m * Cb, g + m * C + Ca, Cb);
    }
}

/* the n tokens of sequence b that start at token `at`: (n*D) contiguous floats */
static float *tokens_at(Tensor seq, int64_t b, int at)
{
    int64_t T = seq.shape[1], D = seq.shape[2];
    return tensor_f32(seq) + (b * T + at) * D;
}

void cpu_token_slice_forward(Ctx *ctx, Tensor out, Tensor in, int at)
{
    // in is (B,T,D), out is (B,n,D): out[b] = in[b, at:at+n]
    int64_t B = out.shape[0], len = out.shape[1] * out.shape[2];
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * len > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++)
        memcpy(tensor_f32(out) + b * len, tokens_at(in, b, at), (size_t)len * sizeof(float));
}

void cpu_token_slice_backward(Ctx *ctx, Tensor din, Tensor dout, int at)
{
    // dout is (B,n,D), din is (B,T,D): din[b, at:at+n] += dout[b]
    int64_t B = dout.shape[0], len = dout.shape[1] * dout.shape[2];
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * len > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) add_into(tokens_at(din, b, at), tensor_f32(dout) + b * len, len);
}

void cpu_token_place_forward(Ctx *ctx, Tensor seq, Tensor src, int at)
{
    // src is (B,n,D), seq is (B,T,D): seq[b, at:at+n] = src[b]
    int64_t B = src.shape[0], len = src.shape[1] * src.shape[2];
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * len > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++)
        memcpy(tokens_at(seq, b, at), tensor_f32(src) + b * len, (size_t)len * sizeof(float));
}

void cpu_token_place_backward(Ctx *ctx, Tensor dsrc, Tensor dseq, int at)
{
    // dseq is (B,T,D), dsrc is (B,n,D): dsrc[b] += dseq[b, at:at+n]
    int64_t B = dsrc.shape[0], len = dsrc.shape[1] * dsrc.shape[2];
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * len > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) add_into(tensor_f32(dsrc) + b * len, tokens_at(dseq, b, at), len);
}

void cpu_rows_copy(Ctx *ctx, Tensor out, Tensor out_rows, Tensor in, Tensor in_rows)
{
    // out is (B_out, row), in is (B_in, row); out row dst[k] = in row src[k]
    const int64_t *dst = tensor_present(out_rows) ? (const int64_t *)out_rows.data : NULL;
    const int64_t *src = tensor_present(in_rows) ? (const int64_t *)in_rows.data : NULL;
    int64_t n = dst ? out_rows.shape[0] : src ? in_rows.shape[0] : out.shape[0];
    size_t row = (size_t)tensor_item_numel(in) * dtype_size(in.dtype);
    char *o = out.data;
    const char *i = in.data;
    if (out.data == in.data) {
        /* a compaction: in order, each row lands where a row already moved
           (or this one) was; src[k] > k, so a moved row never overlaps */
        for (int64_t k = 0; k < n; k++)
            if (src[k] != k) memcpy(o + (size_t)k * row, i + (size_t)src[k] * row, row);
        return;
    }
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if ((int64_t)(n * row) > CPU_PARALLEL_MIN * 4) schedule(static)
    for (int64_t k = 0; k < n; k++)
        memcpy(o + (size_t)(dst ? dst[k] : k) * row, i + (size_t)(src ? src[k] : k) * row, row);
}
