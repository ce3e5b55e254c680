/*
 * cuda_context.cu: the CUDA backend's context, memory functions and op table.
 *
 * One device per process: cuda_ctx_init selects it with cudaSetDevice and
 * creates one non-blocking stream, on which every kernel, copy and cuBLAS
 * call of the context is queued in order. Activations are BF16 on this
 * backend (ctx->act_dtype); parameters stay F32.
 *
 * F32 GEMMs stay F32: cuBLAS runs in CUBLAS_DEFAULT_MATH and every GEMM names
 * CUBLAS_COMPUTE_32F, so F32 inputs are never rounded to TF32 (that needs
 * CUBLAS_COMPUTE_32F_FAST_TF32 or CUBLAS_TF32_TENSOR_OP_MATH, used nowhere).
 *
 * DEEDIFF_CUDA_GEMM=cublas in the environment makes linear use cublasGemmEx
 * instead of cuBLASLt (to compare the two, or to rule cuBLASLt out).
 *
 * cuBLAS and cuBLASLt are opened here, by the first context (cuda_blas.h);
 * a process that never asks for a GPU never loads them.
 */
#include <string.h>

#include "cuda_common.h"
#include "cuda_ops.h"

/* the number of usable devices, 0 when there is no driver or no GPU;
   *why receives the runtime's reason when it is 0 */
static int device_count(cudaError_t *why)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it, so later calls do not report it */
        n = 0;
    }
    if (why) *why = e != cudaSuccess ? e : (n == 0 ? cudaErrorNoDevice : cudaSuccess);
    return n;
}

extern "C" int cuda_device_count(void) { return device_count(NULL); }

extern "C" const char *cuda_device_name(const Ctx *ctx) { return ((const CudaState *)ctx->backend_state)->name; }
extern "C" void *cuda_ctx_stream(Ctx *ctx) { return (void *)cuda_stream(ctx); }

/* ---- memory --------------------------------------------------------------- */

static void *cuda_alloc(Ctx *ctx, size_t n)
{
    (void)ctx;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n ? n : 256);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        FATAL("out of GPU memory allocating %zu bytes (%zu of %zu bytes free): %s; "
              "use a smaller batch", n, free_b, total_b, cudaGetErrorString(e));
    }
    return p;
}

/* waits for queued work first: a kernel may still read p */
static void cuda_free(Ctx *ctx, void *p)
{
    cudaCheck(cudaStreamSynchronize(cuda_stream(ctx)));
    cudaCheck(cudaFree(p));
}

/* returns once src_host may be reused: the runtime stages pageable host
   memory before returning (all host buffers here are pageable; pinned memory
   would need a sync before reuse) */
static void cuda_upload(Ctx *ctx, void *dst, const void *src_host, size_t n)
{
    if (n) cudaCheck(cudaMemcpyAsync(dst, src_host, n, cudaMemcpyHostToDevice, cuda_stream(ctx)));
}

/* returns with the data in dst_host */
static void cuda_download(Ctx *ctx, void *dst_host, const void *src, size_t n)
{
    if (!n) return;
    cudaCheck(cudaMemcpyAsync(dst_host, src, n, cudaMemcpyDeviceToHost, cuda_stream(ctx)));
    cudaCheck(cudaStreamSynchronize(cuda_stream(ctx)));
}

