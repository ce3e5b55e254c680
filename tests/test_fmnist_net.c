/*
 * test_fmnist_net.c: the FD-FMNIST feature network ("fmnist_net" suite):
 * its backward pass against finite differences of the cross-entropy loss on
 * a tiny configuration, the weights file round trip and bad files, and the
 * built binary (DEEDIFF, set by make test): `deediff fid A B --features
 * fmnist` on two small PNG folders with the committed weights prints
 * FD-FMNIST-<N> and never "FID"; a bad weights file exits 2 with one line.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/data/png_write.h"
#include "kernels/errors.h"
#include "model/fmnist_net.h"
#include "model/safetensors.h"
#include "tests/support/cli_run.h"
#include "tests/support/gradcheck.h"

#define PX (FMNIST_NET_SIDE * FMNIST_NET_SIDE)
#define COMMITTED_WEIGHTS "results/weights/fmnist_features.safetensors"

static const FmnistNetConfig TINY = {2, 3, 4, 3};

/* ---- backward vs finite differences ------------------------------------------- */

typedef struct {
    Ctx *ctx;
    FmnistNet *m;
    FmnistActs *a;
    float *x;
    int64_t labels[2];
    float loss;
} NetRun;

static void net_loss(void *user)
{
    NetRun *r = user;
    fmnist_net_forward(r->ctx, r->m, r->a, tensor4(r->x, DT_F32, 2, 1, 28, 28));
    r->loss = op_cross_entropy_forward(r->ctx, tensor2(r->a->logits, DT_F32, 2, r->m->cfg.classes),
                                       tensor1(r->labels, DT_I64, 2));
}

Test(fmnist_net, backward_matches_finite_differences)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 2);
    FmnistNet m;
    fmnist_net_create(&m, &ctx, &TINY, 1);
    fmnist_net_init(&m, &ctx, 3);
    // LayerNorm and head away from their identity/zero init, so their gradients are generic
    for (int i = 6; i < 10; i++) fill_uniform(m.weights + m.params[i].offset, (int64_t)m.params[i].numel, -0.8f,
                                              0.8f, 40 + (uint64_t)i);
    FmnistActs a;
    fmnist_acts_create(&a, &ctx, &m, 2, 1);
    float x[2 * PX];
    fill_uniform(x, 2 * PX, -1, 1, 7);
    NetRun r = {&ctx, &m, &a, x, {1, 2}, 0};
    net_loss(&r);
    cr_assert(isfinite(r.loss) && r.loss > 0);
    Tensor dlogits = tensor2(a.dlogits, DT_F32, 2, TINY.classes);
    ctx_zero(&ctx, dlogits);
    op_cross_entropy_backward(&ctx, dlogits, tensor2(a.logits, DT_F32, 2, TINY.classes), tensor1(r.labels, DT_I64, 2),
                              1.0f);
    fmnist_net_backward(&ctx, &m, &a, tensor4(x, DT_F32, 2, 1, 28, 28));
    const float one = 1.0f;
    GradCheck g = {&r.loss, 1, &one, net_loss, &r};
    for (int i = 0; i < FMNIST_NET_PARAMS; i++) {
        const FmnistParam *p = &m.params[i];
        double err = gradcheck_max_error(&g, m.weights + p->offset, (int64_t)p->numel, m.grads + p->offset, 1e-2f, 24);
        cr_assert(err < 5e-3, "%s: max error %g", p->name, err);
    }
    // the backward adds: a second pass doubles the gradients
    float *once = malloc(m.n_floats * sizeof(float));
    memcpy(once, m.grads, m.n_floats * sizeof(float));
    net_loss(&r);
    fmnist_net_backward(&ctx, &m, &a, tensor4(x, DT_F32, 2, 1, 28, 28));
    for (size_t j = 0; j < m.n_floats; j++)
        cr_assert(fabsf(m.grads[j] - 2 * once[j]) <= 1e-5f * (1 + fabsf(once[j])), "grads[%zu]", j);
    free(once);
    fmnist_acts_destroy(&a, &ctx);
    fmnist_net_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

