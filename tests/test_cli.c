/*
 * test_cli.c: the deediff commands as a user runs them: bad input gives one
 * line on stderr naming the file and the field, exit status 2, and no output
 * file; `deediff sample` redraws a single image bit for bit; --help works.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/store/store.h"
#include "../kernels/errors.h"
#include "../kernels/op_coverage.h"
#include "../model/safetensors.h"
#include "support/cli_run.h"
#include "support/temp_dir.h"

#define MODEL "tests/fixtures/uvit_uncond_conv.model.safetensors"
#define COND_MODEL "tests/fixtures/uvit_cond_mlp.model.safetensors"

static char dir[64];

static void setup(void)
{
    cli_need_binary();
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-cli-XXXXXX");
}

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

static const char *path_in(const char *name) { return temp_dir_path(dir, name); }

/* a raw safetensors file: header length, header text, data bytes */
static void write_raw(const char *path, uint64_t header_len, const char *header, const void *data,
                      size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(&header_len, 8, 1, f);
    fwrite(header, 1, strlen(header), f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* copies MODEL to path, dropping tensor `drop` and reshaping tensor
   `reshape` to [1] when given, with config `config` when given */
static void write_model_variant(const char *path, const char *drop, const char *reshape,
                                const char *config)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, MODEL), 0, "%s", err_msg());
    StWriter *w = st_writer_new();
    for (int i = 0; i < st.count; i++) {
        const StEntry *e = &st.entries[i];
        if (drop && !strcmp(e->name, drop)) continue;
        if (reshape && !strcmp(e->name, reshape)) {
            int64_t one = 1;
            st_writer_add(w, e->name, e->dtype, 1, &one, st_data(&st, e));
        } else {
            st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, st_data(&st, e));
        }
    }
    st_writer_meta(w, "config", config ? config : st_metadata(&st, "config"));
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    st_close(&st);
}

/* an input file for MODEL (3 channels, 8x8) with x of the given shape/dtype */
static void write_input(const char *path, int64_t side, DType xdt, int nan_at, int with_t)
{
    int64_t xs[4] = {2, 3, side, side}, ts[1] = {2};
    size_t n = (size_t)(2 * 3 * side * side);
    float *x = calloc(n, sizeof(float));
    int64_t *xi = calloc(n, sizeof(int64_t));
    if (nan_at >= 0) x[nan_at] = NAN;
    float t[2] = {10.5f, 900.0f};
    StWriter *w = st_writer_new();
    st_writer_add(w, "x", xdt, 4, xs, xdt == DT_I64 ? (void *)xi : (void *)x);
    if (with_t) st_writer_add(w, "t", DT_F32, 1, ts, t);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    free(x);
    free(xi);
}

/* runs deediff forward and expects exit 2, one stderr line holding both
   needles, and no output file */
static void expect_forward_refused(const char *model, const char *input, const char *needle1,
                                   const char *needle2)
{
    char args[1024], err[2048];
    const char *out = path_in("out.safetensors");
    snprintf(args, sizeof args, "forward --model '%s' --input '%s' --output '%s'", model, input, out);
    int rc = cli_run(args, NULL, 0, err, sizeof err);
    cr_expect_eq(rc, 2, "exit %d for %s: %s", rc, needle2, err);
    cr_expect_eq(count_lines(err), 1, "not one line: %s", err);
    cr_expect(strstr(err, needle1) != NULL, "'%s' not in: %s", needle1, err);
    cr_expect(strstr(err, needle2) != NULL, "'%s' not in: %s", needle2, err);
    cr_expect(access(out, F_OK) != 0, "an output file was written");
}

Test(cli, forward_runs_the_fixture)
{
    const char *in = path_in("in.safetensors"), *out = path_in("out.safetensors");
    write_input(in, 8, DT_F32, -1, 1);
    char args[512];
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s", MODEL, in, out);
    cr_assert_eq(cli_run(args, NULL, 0, NULL, 0), 0);
    SafeTensors st;
    cr_assert_eq(st_open(&st, out), 0, "%s", err_msg());
    const StEntry *e = st_find(&st, "out");
    cr_assert(e && e->dtype == DT_F32 && e->ndim == 4 && e->shape[0] == 2 && e->shape[1] == 3);
    st_close(&st);
}

