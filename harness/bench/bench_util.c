/*
 * bench_util.c: clock, median, CPU name and the PyTorch peer for benchmarks.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../kernels/ops.h"
#include "bench_util.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char *bench_cpu_name(void)
{
    static char name[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return name;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(name, sizeof name, "%s", colon + 2);
                name[strcspn(name, "\n")] = 0;
            }
            break;
        }
    fclose(f);
    return name;
}

const char *bench_device_name(const Ctx *ctx)
{
    const char *gpu = ctx_device_name(ctx);
    return gpu ? gpu : bench_cpu_name();
}

const char *bench_python(const Ctx *ctx)
{
    const char *env = getenv("DEEDIFF_PYTHON");
    if (ctx->backend != BACKEND_CUDA) return "/usr/bin/python3";
    return env && env[0] ? env : "python3";
}

static double json_number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int bench_torch(const char *config_json, const char *weights, int batch, int threads, int iters,
                TorchTimes *out)
{
    memset(out, 0, sizeof *out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/reference/bench_torch.py --config '%s' --model '%s' "
             "--batch %d --threads %d --iters %d",
             config_json, weights, batch, threads, iters);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[4096] = "", last[4096] = "";
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
    int status = pclose(p);
    cJSON *o = cJSON_Parse(last);
    if (status != 0 || !o) {
        fprintf(stderr, "bench: the PyTorch peer did not run (needs python3-torch: make deps-pytorch)\n");
        cJSON_Delete(o);
        return -1;
    }
    out->forward_ips = json_number(o, "forward_ips");
    out->fwdbwd_ips = json_number(o, "fwdbwd_ips");
    out->train_ips = json_number(o, "train_ips");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "torch");
    if (cJSON_IsString(v)) snprintf(out->version, sizeof out->version, "%s", v->valuestring);
    cJSON_Delete(o);
    return 0;
}