static void cuda_copy(Ctx *ctx, void *dst, const void *src, size_t n)
{
    if (n) cudaCheck(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}

static void cuda_zero(Ctx *ctx, void *p, size_t n)
{
    if (n) cudaCheck(cudaMemsetAsync(p, 0, n, cuda_stream(ctx)));
}

static void cuda_sync(Ctx *ctx) { cudaCheck(cudaStreamSynchronize(cuda_stream(ctx))); }

static void cuda_destroy(Ctx *ctx)
{
    CudaState *s = cuda_state(ctx);
    if (!s) return;
    cudaCheck(cudaStreamSynchronize(s->stream));
    cudaCheck(cudaFree(s->lt_workspace));
    if (s->philox_ulps) cudaCheck(cudaFree(s->philox_ulps));
    cublasCheck(cuda_blas.cublasLtDestroy(s->lt));
    cublasCheck(cuda_blas.cublasDestroy_v2(s->cublas));
    cudaCheck(cudaStreamDestroy(s->stream));
    free(s);
    ctx->backend_state = NULL;
}

/* ---- context ------------------------------------------------------------------ */

extern "C" int cuda_ctx_init(Ctx *ctx, int device)
{
    memset(ctx, 0, sizeof *ctx);
    cudaError_t why;
    int n = device_count(&why);
    if (n == 0)
        return err_set("--backend cuda: no usable CUDA device (%s: %s)", cudaGetErrorName(why),
                       cudaGetErrorString(why));
    if (device < 0 || device >= n)
        return err_set("--device: %d is out of range, this machine has %d CUDA device(s)", device, n);

    if (cuda_blas_load() != 0) return -1;
    cudaCheck(cudaSetDevice(device));
    CudaState *s = (CudaState *)xcalloc(1, sizeof *s);
    s->device = device;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    snprintf(s->name, sizeof s->name, "%s", prop.name);
    cudaCheck(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    cublasCheck(cuda_blas.cublasCreate_v2(&s->cublas));
    cublasCheck(cuda_blas.cublasSetStream_v2(s->cublas, s->stream));
    cublasCheck(cuda_blas.cublasSetMathMode(s->cublas, CUBLAS_DEFAULT_MATH)); /* no TF32 */
    cublasCheck(cuda_blas.cublasLtCreate(&s->lt));
    cudaCheck(cudaMalloc(&s->lt_workspace, CUDA_LT_WORKSPACE_BYTES));
    const char *gemm = getenv("DEEDIFF_CUDA_GEMM");
    s->use_lt = !(gemm && strcmp(gemm, "cublas") == 0);

    ctx->backend = BACKEND_CUDA;
    ctx->ops = &cuda_op_table;
    ctx->act_dtype = DT_BF16;
    ctx->backend_state = s;
    return 0;
}

/* ---- the table (entries in the order of struct OpTable) ------------------ */

extern "C" const OpTable cuda_op_table = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .sync = cuda_sync,
    .destroy = cuda_destroy,
    .linear_forward = cuda_linear_forward,
    .linear_backward = cuda_linear_backward,
    .linear_backward_set = cuda_linear_backward_set,
    /* linear_gelu_forward: NULL, ops.c's composition is the best form here
       (erf GELU, no cuBLASLt epilogue: cuda_linear_gelu.cu) */
    .linear_gelu_backward = cuda_linear_gelu_backward,
    .linear_gelu_backward_set = cuda_linear_gelu_backward_set,
    .linear_residual_forward = cuda_linear_residual_forward,
    .layernorm_forward = cuda_layernorm_forward,
    .layernorm_backward = cuda_layernorm_backward,
    .attention_forward = cuda_attention_forward,
    .attention_backward = cuda_attention_backward,
    .attention_backward_set = cuda_attention_backward_set,
    .gelu_forward = cuda_gelu_forward,
    .gelu_backward = cuda_gelu_backward,
    .silu_forward = cuda_silu_forward,
    .silu_backward = cuda_silu_backward,
    .sigmoid_forward = cuda_sigmoid_forward,
    .sigmoid_backward = cuda_sigmoid_backward,
    .add_forward = cuda_add_forward,
    .accumulate = cuda_accumulate,
    .add_bcast_forward = cuda_add_bcast_forward,
    .add_bcast_backward = cuda_add_bcast_backward,
    .add_per_image_forward = cuda_add_per_image_forward,
    .add_per_image_backward = cuda_add_per_image_backward,
    .concat_forward = cuda_concat_forward,
    .concat_backward = cuda_concat_backward,
    .token_slice_forward = cuda_token_slice_forward,
    .token_slice_backward = cuda_token_slice_backward,
    .token_place_forward = cuda_token_place_forward,
    .token_place_backward = cuda_token_place_backward,
    .rows_copy = cuda_rows_copy,
    .row_mean = cuda_row_mean,
    .row_cosine_distance = cuda_row_cosine_distance,
    .conv2d_forward = cuda_conv2d_forward,
    .conv2d_backward = cuda_conv2d_backward,
    .patchify_forward = cuda_patchify_forward,
    .patchify_backward = cuda_patchify_backward,
    .unpatchify_forward = cuda_unpatchify_forward,
    .unpatchify_backward = cuda_unpatchify_backward,
    .timestep_embedding_forward = cuda_timestep_embedding_forward,
    .timestep_embedding_backward = cuda_timestep_embedding_backward,
    .embedding_forward = cuda_embedding_forward,
    .embedding_backward = cuda_embedding_backward,
    .mse_forward = cuda_mse_forward,
    .mse_backward = cuda_mse_backward,
    .uncertainty_loss_forward = cuda_uncertainty_loss_forward,
    .uncertainty_loss_backward = cuda_uncertainty_loss_backward,
    .adamw_step = cuda_adamw_step,
    .ema_update = cuda_ema_update,
    .sum_squares = cuda_sum_squares,
    .scale = cuda_scale,
    .has_nonfinite = cuda_has_nonfinite,
    .axpby = cuda_axpby,
    .randn = cuda_randn,
    .add_randn = cuda_add_randn,
    .max_pool2d_forward = cuda_max_pool2d_forward,
    .max_pool2d_backward = cuda_max_pool2d_backward,
    .avg_pool2d_forward = cuda_avg_pool2d_forward,
    .avg_pool2d_backward = cuda_avg_pool2d_backward,
    .global_avg_pool_forward = cuda_global_avg_pool_forward,
    .global_avg_pool_backward = cuda_global_avg_pool_backward,
    .token_mean_forward = cuda_token_mean_forward,
    .token_mean_backward = cuda_token_mean_backward,
    .resize_bilinear_forward = cuda_resize_bilinear_forward,
    .resize_bilinear_backward = cuda_resize_bilinear_backward,
    .batchnorm_forward = cuda_batchnorm_forward,
    .batchnorm_backward = cuda_batchnorm_backward,
    .relu_forward = cuda_relu_forward,
    .relu_backward = cuda_relu_backward,
    .affine_forward = cuda_affine_forward,
    .affine_backward = cuda_affine_backward,
    .cross_entropy_forward = cuda_cross_entropy_forward,
    .cross_entropy_backward = cuda_cross_entropy_backward,
    .group_norm_forward = cuda_group_norm_forward,
    .group_norm_backward = cuda_group_norm_backward,
    .upsample_nearest_forward = cuda_upsample_nearest_forward,
    .upsample_nearest_backward = cuda_upsample_nearest_backward,
    .pad2d_forward = cuda_pad2d_forward,
    .pad2d_backward = cuda_pad2d_backward,
    .gaussian_sample_forward = cuda_gaussian_sample_forward,
    .gaussian_sample_backward = cuda_gaussian_sample_backward,
};
