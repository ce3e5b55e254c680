/*
 * test_t2i_cli.c: text-to-image models and guidance flags as a user runs
 * them (suite "t2i_cli"): `deediff forward` reads each image's context and
 * matches the golden fixture, `deediff info` shows clip_dim, `deediff
 * sample` conditions image i on prompt i (from a safetensors file or U-ViT's
 * MS-COCO feature folder, the same bits either way, redrawn alone bit for
 * bit) with guidance by the empty context, and `deediff eval` records the
 * guidance scale and the exit pairing in its protocol. Bad input (no
 * context, a context or empty context of the wrong shape, flags the model
 * cannot use) is one line naming the file and the field, exit status 2, and
 * nothing written.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/fid_stats.h"
#include "../model/method.h"
#include "../model/npy.h"
#include "../model/safetensors.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/exit_scores.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"

#define FIXTURE "tests/fixtures/uvit_t2i.model.safetensors"
#define FIXTURE_IO "tests/fixtures/uvit_t2i.io.safetensors"
#define COND_FIXTURE "tests/fixtures/uvit_cond_mlp.model.safetensors"
/* a text-to-image model that sampling can write as PNG: 1 channel, 8 x 8, 4 tokens of 6 */
#define T2I_JSON "{\"img_size\":8,\"patch_size\":2,\"in_chans\":1,\"embed_dim\":16,\"depth\":2,\"num_heads\":2," \
                 "\"clip_dim\":6,\"num_clip_token\":4}"
#define L_ 4
#define DC 6
#define PROMPTS 5

static char dir[64];

static void setup(void)
{
    cli_need_binary();
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-t2i-XXXXXX");
}

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(t2i_cli, .init = setup, .fini = teardown, .timeout = 120);

static const char *in_dir(const char *name) { return temp_dir_path(dir, name); }

/* runs `deediff args` expecting exit status 2 with one line on stderr that
   names every one of the (up to two) given strings */
static void expect_bad(const char *args, const char *name1, const char *name2)
{
    char err[4096];
    int rc = cli_run(args, NULL, 0, err, sizeof err);
    cr_expect_eq(rc, 2, "%s: exit status %d, stderr %s", args, rc, err);
    cr_expect_eq(count_lines(err), 1, "%s: %s", args, err);
    cr_expect(strstr(err, name1) != NULL, "%s: '%s' not named in: %s", args, name1, err);
    if (name2) cr_expect(strstr(err, name2) != NULL, "%s: '%s' not named in: %s", args, name2, err);
}

/* a safetensors file with one F32 tensor `name` of the given shape, values uniform(-1, 1) */
static void write_tensor(const char *path, const char *name, int ndim, const int64_t *shape, uint64_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *v = calloc((size_t)n, sizeof(float));
    fill_uniform(v, n, -1, 1, seed);
    StWriter *w = st_writer_new();
    st_writer_add(w, name, DT_F32, ndim, shape, v);
    cr_assert_eq(st_writer_save(w, path), 0, "%s", err_msg());
    st_writer_free(w);
    free(v);
}

/* a .npy file of F32 [d0, d1] */
static void write_npy(const char *path, int64_t d0, int64_t d1, uint64_t seed)
{
    float *v = calloc((size_t)(d0 * d1), sizeof(float));
    fill_uniform(v, d0 * d1, -1, 1, seed);
    int64_t shape[2] = {d0, d1};
    NpyArray a = npy_view('f', 4, 2, shape, v);
    cr_assert_eq(npy_write_file(path, &a), 0, "%s", err_msg());
    free(v);
}

/* the tiny text-to-image model, its prompts (context.safetensors) and the
   empty prompt (empty.npy), in the suite's folder */
static void write_t2i_files(void)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, T2I_JSON, 3);
    /* the context matters: context_embed and pos_embed far from their small init */
    move_params(m.params, m.num_params, m.weights, 0.5f, 4);
    cr_assert_eq(uvit_save(&m, &ctx, in_dir("t2i.safetensors"), 0, NULL, NULL), 0, "%s", err_msg());
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    write_tensor(in_dir("context.safetensors"), "context", 3, (int64_t[]){PROMPTS, L_, DC}, 5);
    write_npy(in_dir("empty.npy"), L_, DC, 6);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

