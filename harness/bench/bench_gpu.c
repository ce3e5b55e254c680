/*
 * bench_gpu.c: `deediff bench --backend cuda`: our CUDA backend against
 * PyTorch on the same card, in one run, every line a ratio (issue 11).
 *
 *   ceiling     the card's BF16 GEMM rate, measured here: 8192^3 BF16
 *               products through op_linear_forward (cuBLASLt, F32
 *               accumulation); MFU below is a rate over this one
 *   uvit        U-ViT-S/2 with the official CIFAR-10 configuration, random
 *               weights saved to a file both sides load: the forward (BF16,
 *               batch 256) and the training step (forward, backward, AdamW,
 *               EMA; batch 128), ours first, then PyTorch's
 *               (tests/reference/bench_torch.py --device cuda: uvit_ref.UViT
 *               with F.scaled_dot_product_attention, the official code's
 *               "flash" mode, under bf16 autocast; eager, then
 *               torch.compile), each peer line printed with its ratio and
 *               issue 11's goal as it arrives
 *   inception   the FID Inception on the card (bench_inception.c)
 *   early-exit  sampling with early exit on the card (bench_early_exit.c)
 *
 * Iterations are capped so that `make gpu-check` stays within minutes
 * (torch.compile's compile time is most of the peer's); stdout is flushed
 * after every line, so a run cut short still shows what it measured.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../../model/uvit.h"
#include "bench_ours.h"
#include "bench_util.h"
#include "../cli/cli.h"

#define CEILING_N 8192
#define CEILING_REPS 5
#define CEILING_CALLS 10
#define FWD_BATCH 256
#define TRAIN_BATCH 128
#define FWD_ITERS 20
#define TRAIN_ITERS 10
#define WARMUP 3

/* U-ViT-S/2 for CIFAR-10 (U-ViT's configs/cifar10_uvit_small.py) */
static const char uvit_s2_json[] =
    "{\"img_size\":32,\"patch_size\":2,\"in_chans\":3,\"embed_dim\":512,\"depth\":12,\"num_heads\":8,"
    "\"mlp_ratio\":4,\"qkv_bias\":false,\"mlp_time_embed\":false,\"num_classes\":-1}";

/* ---- the card's BF16 GEMM ceiling ------------------------------------------------- */

/* FLOP/s of out[n,n] = in[n,n] w[n,n]^T in BF16 (op_linear_forward: cuBLASLt);
   the median of CEILING_REPS runs of CEILING_CALLS calls after a warm-up */