Test(cli, forward_bad_model_files)
{
    const char *in = path_in("in.safetensors");
    write_input(in, 8, DT_F32, -1, 1);
    char data[16] = {0};

    const char *p = path_in("truncated.safetensors");
    FILE *src = fopen(MODEL, "rb"), *dst = fopen(p, "wb");
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, src);
    fwrite(buf, 1, got / 2, dst);
    fclose(src);
    fclose(dst);
    expect_forward_refused(p, in, p, "header");

    p = path_in("past-end.safetensors");
    write_raw(p, 1u << 20, "{}", NULL, 0);
    expect_forward_refused(p, in, p, "header");

    p = path_in("bad-json.safetensors");
    write_raw(p, 9, "{not json", NULL, 0);
    expect_forward_refused(p, in, p, "header");

    p = path_in("overlap.safetensors");
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    write_raw(p, strlen(h), h, data, 12);
    expect_forward_refused(p, in, p, "tensor '");

    p = path_in("missing.safetensors");
    write_model_variant(p, "pos_embed", NULL, NULL);
    expect_forward_refused(p, in, p, "'pos_embed'");

    p = path_in("shape.safetensors");
    write_model_variant(p, NULL, "norm.weight", NULL);
    expect_forward_refused(p, in, p, "'norm.weight'");

    p = path_in("unknown-key.safetensors");
    write_model_variant(p, NULL, NULL, "{\"img_size\":8,\"patch_size\":2,\"embed_dim\":32,\"wings\":2}");
    expect_forward_refused(p, in, p, "wings");
}

Test(cli, forward_bad_inputs)
{
    const char *p = path_in("dtype.safetensors");
    write_input(p, 8, DT_I64, -1, 1);
    expect_forward_refused(MODEL, p, p, "'x'");

    p = path_in("shape.safetensors");
    write_input(p, 9, DT_F32, -1, 1);
    expect_forward_refused(MODEL, p, p, "'x'");

    p = path_in("nan.safetensors");
    write_input(p, 8, DT_F32, 17, 1);
    expect_forward_refused(MODEL, p, p, "NaN");

    p = path_in("no-t.safetensors");
    write_input(p, 8, DT_F32, -1, 0);
    expect_forward_refused(MODEL, p, p, "'t'");

    /* a class-conditional model needs labels */
    p = path_in("no-y.safetensors");
    int64_t xs[4] = {1, 2, 8, 8}, ts[1] = {1};
    float x[128] = {0}, t[1] = {3};
    StWriter *w = st_writer_new();
    st_writer_add(w, "x", DT_F32, 4, xs, x);
    st_writer_add(w, "t", DT_F32, 1, ts, t);
    cr_assert_eq(st_writer_save(w, p), 0);
    st_writer_free(w);
    expect_forward_refused(COND_MODEL, p, p, "'y'");

    expect_forward_refused(MODEL, path_in("absent.safetensors"), "absent.safetensors", "absent");
}

static size_t read_all(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

Test(cli, sample_redraws_one_image_identically)
{
    char args[1024], err[2048];
    snprintf(args, sizeof args, "sample --model %s --n 3 --steps 8 --seed 5 --out %s/all", MODEL, dir);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "sample --model %s --ids 1 --steps 8 --seed 5 --out %s/one", MODEL, dir);
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    static char a[1 << 16], b[1 << 16];
    size_t na = read_all(path_in("all/000001.png"), a, sizeof a);
    size_t nb = read_all(path_in("one/000001.png"), b, sizeof b);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "image 1 differs when drawn alone");
    cr_expect(access(path_in("all/grid.png"), F_OK) == 0 && access(path_in("all/samples.json"), F_OK) == 0);
    /* a latent (4-channel) model cannot be written as PNG: refused up front */
    snprintf(args, sizeof args, "sample --model %s --n 2 --out %s/cond", COND_MODEL, dir);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, COND_MODEL) != NULL && count_lines(err) == 1, "%s", err);
}