/* ---- forward and info --------------------------------------------------------------- */

Test(t2i_cli, forward_reads_the_context_and_matches_the_fixture)
{
    char args[1024], err[2048], out[8192];
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s", FIXTURE, FIXTURE_IO, in_dir("o.safetensors"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    SafeTensors got, want;
    cr_assert_eq(st_open(&got, in_dir("o.safetensors")), 0, "%s", err_msg());
    cr_assert_eq(st_open(&want, FIXTURE_IO), 0, "%s", err_msg());
    float a[3 * 2 * 8 * 8], b[3 * 2 * 8 * 8];
    int64_t shape[4] = {3, 2, 8, 8};
    cr_assert_eq(st_read_f32(&got, "out", a, 4, shape), 0, "%s", err_msg());
    cr_assert_eq(st_read_f32(&want, "out", b, 4, shape), 0, "%s", err_msg());
    cr_expect(rel_l2(a, b, 3 * 2 * 8 * 8) < 1e-4, "forward vs the PyTorch reference: %g", rel_l2(a, b, 384));
    st_close(&got);
    st_close(&want);
    snprintf(args, sizeof args, "info %s", FIXTURE);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(out, "clip_dim 16, num_clip_token 77") && strstr(out, "94 (16 patches + 78 extra)"), "%s", out);
}

Test(t2i_cli, forward_bad_contexts_write_nothing)
{
    char args[1024], o[256];
    snprintf(o, sizeof o, "%s", in_dir("never.safetensors"));
    /* x and t of the fixture (3 images) with a context of the given shape, or none */
    struct { const char *file; int has; int64_t shape[3]; const char *model; const char *names; } cases[] = {
        {"none.safetensors", 0, {0}, FIXTURE, "missing tensor 'context'"},
        {"tokens.safetensors", 1, {3, 76, 16}, FIXTURE, "shape [3, 76, 16], expected [3, 77, 16]"},
        {"dim.safetensors", 1, {3, 77, 15}, FIXTURE, "shape [3, 77, 15], expected [3, 77, 16]"},
        {"rows.safetensors", 1, {2, 77, 16}, FIXTURE, "shape [2, 77, 16], expected [3, 77, 16]"},
    };
    SafeTensors io;
    cr_assert_eq(st_open(&io, FIXTURE_IO), 0, "%s", err_msg());
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        StWriter *w = st_writer_new();
        for (int i = 0; i < io.count; i++) {
            const StEntry *e = &io.entries[i];
            if (!strcmp(e->name, "x") || !strcmp(e->name, "t"))
                st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, st_data(&io, e));
        }
        int64_t n = cases[c].shape[0] * cases[c].shape[1] * cases[c].shape[2];
        float *v = calloc((size_t)(n ? n : 1), sizeof(float));
        if (cases[c].has) st_writer_add(w, "context", DT_F32, 3, cases[c].shape, v);
        cr_assert_eq(st_writer_save(w, in_dir(cases[c].file)), 0, "%s", err_msg());
        st_writer_free(w);
        free(v);
        snprintf(args, sizeof args, "forward --model %s --input %s --output %s", cases[c].model, in_dir(cases[c].file), o);
        expect_bad(args, in_dir(cases[c].file), cases[c].names);
        cr_expect_neq(access(o, F_OK), 0, "%s: an output was written", cases[c].file);
    }
    st_close(&io);
    /* a context given to a model that is not text-to-image */
    snprintf(args, sizeof args, "forward --model %s --input %s --output %s", COND_FIXTURE, FIXTURE_IO, o);
    expect_bad(args, FIXTURE_IO, "tensor 'y'");
}

/* ---- sample -------------------------------------------------------------------------- */

