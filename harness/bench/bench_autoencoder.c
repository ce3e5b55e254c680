/*
 * bench_autoencoder.c: the KL autoencoder's encoder and decoder against
 * PyTorch in the same run: the "autoencoder" section of `deediff bench`.
 *
 * Both sides run Stable Diffusion's configuration (U-ViT's autoencoder_kl:
 * ch 128, ch_mult 1,2,4,4, 84 M parameters) with the same random weights,
 * fp32, inference, on batches of 2 images of 64x64 (8x8 latents: a 256x256
 * image costs 16x more and would make the bench take minutes), 2 threads.
 * The peer is tests/reference/bench_autoencoder.py (autoencoder_ref.py, equal
 * to U-ViT's libs/autoencoder.py), as installed and with OpenBLAS's best
 * core (bench_peer_env). Result: images/s of each and ours / PyTorch.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../../model/autoencoder.h"
#include "../cli/run_context.h"
#include "bench_util.h"

#define AE_BATCH 2
#define AE_SIZE 64
#define AE_THREADS 2
#define AE_ITERS 3

/* images/s of one part of ours: the median of AE_ITERS calls after a warm-up */
static double ours_images_per_s(Ctx *ctx, const Autoencoder *m, AutoencoderPart part)
{
    int f = autoencoder_factor(&m->cfg), s = part == AE_ENCODER ? AE_SIZE : AE_SIZE / f;
    int cin = part == AE_ENCODER ? m->cfg.in_channels : m->cfg.embed_dim;
    int cout = part == AE_ENCODER ? 2 * m->cfg.embed_dim : m->cfg.out_ch;
    int so = part == AE_ENCODER ? AE_SIZE / f : AE_SIZE;
    size_t nin = (size_t)AE_BATCH * cin * s * s, nout = (size_t)AE_BATCH * cout * so * so;
    float *in = xmalloc(nin * sizeof(float)), *out = xmalloc(nout * sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    AutoencoderActs *a = autoencoder_acts_create(ctx, m, part, AE_BATCH, AE_SIZE, AE_SIZE, 0);
    Tensor ti = tensor4(in, DT_F32, AE_BATCH, cin, s, s), to = tensor4(out, DT_F32, AE_BATCH, cout, so, so);
    double times[AE_ITERS + 1];
    for (int i = 0; i <= AE_ITERS; i++) {  // call 0 is the warm-up
        double t0 = bench_now();
        if (part == AE_ENCODER) autoencoder_encode_moments(ctx, m, a, ti, to);
        else autoencoder_decode(ctx, m, a, ti, to);
        times[i] = bench_now() - t0;
    }
    autoencoder_acts_destroy(ctx, a);
    free(in), free(out);
    return AE_BATCH / bench_median(times + 1, AE_ITERS);
}

/* the peer's images/s of both parts (0 when it cannot run: said on stderr) */
static void torch_images_per_s(const char *weights, double ips[2], char *version, size_t vn)
{
    char cmd[1024], line[4096] = {0}, buf[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/reference/bench_autoencoder.py --weights '%s' --batch %d --size %d "
             "--threads %d --iters %d", weights, AE_BATCH, AE_SIZE, AE_THREADS, AE_ITERS);
    ips[0] = ips[1] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return;
    while (fgets(buf, sizeof buf, p))
        if (buf[0] == '{') snprintf(line, sizeof line, "%s", buf);
    int status = pclose(p);
    cJSON *j = line[0] ? cJSON_Parse(line) : NULL;
    const char *keys[2] = {"encode_images_per_s", "decode_images_per_s"};
    for (int k = 0; status == 0 && j && k < 2; k++) {
        cJSON *v = cJSON_GetObjectItem(j, keys[k]);
        if (cJSON_IsNumber(v)) ips[k] = v->valuedouble;
    }
    cJSON *t = j ? cJSON_GetObjectItem(j, "torch") : NULL;
    if (cJSON_IsString(t)) snprintf(version, vn, "%s", t->valuestring);
    cJSON_Delete(j);
    if (ips[0] <= 0) fprintf(stderr, "bench autoencoder: the PyTorch peer did not run (%s)\n", cmd);
}

int bench_autoencoder(FILE *out)
{
    set_cpu_threads(AE_THREADS);
    Ctx ctx;
    ctx_init_cpu(&ctx, AE_THREADS);
    AutoencoderConfig c;
    autoencoder_config_sd(&c);
    Autoencoder m;
    autoencoder_create(&m, &ctx, &c);
    autoencoder_init_random(&m, &ctx, 1);
    char weights[256];
    snprintf(weights, sizeof weights, "/tmp/deediff-bench-autoencoder-%d.safetensors", (int)getpid());
    int rc = autoencoder_save(&m, &ctx, weights, 0, NULL, NULL);
    double ours[2] = {0, 0}, peers[2][2];
    if (rc == 0) {
        ours[0] = ours_images_per_s(&ctx, &m, AE_ENCODER);
        ours[1] = ours_images_per_s(&ctx, &m, AE_DECODER);
    }
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    char version[64] = "?";
    for (int fair = 0; rc == 0 && fair < 2; fair++) {
        bench_peer_env(fair);
        torch_images_per_s(weights, peers[fair], version, sizeof version);
    }
    unlink(weights);
    if (rc) return -1;
    fprintf(out, "KL autoencoder (Stable Diffusion's configuration, random weights), fp32, batch %d of %dx%d, "
                 "%d threads, %s\n", AE_BATCH, AE_SIZE, AE_SIZE, AE_THREADS, bench_cpu_name());
    const char *part[2] = {"encode", "decode"};
    for (int k = 0; k < 2; k++) {
        fprintf(out, "  %s ours:             %8.3f images/s\n", part[k], ours[k]);
        for (int fair = 0; fair < 2; fair++) {
            const char *how = fair ? "with OpenBLAS's best core" : "as installed";
            if (peers[fair][k] > 0)
                fprintf(out, "  %s PyTorch %s, %-26s %8.3f images/s, ours/PyTorch %.2f\n", part[k], version, how,
                        peers[fair][k], ours[k] / peers[fair][k]);
            else
                fprintf(out, "  %s PyTorch %s: not available, no ratio\n", part[k], how);
        }
    }
    return 0;
}
