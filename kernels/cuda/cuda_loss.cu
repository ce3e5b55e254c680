/*
 * cuda_mse.cu: the mean squared error over all elements, forward.
 *
 * Deterministic, no atomics: a fixed grid of MSE_BLOCKS blocks each sums a
 * fixed grid-stride share of (pred - target)^2 in F64 into partial[block];
 * one block then adds the partials in a fixed order. The F32 result comes
 * back to the host, so the call waits for the stream.
 */
#include "cuda_common.h"

#define MSE_BLOCKS 512
#define MSE_THREADS 256

/* sum of v over the block, in thread 0 */
__device__ double block_sum(double v)
{
    __shared__ double warp_totals[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    if (lane == 0) warp_totals[warp] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? warp_totals[threadIdx.x] : 0.0;
    return warp < 1 ? warp_sum(v) : 0.0;
}

// pred, target are (n,); partial is (gridDim.x,)
template <typename T>
__global__ void squared_error_partial_kernel(double *partial, const T *pred, const T *target, int64_t n)
{
    double sum = 0.0;
    CUDA_GRID_STRIDE(i, n) {
        double d = (double)load_f32(pred, i) - (double)load_f32(target, i);
        sum += d * d;
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// partial is (count,); one block
__global__ void mean_of_partials_kernel(float *result, const double *partial, int count, int64_t n)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) *result = (float)(sum / (double)n);
}

float cuda_mse_forward(Ctx *ctx, Tensor pred, Tensor target)
{
    DType act = cuda_act_dtype("mse_forward", pred);
    cuda_same_dtype("mse_forward", target, pred);
    int64_t n = tensor_numel(pred);
    if (n == 0) return 0.0f;
    cudaStream_t stream = cuda_stream(ctx);
    // scratch holds partial (MSE_BLOCKS,) F64 then the F32 result
    char *scratch = (char *)ctx_scratch(ctx, MSE_BLOCKS * sizeof(double) + sizeof(float));
    double *partial = (double *)scratch;
    float *result = (float *)(scratch + MSE_BLOCKS * sizeof(double));
    if (act == DT_F32)
        squared_error_partial_kernel<<<MSE_BLOCKS, MSE_THREADS, 0, stream>>>(
            partial, (const float *)pred.data, (const float *)target.data, n);
    else
        squared_error_partial_kernel<<<MSE_BLOCKS, MSE_THREADS, 0, stream>>>(
            partial, (const __nv_bfloat16 *)pred.data, (const __nv_bfloat16 *)target.data, n);
    cudaCheck(cudaGetLastError());
    mean_of_partials_kernel<<<1, MSE_THREADS, 0, stream>>>(result, partial, MSE_BLOCKS, n);
    cudaCheck(cudaGetLastError());
    float host = 0.0f;
    cudaCheck(cudaMemcpyAsync(&host, result, sizeof host, cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    return host;
}