Test(t2i_cli, sample_conditions_image_i_on_prompt_i_with_the_empty_context)
{
    write_t2i_files();
    char args[2048], err[4096];
    const char *common = "--steps 4 --sampler dpm --seed 3 --guidance 1";
    snprintf(args, sizeof args, "sample --model %s --n 4 %s --context %s --empty-context %s --out %s",
             in_dir("t2i.safetensors"), common, in_dir("context.safetensors"), in_dir("empty.npy"), in_dir("all"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    /* image 2 alone, as samples.json's redraw command says */
    snprintf(args, sizeof args, "sample --model %s --ids 2 %s --context %s --empty-context %s --out %s",
             in_dir("t2i.safetensors"), common, in_dir("context.safetensors"), in_dir("empty.npy"), in_dir("one"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    static char a[1 << 16], b[1 << 16], json[1 << 16];
    size_t na = read_file(in_dir("all/000002.png"), a, sizeof a), nb = read_file(in_dir("one/000002.png"), b, sizeof b);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "image 2 differs when drawn alone");
    size_t nj = read_file(in_dir("all/samples.json"), json, sizeof json - 1);
    json[nj] = 0;
    cr_expect(strstr(json, "\"cfg_exit\":\"independent\"") && strstr(json, "\"context_source\":\"safetensors\"") &&
              strstr(json, "\"empty_context_sha256\":") && strstr(json, "--empty-context "),
              "the protocol does not name the guidance and the contexts: %.600s", json);
    /* another prompt for image 2 gives another image: the context is read */
    snprintf(args, sizeof args, "sample --model %s --ids 3 %s --context %s --empty-context %s --out %s",
             in_dir("t2i.safetensors"), common, in_dir("context.safetensors"), in_dir("empty.npy"), in_dir("three"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    size_t n3 = read_file(in_dir("all/000003.png"), b, sizeof b);
    cr_expect(n3 != na || memcmp(a, b, na) != 0, "images 2 and 3 are the same");

    /* U-ViT's MS-COCO feature folder with the same prompts as caption 0: the same images */
    SafeTensors st;
    cr_assert_eq(st_open(&st, in_dir("context.safetensors")), 0, "%s", err_msg());
    const float *rows = st_data(&st, st_find(&st, "context"));
    cr_assert_eq(mkdir(in_dir("coco"), 0777), 0);
    for (int i = 0; i < PROMPTS; i++) {
        char name[64];
        float moments[8 * 2 * 2] = {0};
        snprintf(name, sizeof name, "coco/%d.npy", i);
        NpyArray mo = npy_view('f', 4, 3, (int64_t[]){8, 2, 2}, moments);
        cr_assert_eq(npy_write_file(in_dir(name), &mo), 0, "%s", err_msg());
        for (int k = 0; k < 2; k++) {   /* caption 0 is prompt i, caption 1 something else */
            snprintf(name, sizeof name, "coco/%d_%d.npy", i, k);
            float other[L_ * DC];
            fill_uniform(other, L_ * DC, -1, 1, 100 + i);
            NpyArray c = npy_view('f', 4, 2, (int64_t[]){L_, DC}, k == 0 ? rows + i * L_ * DC : other);
            cr_assert_eq(npy_write_file(in_dir(name), &c), 0, "%s", err_msg());
        }
    }
    st_close(&st);
    snprintf(args, sizeof args, "sample --model %s --n 4 %s --context %s --empty-context %s --out %s",
             in_dir("t2i.safetensors"), common, in_dir("coco"), in_dir("empty.npy"), in_dir("folder"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    /* grid.png carries no protocol text: equal bytes, equal pixels */
    na = read_file(in_dir("all/grid.png"), a, sizeof a);
    nb = read_file(in_dir("folder/grid.png"), b, sizeof b);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "the feature folder's caption 0 gives other images than the file");
    /* paired exits draw the same images on a model without exits (nothing leaves early) */
    snprintf(args, sizeof args, "sample --model %s --n 4 %s --cfg-exit paired --batch 8 --context %s --empty-context %s "
             "--out %s", in_dir("t2i.safetensors"), common, in_dir("coco"), in_dir("empty.npy"), in_dir("paired"));
    cr_assert_eq(cli_run(args, NULL, 0, err, sizeof err), 0, "%s", err);
    nb = read_file(in_dir("paired/grid.png"), b, sizeof b);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "paired exits changed a model without exits");
    nj = read_file(in_dir("paired/samples.json"), json, sizeof json - 1);
    json[nj] = 0;
    cr_expect(strstr(json, "\"cfg_exit\":\"paired\"") && strstr(json, "\"context_source\":\"mscoco-features\""),
              "%.600s", json);
}

Test(t2i_cli, sample_bad_contexts_and_flags_write_nothing)
{
    write_t2i_files();
    write_tensor(in_dir("tokens.safetensors"), "context", 3, (int64_t[]){PROMPTS, L_ + 1, DC}, 7);
    write_tensor(in_dir("dim.safetensors"), "context", 3, (int64_t[]){PROMPTS, L_, DC - 1}, 8);
    write_tensor(in_dir("named.safetensors"), "prompts", 3, (int64_t[]){PROMPTS, L_, DC}, 9);
    write_npy(in_dir("empty_tokens.npy"), L_ - 1, DC, 10);
    write_npy(in_dir("empty_dim.npy"), L_, DC + 2, 11);
    write_tensor(in_dir("empty_dim.safetensors"), "empty_context", 2, (int64_t[]){L_, DC + 1}, 12);
    const char *model = in_dir("t2i.safetensors");
    char m[512], ctx[512], emp[512], out[512], args[4096];
    snprintf(m, sizeof m, "%s", model);
    snprintf(ctx, sizeof ctx, "%s", in_dir("context.safetensors"));
    snprintf(emp, sizeof emp, "%s", in_dir("empty.npy"));
    snprintf(out, sizeof out, "%s", in_dir("out"));
    struct { const char *flags; const char *name1, *name2; } cases[] = {
        /* a text-to-image model given no context */
        {"", "--context", "text-to-image"},
        /* contexts of the wrong shape: tokens, clip_dim; a file without the tensor */
        {"--context @tokens.safetensors", "tokens.safetensors", "tensor 'context': shape [5, 5, 6], expected [N, 4, 6]"},
        {"--context @dim.safetensors", "dim.safetensors", "tensor 'context': shape [5, 4, 5], expected [N, 4, 6]"},
        {"--context @named.safetensors", "named.safetensors", "tensor 'context': missing"},
        /* an empty context of the wrong shape, as .npy and as .safetensors */
        {"--context @context.safetensors --guidance 1 --empty-context @empty_tokens.npy", "empty_tokens.npy",
         "<f4 [3, 6], expected <f4 [4, 6]"},
        {"--context @context.safetensors --guidance 1 --empty-context @empty_dim.npy", "empty_dim.npy", "[4, 8]"},
        {"--context @context.safetensors --guidance 1 --empty-context @empty_dim.safetensors",
         "empty_dim.safetensors", "tensor 'empty_context': shape [4, 7], expected [4, 6]"},
        /* guidance without the empty context, an empty context without guidance */
        {"--context @context.safetensors --guidance 1", "--empty-context", NULL},
        {"--context @context.safetensors --empty-context @empty.npy", "--empty-context", "--guidance"},
        /* more images than prompts */
        {"--context @context.safetensors --n 6", "--context", "image id 5 has none"},
        /* pairing without guidance, an unknown pairing, paired exits in batches of 1 */
        {"--context @context.safetensors --cfg-exit paired", "--cfg-exit", "--guidance"},
        {"--context @context.safetensors --guidance 1 --empty-context @empty.npy --cfg-exit both", "--cfg-exit",
         "independent or paired"},
        {"--context @context.safetensors --guidance 1 --empty-context @empty.npy --cfg-exit paired --batch 1",
         "--cfg-exit", "batch"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* "@name" stands for the file in the suite's folder */
        char flags[2048] = "";
        for (const char *f = cases[c].flags; *f; f++) {
            if (*f == '@') {
                snprintf(flags + strlen(flags), sizeof flags - strlen(flags), "%s/", dir);
            } else {
                size_t k = strlen(flags);
                flags[k] = *f;
                flags[k + 1] = 0;
            }
        }
        snprintf(args, sizeof args, "sample --model %s --n 2 --steps 2 --sampler dpm %s --out %s", m, flags, out);
        expect_bad(args, cases[c].name1, cases[c].name2);
        cr_expect_neq(access(out, F_OK), 0, "case %zu (%s): the output folder was made", c, cases[c].flags);
    }
    /* contexts or an empty context for a model that is not text-to-image */
    snprintf(args, sizeof args, "sample --model %s --n 2 --context %s --out %s", COND_FIXTURE, ctx, out);
    expect_bad(args, "--context", "not text-to-image");
    snprintf(args, sizeof args, "sample --model %s --n 2 --guidance 1 --empty-context %s --out %s", COND_FIXTURE, emp, out);
    expect_bad(args, "--empty-context", "not text-to-image");
    cr_expect_neq(access(out, F_OK), 0);
}

/* ---- eval: guidance and the exit pairing in the protocol ------------------------------ */

/* a class-conditional DeeDiff model (10 classes + the null class) on 1 x 28 x 28,
   every parameter moved so its exits spread, and reference statistics of
   the FD-FMNIST network's 128 dimensions (mu 0, sigma I) */
static void write_guided_deediff(const char *model, const char *ref)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, "{\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":4,"
                               "\"num_heads\":2,\"num_classes\":11}", 21);
    move_params(m.params, m.num_params, m.weights, 0.1f, 22);
    Method *me;
    cr_assert_eq(method_new(&me, "deediff"), 0, "%s", err_msg());
    method_create_params(me, &ctx, &m);
    method_init_from_backbone(me, &ctx, &m, 23);
    move_params(me->params, me->num_params, me->weights, 0.3f, 24);
    StWriter *w = method_model_writer(me, &ctx, &m, m.weights, me->weights);
    cr_assert_eq(st_writer_save(w, model), 0, "%s", err_msg());
    st_writer_free(w);
    method_free(me, &ctx);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    FidStats st = {.dim = 128, .n = 1000, .mu = calloc(128, sizeof(double)), .sigma = calloc(128 * 128, sizeof(double))};
    for (int i = 0; i < 128; i++) st.sigma[i * 128 + i] = 1;
    cr_assert_eq(fid_stats_save(ref, &st), 0, "%s", err_msg());
    fid_stats_free(&st);
}

Test(t2i_cli, eval_records_guidance_and_the_exit_pairing)
{
    char model[256], ref[256], db[256], args[2048], out[16384], err[16384];
    snprintf(model, sizeof model, "%s", in_dir("cond-deediff.safetensors"));
    snprintf(ref, sizeof ref, "%s", in_dir("ref.npz"));
    snprintf(db, sizeof db, "%s", in_dir("r.db"));
    write_guided_deediff(model, ref);
    const char *modes[2] = {"independent", "paired"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "eval --model %s --n 130 --sampler dpm --steps 3 --ref %s --db %s --threads 2 "
                 "--threshold 0.48 --guidance 1 --cfg-exit %s --batch 64", model, ref, db, modes[k]);
        cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "stdout: %s\nstderr: %s", out, err);
    }
    /* one more without guidance: its protocol names no pairing */
    snprintf(args, sizeof args, "eval --model %s --n 130 --sampler dpm --steps 3 --ref %s --db %s --threads 2 "
             "--threshold 0.48", model, ref, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "stdout: %s\nstderr: %s", out, err);
    cr_assert_eq(db_number(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'done'"), 3);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE json_extract(config, '$.guidance') = 1"), 2);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE json_extract(config, '$.cfg_exit') = 'paired' "
                               "AND name LIKE '%-cfg1-paired/%'"), 1);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE json_extract(config, '$.cfg_exit') = 'independent'"), 1);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE json_extract(config, '$.guidance') = 0 AND "
                               "json_type(config, '$.cfg_exit') IS NULL"), 1);
    /* both passes are stored per image evaluation: the unconditional with CFG_UNCOND_ID_BIT */
    const char *both = "SELECT count(*) FROM exits e JOIN runs r ON r.id = e.run_id WHERE "
                       "json_extract(r.config, '$.cfg_exit') = '%s' AND e.image_id >= 4611686018427387904";
    char q[512];
    for (int k = 0; k < 2; k++) {
        snprintf(q, sizeof q, both, modes[k]);
        cr_expect_eq(db_number(db, q), 130 * 3, "%s: the unconditional passes' exits", modes[k]);
    }
    /* paired: every image evaluation's two passes left at the same block */
    const char *apart = "SELECT count(*) FROM exits c JOIN exits u ON u.run_id = c.run_id AND u.eval = c.eval AND "
                        "u.image_id = c.image_id + 4611686018427387904 JOIN runs r ON r.id = c.run_id WHERE "
                        "json_extract(r.config, '$.cfg_exit') = '%s' AND c.exit_block != u.exit_block";
    snprintf(q, sizeof q, apart, "paired");
    cr_expect_eq(db_number(db, q), 0, "paired passes left at different blocks");
    double li = db_number(db, "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.name = "
                              "'layers_ratio' AND json_extract(r.config, '$.cfg_exit') = 'independent'");
    double lp = db_number(db, "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.name = "
                              "'layers_ratio' AND json_extract(r.config, '$.cfg_exit') = 'paired'");
    cr_log_info("layers ratio: independent %.4f, paired %.4f", li, lp);
    cr_expect(lp >= li && li < 1, "independent %g, paired %g", li, lp);
    /* paired exits in batches of 1 are refused before anything is stored */
    snprintf(args, sizeof args, "eval --model %s --n 130 --ref %s --db %s --guidance 1 --cfg-exit paired --batch 1",
             model, ref, in_dir("never.db"));
    expect_bad(args, "--cfg-exit", "batch");
    cr_expect_neq(access(in_dir("never.db"), F_OK), 0);
}