static double bf16_gemm_ceiling(Ctx *ctx, int n)
{
    int64_t nn = (int64_t)n * n;
    float *host = xmalloc((size_t)nn * sizeof(float));
    for (int64_t i = 0; i < nn; i++) host[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    // f32 is (n, n) F32; a, w, out are (n, n) BF16 (a and w rounded from f32 on the device)
    float *f32 = ctx_alloc(ctx, (size_t)nn * sizeof(float));
    ctx_upload(ctx, f32, host, (size_t)nn * sizeof(float));
    void *a = ctx_alloc(ctx, (size_t)nn * 2), *w = ctx_alloc(ctx, (size_t)nn * 2), *out = ctx_alloc(ctx, (size_t)nn * 2);
    Tensor tf = tensor2(f32, DT_F32, n, n), ta = tensor2(a, DT_BF16, n, n), tw = tensor2(w, DT_BF16, n, n);
    Tensor to = tensor2(out, DT_BF16, n, n);
    op_affine_forward(ctx, ta, tf, 1.0f, 0.0f);
    op_affine_forward(ctx, tw, tf, -0.5f, 0.25f);
    op_linear_forward(ctx, to, ta, tw, tensor_none());
    double per_call[CEILING_REPS];
    for (int r = 0; r < CEILING_REPS; r++) {
        ctx_sync(ctx);
        double t0 = bench_now();
        for (int i = 0; i < CEILING_CALLS; i++) op_linear_forward(ctx, to, ta, tw, tensor_none());
        ctx_sync(ctx);
        per_call[r] = (bench_now() - t0) / CEILING_CALLS;
    }
    ctx_free(ctx, f32), ctx_free(ctx, a), ctx_free(ctx, w), ctx_free(ctx, out);
    free(host);
    return 2.0 * (double)n * n * n / bench_median(per_call, CEILING_REPS);
}

/* ---- U-ViT-S/2 against PyTorch ------------------------------------------------------ */

typedef struct {
    double ceiling;          /* FLOP/s */
    double gflop_fwd;        /* per image */
    double ours_fwd, ours_train;  /* images/s */
} UvitRun;

/* the multiple of the forward's FLOPs a pass does: a backward is 2 forwards */
static double pass_flops(const char *pass) { return strcmp(pass, "train") ? 1.0 : 3.0; }

static double mfu(const UvitRun *u, const char *pass, double ips)
{
    return pass_flops(pass) * u->gflop_fwd * 1e9 * ips / u->ceiling;
}

/* issue 11's goal for ours / PyTorch on this line, or "" */
static const char *goal(const char *pass, const char *mode)
{
    int fwd = !strcmp(pass, "forward"), compiled = !strcmp(mode, "compile");
    if (fwd) return compiled ? " (goal >= 1.3x)" : "";
    return compiled ? " (goal > 1x)" : " (goal >= 2x)";
}

/* one JSON line of the peer, printed with its ratio to ours */
static void print_peer_line(FILE *out, const UvitRun *u, const char *line)
{
    cJSON *j = cJSON_Parse(line);
    const cJSON *pass = cJSON_GetObjectItem(j, "pass"), *mode = cJSON_GetObjectItem(j, "mode");
    const cJSON *ips = cJSON_GetObjectItem(j, "ips"), *batch = cJSON_GetObjectItem(j, "batch");
    const cJSON *compile_s = cJSON_GetObjectItem(j, "compile_s"), *torch = cJSON_GetObjectItem(j, "torch");
    if (cJSON_IsString(torch) && !cJSON_IsString(pass)) { /* the peer's first line: what it is */
        const cJSON *dev = cJSON_GetObjectItem(j, "device");
        fprintf(out, "  PyTorch %s on %s: uvit_ref.UViT, F.scaled_dot_product_attention, bf16 autocast, "
                     "fused AdamW + foreach EMA\n", torch->valuestring, cJSON_IsString(dev) ? dev->valuestring : "?");
    } else if (cJSON_IsString(pass) && cJSON_IsString(mode) && cJSON_IsNumber(ips) && ips->valuedouble > 0) {
        double ours = strcmp(pass->valuestring, "train") ? u->ours_fwd : u->ours_train;
        char comp[48] = "";
        if (cJSON_IsNumber(compile_s)) snprintf(comp, sizeof comp, ", compiled in %.0f s", compile_s->valuedouble);
        fprintf(out, "  PyTorch %-8s %-7s batch %3d: %9.1f im/s, MFU %5.1f%%%s; ours/PyTorch %.2fx%s\n",
                mode->valuestring, pass->valuestring, cJSON_IsNumber(batch) ? batch->valueint : 0, ips->valuedouble,
                100 * mfu(u, pass->valuestring, ips->valuedouble), comp, ours / ips->valuedouble,
                goal(pass->valuestring, mode->valuestring));
    }
    fflush(out);
    cJSON_Delete(j);
}

/* runs the peer on the weights file, printing each measurement as it comes */
static void run_peer(FILE *out, Ctx *ctx, const UvitRun *u, const char *weights)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s tests/reference/bench_torch.py --device cuda --config '%s' --model '%s' --batch %d "
             "--train-batch %d --iters %d --train-iters %d --warmup %d",
             bench_python(ctx), uvit_s2_json, weights, FWD_BATCH, TRAIN_BATCH, FWD_ITERS, TRAIN_ITERS, WARMUP);
    bench_peer_env(0); /* the peer starts as the user started us, not with our CPU settings */
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(out, "  PyTorch: cannot start the peer (%s): no ratios\n", cmd);
        return;
    }
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, p))
        if (line[0] == '{') print_peer_line(out, u, line), lines++;
    int status = pclose(p);
    if (status != 0 || lines == 0)
        fprintf(out, "  PyTorch: the peer stopped (%s %d, its message on stderr above; set DEEDIFF_PYTHON "
                     "to a Python with a CUDA PyTorch): no ratios past this line\n",
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : status);
    fflush(out);
}