Test(cli, help_and_unknown_flags)
{
    char out[8192], err[2048];
    cr_expect_eq(cli_run("--help", out, sizeof out, NULL, 0), 0);
    cr_expect(strstr(out, "forward") && strstr(out, "train") && strstr(out, "sample"));
    cr_expect_eq(cli_run("forward --help", out, sizeof out, NULL, 0), 0);
    cr_expect(strstr(out, "--model") != NULL);
    cr_expect_eq(cli_run("forward --wings 3", NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, "--wings") != NULL && count_lines(err) == 1, "%s", err);
    cr_expect_eq(cli_run("fly", NULL, 0, err, sizeof err), 2);
}

Test(cli, corrupt_statistics_and_weights_files)
{
    char args[1024], err[2048];
    /* an .npz that is not a zip archive past its magic */
    const char *npz = path_in("broken.npz");
    FILE *f = fopen(npz, "wb");
    cr_assert_not_null(f);
    fputs("PK\003\004 this is not really a zip archive", f);
    fclose(f);
    snprintf(args, sizeof args, "fid '%s' '%s'", npz, npz);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, npz) != NULL && count_lines(err) == 1, "%s", err);
    /* Inception weights that are not a safetensors file */
    const char *w = path_in("inception.safetensors"), *in = path_in("images.safetensors");
    write_raw(w, 9, "{not json", NULL, 0);
    int64_t shape[4] = {1, 3, 8, 8};
    float px[192] = {0};
    StWriter *sw = st_writer_new();
    st_writer_add(sw, "images", DT_F32, 4, shape, px);
    cr_assert_eq(st_writer_save(sw, in), 0);
    st_writer_free(sw);
    snprintf(args, sizeof args, "features --inception '%s' --images '%s' --output '%s'", w, in,
             path_in("out.safetensors"));
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, w) != NULL && count_lines(err) == 1, "%s", err);
    cr_expect(access(path_in("out.safetensors"), F_OK) != 0);
}

/* ---- the method flags: --method, --threshold, and a method's training ---------------- */

#define PLAIN_BACKBONE "results/weights/fmnist-uvit.safetensors"
#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* runs args and expects exit 2, one stderr line holding both needles (the
   second may be NULL), and nothing at `written` */
static void expect_refused(const char *args, const char *written, const char *needle1, const char *needle2)
{
    char err[2048];
    int rc = cli_run(args, NULL, 0, err, sizeof err);
    cr_expect_eq(rc, 2, "exit %d for %s: %s", rc, args, err);
    cr_expect_eq(count_lines(err), 1, "%s: not one line: %s", args, err);
    cr_expect(strstr(err, needle1) != NULL, "%s: '%s' not in: %s", args, needle1, err);
    cr_expect(!needle2 || strstr(err, needle2) != NULL, "%s: '%s' not in: %s", args, needle2, err);
    cr_expect(access(written, F_OK) != 0, "%s: %s was written", args, written);
}

Test(cli, sample_bad_method_flags)
{
    if (access(PLAIN_BACKBONE, R_OK)) cr_skip_test(PLAIN_BACKBONE " is not there");
    static const struct { const char *flags, *needle1, *needle2; } cases[] = {
        {"--threshold 1.5", "--threshold", "1.5"},
        {"--threshold -0.1", "--threshold", "-0.1"},
        {"--threshold abc", "--threshold", NULL},
        /* a plain backbone is not a deediff model */
        {"--method deediff", "--method", PLAIN_BACKBONE},
        {"--method nosuch", "--method", "nosuch"},
        /* the static exit needs exit heads, which a plain backbone lacks */
        {"--method static --threshold 0.3", "--method", "method.heads.0."},
        /* method none (the plain file's own) has no exits */
        {"--threshold 0.2", "--threshold", PLAIN_BACKBONE},
        {"--method none --threshold 0.2", "--threshold", PLAIN_BACKBONE},
    };
    const char *out = path_in("out");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, "sample --model %s --n 2 --steps 2 %s --out '%s'", PLAIN_BACKBONE, cases[i].flags,
                 out);
        expect_refused(args, out, cases[i].needle1, cases[i].needle2);
    }
}

/* a Fashion-MNIST training configuration at path: the model section as given */
static void write_train_config(const char *path, const char *model)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": %s, \"data\": {\"dataset\": \"fmnist\"},"
               " \"train\": {\"steps\": 2, \"batch\": 2, \"seed\": 1},"
               " \"output\": {\"dir\": \"%s\", \"db\": \"%s\"}}\n",
            model, path_in("run"), path_in("results.db"));
    fclose(f);
}