/* ---- what does not read contexts yet ------------------------------------------------- */

/* train, prune and analyze have no prompts to give a text-to-image model:
   one line naming the model's clip_dim, nothing written */
Test(t2i_cli, train_without_prompts_prune_and_analyze_refuse_text_to_image_models)
{
    char args[2048], run[256], db[256], cfg[256], pruned[256], figs[256];
    snprintf(run, sizeof run, "%s", in_dir("run"));
    snprintf(db, sizeof db, "%s", in_dir("r.db"));
    snprintf(cfg, sizeof cfg, "%s", in_dir("t2i.json"));
    snprintf(pruned, sizeof pruned, "%s", in_dir("pruned.safetensors"));
    snprintf(figs, sizeof figs, "%s", in_dir("figs"));
    snprintf(args, sizeof args, "analyze --model %s --out %s --db %s", FIXTURE, figs, db);
    expect_bad(args, FIXTURE, "'clip_dim' is 16");
    cr_expect_neq(access(figs, F_OK), 0);
    cr_expect_neq(access(db, F_OK), 0);
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST is not installed (train and prune open their data first)");
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": {\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":2,"
               "\"num_heads\":2,\"clip_dim\":8,\"num_clip_token\":3}, \"data\": {\"dataset\": \"fmnist\"},"
               " \"train\": {\"steps\": 2, \"batch\": 2, \"seed\": 1}, \"output\": {\"dir\": \"%s\", \"db\": \"%s\"}}\n",
            run, db);
    fclose(f);
    snprintf(args, sizeof args, "train --config %s", cfg);
    expect_bad(args, cfg, "has prompts of 0 x 0 token features, the model reads 3 x 8");
    cr_expect_neq(access(run, F_OK), 0);
    cr_expect_neq(access(db, F_OK), 0);
    /* a text-to-image model of Fashion-MNIST's shape to prune */
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, "{\"img_size\":28,\"patch_size\":7,\"in_chans\":1,\"embed_dim\":16,\"depth\":2,"
                               "\"num_heads\":2,\"clip_dim\":8,\"num_clip_token\":3}", 1);
    cr_assert_eq(uvit_save(&m, &ctx, in_dir("fm-t2i.safetensors"), 0, NULL, NULL), 0, "%s", err_msg());
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    snprintf(args, sizeof args, "prune --model %s --ratio 0.5 --output %s --batch 2", in_dir("fm-t2i.safetensors"),
             pruned);
    expect_bad(args, "'clip_dim' is 8", NULL);
    cr_expect_neq(access(pruned, F_OK), 0);
}

