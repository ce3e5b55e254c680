/*
 * cuda_embedding.cu: the label embedding lookup, out[B,D] = table[ids[b]],
 * and its backward dtable[ids[b]] += dout[b].
 *
 * ids[B] is I64 in device memory, already range-checked by the caller. The
 * table is a parameter (F32, or BF16 when a caller keeps one), out and dout
 * are F32 or BF16, dtable is F32. Two rows may share an id, so the backward
 * gives each thread one column and walks the batch in order: no atomics, the
 * CPU's order of additions.
 */
#include "cuda_common.h"
#include "cuda_ops.h"

// out is (B, D), ids is (B,), table is (V, D)
__global__ void embedding_forward_kernel(CudaOut out, const int64_t *ids, CudaIn table, int64_t B,
                                         int64_t D)
{
    CUDA_GRID_STRIDE(i, B * D) store_f32(out, i, load_f32(table, ids[i / D] * D + i % D));
}

// thread d owns column d of dtable (V, D); dout is (B, D)
__global__ void embedding_backward_kernel(float *dtable, CudaIn dout, const int64_t *ids, int64_t B,
                                          int64_t D)
{
    CUDA_GRID_STRIDE(d, D)
        for (int64_t b = 0; b < B; b++) dtable[ids[b] * D + d] += load_f32(dout, b * D + d);
}

void cuda_embedding_forward(Ctx *ctx, Tensor out, Tensor ids, Tensor table)
{
    const char *op = "embedding_forward";
    CudaOut o = cuda_out(op, out);
    CudaIn tab = cuda_in(op, table);
    int64_t B = tensor_numel(ids), D = table.shape[1];
    if (B * D == 0) return;
    CUDA_LAUNCH(ctx, B * D, embedding_forward_kernel, o, (const int64_t *)ids.data, tab, B, D);
}

void cuda_embedding_backward(Ctx *ctx, Tensor dtable, Tensor dout, Tensor ids)
{
    const char *op = "embedding_backward";
    CudaIn g = cuda_in(op, dout);
    cuda_need_f32(op, "dtable", dtable);
    int64_t B = tensor_numel(ids), D = tensor_cols(dtable);
    if (B * D == 0) return;
    CUDA_LAUNCH(ctx, D, embedding_backward_kernel, (float *)dtable.data, g, (const int64_t *)ids.data, B, D);
}