Test(cli, train_bad_method_inputs_write_nothing)
{
    if (access(PLAIN_BACKBONE, R_OK)) cr_skip_test(PLAIN_BACKBONE " is not there");
    /* the backbone's own shape but embed_dim 32 (the backbone has 64) */
    char other[256], tiny[256], run[256], db[256];
    snprintf(other, sizeof other, "%s", path_in("other.json"));
    snprintf(tiny, sizeof tiny, "%s", path_in("tiny.json"));
    snprintf(run, sizeof run, "%s", path_in("run"));
    snprintf(db, sizeof db, "%s", path_in("results.db"));
    write_train_config(
        other, "{\"img_size\":28,\"patch_size\":4,\"in_chans\":1,\"embed_dim\":32,\"depth\":12,"
                      "\"num_heads\":2,\"mlp_ratio\":4,\"qkv_bias\":false,\"mlp_time_embed\":false,\"conv\":true}");
    write_train_config(
        tiny, "{\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":2,\"num_heads\":2}");
    char args[1024];
    if (access(FMNIST, R_OK) == 0) {   /* the shapes are compared after the data set is opened */
        snprintf(args, sizeof args, "train --method deediff --backbone %s --config '%s'", PLAIN_BACKBONE, other);
        expect_refused(args, run, PLAIN_BACKBONE, "another shape");
        cr_expect(access(db, F_OK) != 0, "a database was written");
    }
    static const struct { const char *flags, *needle; } cases[] = {
        {"--method deediff method.nosuch=1", "method.nosuch"},
        {"--method deediff method.uem_buckets=0", "method.uem_buckets"},
        {"--method deediff method.uem_buckets=2.5", "method.uem_buckets"},
        {"--method deediff method.heads=some", "method.heads"},
        {"--method nosuch", "nosuch"},
        /* method none takes no options, and has nothing to train alone */
        {"method.uem_buckets=4", "method.uem_buckets"},
        {"train.freeze_backbone=true", "train.freeze_backbone"},
        /* calm-meta's classifier trains only on a frozen backbone */
        {"--method calm-meta", "train.freeze_backbone"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "train --config '%s' %s", tiny, cases[i].flags);
        expect_refused(args, run, cases[i].needle, tiny);
        cr_expect(access(db, F_OK) != 0, "%s: a database was written", cases[i].flags);
    }
}

/* table sweep, info --method and bench --only refuse bad flags with one line */
Test(cli, table_info_bench_bad_flags)
{
    if (access(PLAIN_BACKBONE, R_OK)) cr_skip_test(PLAIN_BACKBONE " is not there");
    const char *db = path_in("results.db"), *out = path_in("sweep.md");
    char args[1024];
    /* a database with the schema and no eval run in it */
    Store st;
    cr_assert_eq(store_open(&st, db), 0, "%s", err_msg());
    store_close(&st);
    snprintf(args, sizeof args, "table sweep --db '%s' --output '%s'", db, out);
    expect_refused(args, out, "--model", NULL);
    snprintf(args, sizeof args, "table sweep --model %s --db '%s' --output '%s'", PLAIN_BACKBONE, db, out);
    expect_refused(args, out, "--model", "no finished eval runs");
    snprintf(args, sizeof args, "table 2 --db '%s' --output '%s'", db, out);
    expect_refused(args, out, "table", "sweep");
    snprintf(args, sizeof args, "info %s --method deediff", PLAIN_BACKBONE);
    expect_refused(args, out, "--method", "--config");
    expect_refused("bench --only nosuch", out, "--only", "early-exit");
}

/* bench --backend cuda without a GPU: one line naming the backend, exit 2 */
Test(cli, bench_cuda_without_gpu_is_one_line)
{
    if (ctx_cuda_available()) cr_skip_test("this machine has a GPU");
    expect_refused("bench --backend cuda", path_in("nothing"), "--backend cuda", NULL);
}

