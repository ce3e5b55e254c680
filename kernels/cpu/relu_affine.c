/*
 * relu_affine.c: ReLU and the scalar affine map out = a x + b on the CPU,
 * forward and backward; elementwise in chunks of CPU_CHUNK floats.
 */
#include "cpu_ops.h"
#include "cpu_parallel.h"

static void relu_span(float *y, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward_span(float *dx, const float *dy, const float *x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

void cpu_relu_forward(Ctx *ctx, Tensor out, Tensor in) { cpu_run_unary(ctx, relu_span, out, in); }
void cpu_relu_backward(Ctx *ctx, Tensor din, Tensor dout, Tensor in)
{
    cpu_run_backward(ctx, relu_backward_span, din, dout, in);
}

void cpu_affine_forward(Ctx *ctx, Tensor out, Tensor in, float a, float b)
{
    int64_t n = tensor_numel(in);
    const float *x = tensor_f32(in);
    float *y = tensor_f32(out);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t ch = 0; ch < cpu_chunks(n); ch++) {
        int64_t end = (ch + 1) * CPU_CHUNK < n ? (ch + 1) * CPU_CHUNK : n;
        #pragma omp simd
        for (int64_t i = ch * CPU_CHUNK; i < end; i++) y[i] = a * x[i] + b;
    }
}

void cpu_affine_backward(Ctx *ctx, Tensor din, Tensor dout, float a)
{
    int64_t n = tensor_numel(dout);
    const float *g = tensor_f32(dout);
    float *dx = tensor_f32(din);
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (n > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t ch = 0; ch < cpu_chunks(n); ch++) {
        int64_t end = (ch + 1) * CPU_CHUNK < n ? (ch + 1) * CPU_CHUNK : n;
        #pragma omp simd
        for (int64_t i = ch * CPU_CHUNK; i < end; i++) dx[i] += a * g[i];
    }
}