/* ---- files --------------------------------------------------------------------- */

static char tmp_path[256];
static const char *tmp(const char *name)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/fmnistnet-%d-%s", (int)getpid(), name);
    return tmp_path;
}

Test(fmnist_net, save_load_round_trip)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    FmnistNet m, back;
    fmnist_net_create(&m, &ctx, &TINY, 0);
    fmnist_net_init(&m, &ctx, 9);
    char path[256];
    snprintf(path, sizeof path, "%s", tmp("w.safetensors"));
    const char *keys[] = {"command", "test_accuracy"}, *values[] = {"deediff test", "0.5"};
    cr_assert_eq(fmnist_net_save(&m, &ctx, path, 2, keys, values), 0, "%s", err_msg());
    cr_assert_eq(fmnist_net_load(&back, &ctx, path), 0, "%s", err_msg());
    cr_assert(!memcmp(&back.cfg, &TINY, sizeof TINY));
    cr_assert_eq(back.n_floats, m.n_floats);
    cr_assert(!memcmp(back.weights, m.weights, m.n_floats * sizeof(float)));
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0);
    cr_assert_str_eq(st_metadata(&st, "command"), "deediff test");
    cr_assert_str_eq(st_metadata(&st, "architecture"), "{\"arch\":\"fmnist-cnn\",\"c1\":2,\"c2\":3,\"c3\":4,\"classes\":3}");
    st_close(&st);
    // the same features from both
    float x[3 * PX], f1[3 * 4], f2[3 * 4];
    fill_uniform(x, 3 * PX, -1, 1, 1);
    fmnist_net_features(&ctx, &m, x, 3, f1, 2);
    fmnist_net_features(&ctx, &back, x, 3, f2, 3);
    cr_assert(!memcmp(f1, f2, sizeof f1));
    fmnist_net_destroy(&m, &ctx);
    fmnist_net_destroy(&back, &ctx);
    unlink(path);
    ctx_destroy(&ctx);
}

Test(fmnist_net, bad_files_are_refused_with_the_field)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    FmnistNet m;
    char path[256];
    snprintf(path, sizeof path, "%s", tmp("bad.safetensors"));
    // not a safetensors file
    FILE *f = fopen(path, "wb");
    fputs("not weights", f);
    fclose(f);
    cr_assert_eq(fmnist_net_load(&m, &ctx, path), -1);
    cr_assert(strstr(err_msg(), path) == err_msg(), "%s", err_msg());
    // a valid file without the architecture
    StWriter *w = st_writer_new();
    float v[4] = {0};
    int64_t shape[1] = {4};
    st_writer_add(w, "conv1.bias", DT_F32, 1, shape, v);
    cr_assert_eq(st_writer_save(w, path), 0);
    st_writer_free(w);
    cr_assert_eq(fmnist_net_load(&m, &ctx, path), -1);
    cr_assert(strstr(err_msg(), "architecture"), "%s", err_msg());
    // an architecture whose tensors are missing
    w = st_writer_new();
    st_writer_add(w, "conv1.bias", DT_F32, 1, shape, v);
    st_writer_meta(w, "architecture", "{\"arch\":\"fmnist-cnn\",\"c1\":2,\"c2\":3,\"c3\":4,\"classes\":3}");
    cr_assert_eq(st_writer_save(w, path), 0);
    st_writer_free(w);
    cr_assert_eq(fmnist_net_load(&m, &ctx, path), -1);
    cr_assert(strstr(err_msg(), "conv1.bias") || strstr(err_msg(), "conv1.weight"), "%s", err_msg());
    // an unknown key in the architecture
    FmnistNetConfig c;
    cr_assert_eq(fmnist_net_config_parse("{\"arch\":\"fmnist-cnn\",\"c1\":2,\"c2\":3,\"c3\":4,\"classes\":3,\"x\":1}",
                                         "w", &c), -1);
    unlink(path);
    ctx_destroy(&ctx);
}

/* ---- the binary ------------------------------------------------------------------ */