/* a text-to-image U-ViT trains on an MS-COCO-style feature folder (moments
   and captions), with prompt dropout to the empty context, and DeeDiff on
   it; dropout without the empty context is refused */
Test(t2i_cli, train_reads_prompts_with_dropout_to_the_empty_context)
{
    enum { N = 6, ZC = 2, S = 4, L = 3, D = 8 };
    char folder[256], args[2048], cfg[256], db[256], out[8192], err[8192];
    snprintf(folder, sizeof folder, "%s", in_dir("coco"));
    cr_assert_eq(mkdir(folder, 0777), 0);
    for (int i = 0; i < N; i++) {
        char p[512];
        float m[2 * ZC * S * S];
        fill_uniform(m, 2 * ZC * S * S, -1, 1, 100 + i);
        int64_t shape[3] = {2 * ZC, S, S};
        NpyArray a = npy_view('f', 4, 3, shape, m);
        snprintf(p, sizeof p, "%s/%d.npy", folder, i);
        cr_assert_eq(npy_write_file(p, &a), 0, "%s", err_msg());
        for (int k = 0; k < 1 + i % 2; k++) {
            snprintf(p, sizeof p, "%s/%d_%d.npy", folder, i, k);
            write_npy(p, L, D, 200 + 10 * i + k);
        }
    }
    write_npy(in_dir("empty3x8.npy"), L, D, 7);
    snprintf(cfg, sizeof cfg, "%s", in_dir("t2i-train.json"));
    snprintf(db, sizeof db, "%s", in_dir("t.db"));
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"model\": {\"img_size\":%d,\"patch_size\":2,\"in_chans\":%d,\"embed_dim\":16,\"depth\":2,"
               "\"num_heads\":2,\"clip_dim\":%d,\"num_clip_token\":%d}, \"data\": {\"dataset\": \"latents\", "
               "\"path\": \"%s\", \"empty_context\": \"%s\"}, \"train\": {\"steps\": 3, \"batch\": 2, \"seed\": 1, "
               "\"noise\": \"discrete\", \"p_uncond\": 0.5, \"log_every\": 1}, \"output\": {\"dir\": \"%s\", \"db\": \"%s\", "
               "\"export\": \"%s\"}}\n", S, ZC, D, L, folder, in_dir("empty3x8.npy"), in_dir("t2i-run"), db,
            in_dir("t2i-trained.safetensors"));
    fclose(f);
    snprintf(args, sizeof args, "train --config %s --threads 1", cfg);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 1);
    cr_expect_eq(db_number(db, "SELECT count(*) FROM train_log"), 3);
    snprintf(args, sizeof args, "train --config %s --method deediff --backbone %s output.dir=%s output.export=%s "
                                "--threads 1", cfg, in_dir("t2i-trained.safetensors"), in_dir("dd-run"),
             in_dir("dd.safetensors"));
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_eq(access(in_dir("dd.safetensors"), R_OK), 0);
    /* prompt dropout needs the empty prompt */
    snprintf(args, sizeof args, "train --config %s data.empty_context= output.dir=%s", cfg, in_dir("never"));
    expect_bad(args, cfg, "data.empty_context: a text-to-image model's prompt dropout");
    cr_expect_neq(access(in_dir("never"), F_OK), 0);
}