static int bench_uvit_gpu(FILE *out, Ctx *ctx, double ceiling, int no_torch)
{
    UViTConfig c;
    CHECK(uvit_config_parse(&c, uvit_s2_json, "bench") == 0, "%s", err_msg());
    UViT m;
    uvit_create(&m, ctx, &c);
    uvit_init_random(&m, ctx, 1);
    UvitRun u = {.ceiling = ceiling};
    OurTimes fwd, train;
    bench_ours(ctx, &m, FWD_BATCH, WARMUP, FWD_ITERS, 0, &fwd);
    u.gflop_fwd = fwd.gflop_fwd;
    u.ours_fwd = fwd.fwd_ips;
    fprintf(out, "\nU-ViT-S/2 (CIFAR-10), %.2f GFLOP per image forward, median of %d (forward) and %d (train) "
                 "after %d warm-ups\n", u.gflop_fwd, FWD_ITERS, TRAIN_ITERS, WARMUP);
    fprintf(out, "  ours     bf16    forward batch %3d: %9.1f im/s, MFU %5.1f%%\n", FWD_BATCH, u.ours_fwd,
            100 * mfu(&u, "forward", u.ours_fwd));
    fflush(out);
    bench_ours(ctx, &m, TRAIN_BATCH, WARMUP, TRAIN_ITERS, 1, &train);
    u.ours_train = train.train_ips;
    fprintf(out, "  ours     bf16    train   batch %3d: %9.1f im/s, MFU %5.1f%% (fwd+bwd alone %.1f im/s; the step: "
                 "NaN check, grad norm, AdamW, EMA)\n", TRAIN_BATCH, u.ours_train, 100 * mfu(&u, "train", u.ours_train),
            train.fwdbwd_ips);
    fflush(out);
    if (!no_torch) {
        char weights[] = "/tmp/deediff-bench-gpu-XXXXXX";
        int fd = mkstemp(weights);
        CHECK(fd >= 0, "bench: cannot create a temporary file");
        close(fd);
        CHECK(uvit_save(&m, ctx, weights, 0, NULL, NULL) == 0, "%s", err_msg());
        run_peer(out, ctx, &u, weights);
        unlink(weights);
    }
    uvit_destroy(&m, ctx);
    return 0;
}

int bench_gpu(FILE *out, Ctx *ctx, const char *only, int no_torch)
{
    fprintf(out, "GPU: %s; every ratio below measured in this run\n", bench_device_name(ctx));
    fflush(out);
    double ceiling = bf16_gemm_ceiling(ctx, CEILING_N);
    fprintf(out, "ceiling: BF16 GEMM %d^3 through our linear op (cuBLASLt, F32 accumulation): %.1f TFLOP/s; "
                 "MFU = model FLOP/s over it\n", CEILING_N, ceiling / 1e12);
    fflush(out);
    int rc = 0;
    if (cli_listed(only, "uvit")) rc = bench_uvit_gpu(out, ctx, ceiling, no_torch);
    if (rc == 0 && cli_listed(only, "inception")) {
        fprintf(out, "\n");
        rc = bench_inception(out, ctx, 1);
    }
    if (rc == 0 && cli_listed(only, "early-exit")) rc = bench_early_exit(out, ctx);
    if (rc == 0 && only && (cli_listed(only, "autoencoder") || cli_listed(only, "frechet")))
        fprintf(out, "\nautoencoder, frechet: CPU sections, not run with --backend cuda\n");
    return rc;
}