/* n gray 28x28 PNGs in dir: a blob of brightness `level` on a dark ground,
   its place and size drawn per image */
static void write_folder(const char *dir, int n, float level, uint64_t seed)
{
    cr_assert(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
    float img[PX], u[4];
    for (int i = 0; i < n; i++) {
        fill_uniform(u, 4, 0, 1, seed * 1000 + (uint64_t)i);
        float cy = 8 + 12 * u[0], cx = 8 + 12 * u[1], r = 4 + 6 * u[2];
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                float d = sqrtf((y - cy) * (y - cy) + (x - cx) * (x - cx));
                img[y * 28 + x] = d < r ? level * (0.8f + 0.2f * u[3]) : -1.0f;
            }
        char path[512];
        snprintf(path, sizeof path, "%s/%04d.png", dir, i);
        cr_assert_eq(png_write_chw(path, img, 1, 28, 28, 0, NULL, NULL), 0, "%s", err_msg());
    }
}

/* runs `DEEDIFF args`, stdout then stderr into out; the exit status */
static int run_deediff(const char *args, char *out, size_t size)
{
    char err[4096];
    int st = cli_run(args, out, size, err, sizeof err);
    strncat(out, err, size - strlen(out) - 1);
    return st;
}

static void remove_folder(const char *dir, int n)
{
    char path[512];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%04d.png", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

Test(fmnist_net, fid_on_png_folders_prints_fd_fmnist_never_fid)
{
    if (!cli_binary()) cr_skip_test("DEEDIFF is not set (make test sets it to the deediff binary)");
    cr_assert(access(COMMITTED_WEIGHTS, R_OK) == 0, "%s: missing (run from the repository root)", COMMITTED_WEIGHTS);
    const int n = 130;  // above the feature dimension 128, else fid refuses
    char a[256], b[256], args[1024], out[8192];
    snprintf(a, sizeof a, "%s", tmp("a"));
    snprintf(b, sizeof b, "%s", tmp("b"));
    write_folder(a, n, 0.9f, 1);
    write_folder(b, n, 0.1f, 2);
    snprintf(args, sizeof args, "fid '%s' '%s' --features fmnist", a, b);
    int st = run_deediff(args, out, sizeof out);
    cr_assert_eq(st, 0, "exit %d: %s", st, out);
    cr_assert(strstr(out, "FD-FMNIST-130 = "), "%s", out);
    cr_assert(!strstr(out, "FID"), "the proxy must never be called FID:\n%s", out);
    // the same folder twice: distance ~0
    snprintf(args, sizeof args, "fid '%s' '%s' --features fmnist:%s", a, a, COMMITTED_WEIGHTS);
    st = run_deediff(args, out, sizeof out);
    cr_assert_eq(st, 0, "exit %d: %s", st, out);
    double d = -1;
    cr_assert(sscanf(strstr(out, "FD-FMNIST-130 = ") + 16, "%lf", &d) == 1 && fabs(d) < 1e-3, "%s", out);
    remove_folder(a, n);
    remove_folder(b, n);
}

Test(fmnist_net, bad_weights_file_exits_2_with_one_line)
{
    if (!cli_binary()) cr_skip_test("DEEDIFF is not set (make test sets it to the deediff binary)");
    char a[256], w[256], args[1024], out[8192];
    snprintf(a, sizeof a, "%s", tmp("c"));
    write_folder(a, 3, 0.5f, 3);
    snprintf(w, sizeof w, "%s", tmp("junk.safetensors"));
    FILE *f = fopen(w, "wb");
    fputs("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", f);
    fclose(f);
    snprintf(args, sizeof args, "fid '%s' '%s' --features fmnist:%s", a, a, w);
    int st = run_deediff(args, out, sizeof out);
    cr_assert_eq(st, 2, "exit %d: %s", st, out);
    cr_assert(strstr(out, w), "the message names the file: %s", out);
    char *nl = strchr(out, '\n');
    cr_assert(nl && nl[1] == 0, "one line: %s", out);
    remove_folder(a, 3);
    unlink(w);
}
