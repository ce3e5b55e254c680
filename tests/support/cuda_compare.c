/*
 * cuda_compare.c: the helpers of cuda_compare.h: contexts, BF16-rounded
 * host values, uploads and downloads, and the comparisons; every buffer is
 * remembered and freed by cc_finish().
 */
#include "tests/support/cuda_compare.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "tests/cuda_bench/bf16_host.h"
#include "tests/support/gradcheck.h"

Ctx cc_cpu, cc_gpu;

#define CC_MAX_BUFFERS 256
static void *host_bufs[CC_MAX_BUFFERS], *dev_bufs[CC_MAX_BUFFERS];
static int n_host, n_dev;

static void *remember(void **list, int *n, void *p)
{
    cr_assert(*n < CC_MAX_BUFFERS, "cuda_compare: more than %d buffers in one test", CC_MAX_BUFFERS);
    list[(*n)++] = p;
    return p;
}

static void *host_alloc(size_t bytes) { return remember(host_bufs, &n_host, xmalloc(bytes ? bytes : 1)); }

void cc_start(void)
{
    if (!ctx_cuda_available()) cr_skip_test("no CUDA device");
    cr_assert_eq(ctx_init_cuda(&cc_gpu, 0), 0, "ctx_init_cuda: %s", err_msg());
    ctx_init_cpu(&cc_cpu, 1);
    n_host = n_dev = 0;
}

void cc_finish(void)
{
    for (int i = 0; i < n_dev; i++) ctx_free(&cc_gpu, dev_bufs[i]);
    for (int i = 0; i < n_host; i++) free(host_bufs[i]);
    n_host = n_dev = 0;
    ctx_destroy(&cc_gpu);
    ctx_destroy(&cc_cpu);
}

double cc_tol(DType dt) { return dt == DT_F32 ? CC_TOL_F32 : CC_TOL_BF16; }

float *cc_values(int64_t n, float lo, float hi, uint64_t seed, DType dt)
{
    float *x = host_alloc((size_t)n * sizeof *x);
    fill_uniform(x, n, lo, hi, seed);
    if (dt == DT_BF16)
        for (int64_t i = 0; i < n; i++) x[i] = f32_from_bf16(bf16_from_f32(x[i]));
    return x;
}

float *cc_copy(const float *x, int64_t n)
{
    float *y = host_alloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

static Tensor device_like(Tensor host, DType dt)
{
    Tensor d = host;
    d.dtype = dt;
    d.data = remember(dev_bufs, &n_dev, ctx_alloc(&cc_gpu, tensor_bytes(d)));
    return d;
}

Tensor cc_upload(Tensor host, DType dt)
{
    int64_t n = tensor_numel(host);
    Tensor d = device_like(host, dt);
    if (dt == DT_BF16) {
        uint16_t *tmp = xmalloc((size_t)(n ? n : 1) * 2);
        for (int64_t i = 0; i < n; i++) tmp[i] = bf16_from_f32(tensor_f32(host)[i]);
        ctx_upload(&cc_gpu, d.data, tmp, tensor_bytes(d));
        free(tmp);
    } else {
        ctx_upload(&cc_gpu, d.data, host.data, tensor_bytes(d));
    }
    return d;
}

Tensor cc_upload_raw(Tensor host)
{
    Tensor d = device_like(host, host.dtype);
    ctx_upload(&cc_gpu, d.data, host.data, tensor_bytes(d));
    return d;
}

Tensor cc_zeros(Tensor host, DType dt)
{
    Tensor d = device_like(host, dt);
    ctx_zero(&cc_gpu, d);
    return d;
}

float *cc_download(Tensor dev)
{
    int64_t n = tensor_numel(dev);
    float *x = host_alloc((size_t)n * sizeof *x);
    if (dev.dtype == DT_BF16) {
        uint16_t *tmp = xmalloc((size_t)(n ? n : 1) * 2);
        ctx_download(&cc_gpu, tmp, dev.data, tensor_bytes(dev));
        for (int64_t i = 0; i < n; i++) x[i] = f32_from_bf16(tmp[i]);
        free(tmp);
    } else {
        ctx_download(&cc_gpu, x, dev.data, tensor_bytes(dev));
    }
    return x;
}

void cc_expect_close(const char *what, Tensor dev, const float *want, double tol)
{
    int64_t n = tensor_numel(dev);
    double err = rel_l2(cc_download(dev), want, n);
    cr_log_info("%s %s: relative L2 error %.2e (limit %.0e)", what, dtype_name(dev.dtype), err, tol);
    cr_expect(err < tol, "%s %s: relative L2 error %.3e, limit %.0e", what, dtype_name(dev.dtype), err, tol);
}

void cc_expect_equal(const char *what, Tensor dev, const float *want)
{
    int64_t n = tensor_numel(dev), differ = 0, first = -1;
    const float *got = cc_download(dev);
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof *got) != 0) {
            differ++;
            if (first < 0) first = i;
        }
    cr_log_info("%s: %lld of %lld values differ from the CPU's bits", what, (long long)differ, (long long)n);
    cr_expect_eq(differ, 0, "%s: %lld of %lld values differ from the CPU's bits (first [%lld]: %.9g vs %.9g)",
                 what, (long long)differ, (long long)n, (long long)first, first >= 0 ? got[first] : 0.0,
                 first >= 0 ? want[first] : 0.0);
}