/* deediff methods: one line per method (name first) with its options under it */
Test(cli, methods_lists_every_method_and_its_options)
{
    char out[8192];
    cr_assert_eq(cli_run("methods", out, sizeof out, NULL, 0), 0);
    static const char *const names[] = {"none ", "deediff ", "berxit ", "calm ", "calm-meta ", "static ", "spruning "};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line[32];
        snprintf(line, sizeof line, "\n%s", names[i]);
        cr_expect(!strncmp(out, names[i], strlen(names[i])) || strstr(out, line), "%s missing:\n%s", names[i], out);
    }
    cr_expect(strstr(out, "batch_rule=per_image|all") && strstr(out, "tolerance=0.01") && strstr(out, "uem_buckets=4"),
              "%s", out);
}

/* deediff ops: a line per op of the generated entry list, then each
   backend's counts, read from the tables (the CUDA column without a GPU) */
Test(cli, ops_lists_every_op_and_its_backends)
{
    char out[16384];
    cr_assert_eq(cli_run("ops", out, sizeof out, NULL, 0), 0);
    static const char *const lines[] = {"\nlinear ", "\nattention ", "\nadd  ", "\nadamw_step ", "\nrandn ",
                                        "\nconv2d ", "\ncross_entropy "};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(out, lines[i]), "%s missing:\n%s", lines[i] + 1, out);
    int ops = 0, backwards = 0;
    for (const OpEntry *e = op_entries; e->name; e++) {
        size_t n = strlen(e->name);
        if (n > 9 && !strcmp(e->name + n - 9, "_backward")) backwards++;
        else if (!(n > 13 && !strcmp(e->name + n - 13, "_backward_set"))) ops++;  /* _set: a backward's variant */
    }
    char want[128];
    snprintf(want, sizeof want, "cpu   %d of %d forward, %d of %d backward", ops, ops, backwards, backwards);
    cr_expect(strstr(out, want), "want '%s' in:\n%s", want, out);
    if (op_backend_table(BACKEND_CUDA)) {
        snprintf(want, sizeof want, "cuda  %d of %d forward, %d of %d backward", ops, ops, backwards, backwards);
        cr_expect(strstr(out, want), "want '%s' in:\n%s", want, out);
    } else {
        cr_expect(strstr(out, "cuda  not built"), "%s", out);
    }
}

/* --backend auto (the default) is the CPU on a machine without a GPU: the
   same bytes as --backend cpu; a bad name and a GPU for a CPU-only command
   are refused with one line */
Test(cli, backend_auto_and_bad_backends)
{
    const char *in = path_in("in.safetensors"), *a = path_in("auto.safetensors"), *c = path_in("cpu.safetensors");
    write_input(in, 8, DT_F32, -1, 1);
    char args[512];
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s --backend nosuch", MODEL, in, a);
    expect_refused(args, a, "--backend", "auto, cpu or cuda");
    snprintf(args, sizeof args, "features --features fmnist --backend cuda --images %s --output %s", in, a);
    expect_refused(args, a, "--backend cuda", "CPU only");
    if (ctx_cuda_available()) cr_skip_test("a GPU is present: auto picks cuda");
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s", MODEL, in, a);
    cr_assert_eq(cli_run(args, NULL, 0, NULL, 0), 0);
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s --backend cpu", MODEL, in, c);
    cr_assert_eq(cli_run(args, NULL, 0, NULL, 0), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, c);
    cr_expect_eq(system(cmd), 0, "--backend auto and cpu wrote different outputs");
}

/* the device scripts (tests/cuda_bench): a bad step or a missing build is
   one line naming it, exit status 2, before anything runs or is written */
Test(cli, gpu_scripts_refuse_bad_input)
{
    char out[4096], err[4096];
    int rc = shell_run("tests/cuda_bench/gpu_check.sh /nonexistent tests:5,nope", out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 2, "%s%s", out, err);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "unknown step 'nope'") != NULL, "%s", err);
    cr_assert(strstr(out, "== tests") == NULL, "a step ran before the list was checked: %s", out);
    rc = shell_run("command -v patchelf >/dev/null || exit 77; "
                   "tests/cuda_bench/gpu_bundle.sh /nonexistent /tmp/deediff-no-bundle.tar.xz",
                   out, sizeof out, err, sizeof err);
    if (rc == 77) return;  /* no patchelf here: the script says so first */
    cr_assert_eq(rc, 2, "%s%s", out, err);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "/nonexistent/deediff: not built") != NULL, "%s", err);
    cr_assert(access("/tmp/deediff-no-bundle.tar.xz", F_OK) != 0);
}
