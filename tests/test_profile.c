/*
 * test_profile.c: `--profile` without a GPU: the aggregator of
 * harness/profile/kernel_agg.h fed made-up CUPTI records (sums by phase,
 * records out of order, folding in two rounds, CUDA-event spans), the store
 * of kernel_timings (round trip, an old results.db upgraded), the phase
 * marks the model makes on a CPU context (kernels/phase.h), and --profile
 * refused on the CPU backend. A GPU run is tests/test_cuda_profile.c.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/profile/kernel_agg.h"
#include "harness/profile/profile.h"
#include "harness/store/store_kernels.h"
#include "kernels/errors.h"
#include "kernels/phase.h"
#include "model/method.h"
#include "model/sampler.h"
#include "tests/support/cli_run.h"
#include "tests/support/db_query.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_uvit.h"

static char dir[64];

static void make_dir(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-profile-XXXXXX"); }
static void remove_dir(void) { temp_dir_remove(dir); }

TestSuite(profile, .init = make_dir, .fini = remove_dir);

/* the row (phase, index, kernel) of a table, or NULL */
static const KernelTiming *find(const KernelTiming *t, int64_t n, const char *phase, int index, const char *kernel)
{
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(t[i].phase, phase) && t[i].phase_index == index && !strcmp(t[i].kernel, kernel)) return &t[i];
    return NULL;
}

static void expect_row(const KernelTiming *t, int64_t n, const char *phase, int index, const char *kernel,
                       int64_t count, int64_t total, int64_t min, int64_t max)
{
    const KernelTiming *r = find(t, n, phase, index, kernel);
    cr_assert_not_null(r, "no row %s %d %s", phase, index, kernel);
    cr_expect_eq(r->count, count, "%s %d %s: count %lld", phase, index, kernel, (long long)r->count);
    cr_expect_eq(r->total_ns, total, "%s %d %s: total %lld", phase, index, kernel, (long long)r->total_ns);
    cr_expect_eq(r->min_ns, min, "%s %d %s: min %lld", phase, index, kernel, (long long)r->min_ns);
    cr_expect_eq(r->max_ns, max, "%s %d %s: max %lld", phase, index, kernel, (long long)r->max_ns);
}

/* Two sampling steps of two blocks, the second step's block 1 with an exit
   rule and a head after it. Correlation ids (CUPTI's per API call):
     1      run            gemm (a kernel before any phase)
     10-19  step 0 > block 0: gemm 100 ns, ln 10 ns
     20-29  step 0 > block 1: gemm 120 ns
     30-39  step 1 > block 0: gemm 80 ns
     40-49  step 1 > block 1: gemm 90 ns
     50     step 1 > exit_rule 1: uem 7 ns
     60     step 1 > head 1: dec 5 ns
     70     step 1 (between phases): axpby 3 ns
   The records come in a scrambled order, split over two resolves. */
Test(profile, aggregator_sums_by_phase)
{
    KernelAgg *a = kagg_new();
    uint32_t s0 = kagg_path(a, 0, PHASE_SAMPLE_STEP, 0), s1 = kagg_path(a, 0, PHASE_SAMPLE_STEP, 1);
    uint32_t s0b0 = kagg_path(a, s0, PHASE_BLOCK, 0), s0b1 = kagg_path(a, s0, PHASE_BLOCK, 1);
    uint32_t s1b0 = kagg_path(a, s1, PHASE_BLOCK, 0), s1b1 = kagg_path(a, s1, PHASE_BLOCK, 1);
    uint32_t s1r1 = kagg_path(a, s1, PHASE_EXIT_RULE, 1), s1h1 = kagg_path(a, s1, PHASE_HEAD, 1);
    cr_expect_eq(kagg_path(a, s0, PHASE_BLOCK, 1), s0b1, "a path is interned once");
    cr_expect_neq(s0b0, s1b0);

    /* round 1: step 0 whole, the first block of step 1; kernels before their correlation records */
    kagg_kernel(a, "gemm", 1000, 1120, 21);
    kagg_kernel(a, "gemm", 500, 600, 11);
    kagg_kernel(a, "ln", 600, 610, 12);
    kagg_kernel(a, "gemm", 0, 50, 1);
    kagg_kernel(a, "gemm", 2000, 2080, 31);
    kagg_correlation(a, 30, s1b0);
    kagg_correlation(a, 20, s0b1);
    kagg_correlation(a, 10, s0b0);
    kagg_correlation(a, 11, s0b0);   /* a second call in the same phase */
    kagg_correlation(a, 35, s1);     /* block 0 of step 1 ended at call 35; 36.. in step 1 alone */
    cr_expect_eq(kagg_held(a), 5 + 4, "a run of one phase keeps its first record");
    kagg_resolve(a);
    cr_expect_eq(kagg_held(a), 1, "the phase in force stays");

    /* round 2: 36..39 in step 1 launched nothing; the rest */
    kagg_correlation(a, 40, s1b1);
    kagg_correlation(a, 50, s1r1);
    kagg_correlation(a, 60, s1h1);
    kagg_correlation(a, 70, s1);
    kagg_kernel(a, "axpby", 4000, 4003, 70);
    kagg_kernel(a, "dec", 3900, 3905, 60);
    kagg_kernel(a, "uem", 3800, 3807, 50);
    kagg_kernel(a, "gemm", 3000, 3090, 41);
    kagg_resolve(a);

    int64_t n;
    const KernelTiming *t = kagg_rows(a, &n);
    expect_row(t, n, "run", -1, "gemm", 5, 50 + 100 + 120 + 80 + 90, 50, 120);
    expect_row(t, n, "run", -1, "ln", 1, 10, 10, 10);
    expect_row(t, n, "run", -1, "uem", 1, 7, 7, 7);
    expect_row(t, n, "sample_step", 0, "gemm", 2, 220, 100, 120);
    expect_row(t, n, "sample_step", 0, "ln", 1, 10, 10, 10);
    expect_row(t, n, "sample_step", 1, "gemm", 2, 170, 80, 90);
    expect_row(t, n, "sample_step", 1, "axpby", 1, 3, 3, 3);
    expect_row(t, n, "sample_step", 1, "dec", 1, 5, 5, 5);
    expect_row(t, n, "block", 0, "gemm", 2, 180, 80, 100);
    expect_row(t, n, "block", 0, "ln", 1, 10, 10, 10);
    expect_row(t, n, "block", 1, "gemm", 2, 210, 90, 120);
    expect_row(t, n, "exit_rule", 1, "uem", 1, 7, 7, 7);
    expect_row(t, n, "head", 1, "dec", 1, 5, 5, 5);
    cr_expect_null(find(t, n, "block", 1, "uem"), "the exit rule is not inside the block");
    cr_expect_eq(n, 5 + 2 + 4 + 2 + 1 + 1 + 1, "rows: %lld", (long long)n);
    /* ordered by phase kind, index, then total time */
    cr_expect_str_eq(t[0].phase, "run");
    cr_expect_str_eq(t[0].kernel, "gemm");
    cr_expect_str_eq(t[n - 1].phase, "exit_rule");
    kagg_free(a);
}

/* CUDA events: each span counts in its innermost phase only */
Test(profile, aggregator_spans)
{
    KernelAgg *a = kagg_new();
    uint32_t step = kagg_path(a, 0, PHASE_TRAIN_STEP, -1);
    uint32_t b2 = kagg_path(a, step, PHASE_BLOCK, 2);
    kagg_span(a, b2, 40);
    kagg_span(a, b2, 60);
    kagg_span(a, step, 300);
    kagg_span(a, step, 200);
    kagg_span(a, 0, 1000);
    int64_t n;
    const KernelTiming *t = kagg_rows(a, &n);
    cr_expect_eq(n, 3);
    expect_row(t, n, "run", -1, KERNEL_TIMING_SPAN, 1, 1000, 1000, 1000);
    expect_row(t, n, "train_step", -1, KERNEL_TIMING_SPAN, 2, 500, 200, 300);
    expect_row(t, n, "block", 2, KERNEL_TIMING_SPAN, 2, 100, 40, 60);
    kagg_free(a);
}

/* ---- the store ------------------------------------------------------------------ */

static int64_t new_run(Store *s)
{
    RunInfo ri = {.kind = "sample", .name = "profiled", .backend = "cuda"};
    int64_t id;
    cr_assert_eq(store_run_begin(s, &ri, &id), 0, "%s", err_msg());
    return id;
}

typedef struct { KernelTiming rows[8]; char text[8][2][32]; int n; } ReadBack;

static int keep(void *user, const KernelTiming *r)
{
    ReadBack *b = user;
    cr_assert_lt(b->n, 8);
    b->rows[b->n] = *r;
    snprintf(b->text[b->n][0], 32, "%s", r->phase);
    snprintf(b->text[b->n][1], 32, "%s", r->kernel);
    b->rows[b->n].phase = b->text[b->n][0];
    b->rows[b->n].kernel = b->text[b->n][1];
    b->n++;
    return 0;
}

Test(profile, store_round_trip)
{
    const char *db = temp_dir_path(dir, "rt.db");
    Store s;
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    int64_t id = new_run(&s);
    char source[64], note[64];
    cr_assert_eq(store_kernel_timing_source(&s, id, source, note, sizeof source), 0);
    cr_expect_str_eq(source, "none", "a run without --profile");
    KernelTiming rows[] = {
        {"run", -1, "gemm", 3, 300, 90, 110},
        {"block", 0, "gemm", 1, 100, 100, 100},
        {"block", 0, "_Z9layernormILi64EEvPKf", 2, 20, 9, 11},
    };
    cr_assert_eq(store_kernel_timings(&s, id, "cupti", NULL, rows, 3), 0, "%s", err_msg());
    /* written again: replaced, not added */
    cr_assert_eq(store_kernel_timings(&s, id, "cuda-events", "cannot load libcupti.so.13", rows, 3), 0,
                 "%s", err_msg());
    ReadBack b = {0};
    cr_assert_eq(store_kernel_timings_read(&s, id, keep, &b), 0, "%s", err_msg());
    cr_assert_eq(b.n, 3);
    cr_expect_str_eq(b.rows[0].phase, "block");   /* by phase, index, total time */
    cr_expect_str_eq(b.rows[0].kernel, "gemm");
    cr_expect_str_eq(b.rows[1].kernel, "_Z9layernormILi64EEvPKf");
    cr_expect_eq(b.rows[1].count, 2);
    cr_expect_eq(b.rows[1].min_ns, 9);
    cr_expect_eq(b.rows[1].max_ns, 11);
    cr_expect_str_eq(b.rows[2].phase, "run");
    cr_expect_eq(b.rows[2].phase_index, -1);
    cr_expect_eq(b.rows[2].total_ns, 300);
    cr_assert_eq(store_kernel_timing_source(&s, id, source, note, sizeof source), 0);
    cr_expect_str_eq(source, "cuda-events");
    cr_expect_str_eq(note, "cannot load libcupti.so.13");
    /* a bad source or run is refused whole: the rows stay as they were */
    cr_expect_eq(store_kernel_timings(&s, id, "nvtx", NULL, rows, 1), -1);
    cr_expect(strstr(err_msg(), db) == err_msg() && !strchr(err_msg(), '\n'), "%s", err_msg());
    cr_expect_eq(store_kernel_timings(&s, id + 99, "cupti", NULL, rows, 1), -1);
    b.n = 0;
    cr_assert_eq(store_kernel_timings_read(&s, id, keep, &b), 0);
    cr_expect_eq(b.n, 3);
    store_close(&s);
}

/* a results.db of version 3 opens, its runs read 'none', and takes timings */
Test(profile, old_database_upgrades)
{
    const char *db = temp_dir_path(dir, "v3.db");
    char *v3 = schema_before(4);
    Store s;
    cr_assert_eq(store_open_schema(&s, db, v3), 0, "%s", err_msg());
    free(v3);
    int64_t old = new_run(&s);
    store_close(&s);
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    store_close(&s);
    cr_expect_eq(db_number(db, "PRAGMA user_version"), store_schema_version());
    cr_expect_eq(db_number(db, "SELECT count(*) FROM runs WHERE kernel_timing = 'none' "
                               "AND kernel_timing_note IS NULL"), 1);
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    KernelTiming row = {"run", -1, "gemm", 1, 5, 5, 5};
    cr_expect_eq(store_kernel_timings(&s, old, "cupti", NULL, &row, 1), 0, "%s", err_msg());
    store_close(&s);
    cr_expect_eq(db_number(db, "SELECT total_ns FROM kernel_timings"), 5);
}

/* ---- the marks the model makes, on the CPU --------------------------------------------- */

typedef struct {
    PhaseKind open[16];
    int depth, begun[PHASE_KINDS], max_index[PHASE_KINDS], max_depth;
} Marks;

static void mark_begin(void *user, PhaseKind kind, int index)
{
    Marks *m = user;
    cr_assert_lt(m->depth, 16);
    m->open[m->depth++] = kind;
    if (m->depth > m->max_depth) m->max_depth = m->depth;
    m->begun[kind]++;
    if (index > m->max_index[kind]) m->max_index[kind] = index;
}

static void mark_end(void *user, PhaseKind kind)
{
    Marks *m = user;
    cr_assert_gt(m->depth, 0, "phase_end(%s) with nothing open", phase_kind_name(kind));
    cr_assert_eq(m->open[m->depth - 1], kind, "phase_end(%s) closes %s", phase_kind_name(kind),
                 phase_kind_name(m->open[m->depth - 1]));
    m->depth--;
}

#define TINY "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":4,\"num_heads\":2," \
             "\"mlp_ratio\":2,\"conv\":true}"

/* DDIM with 3 steps, DeeDiff at threshold t: the marks pair, and count as
   the early exit says */
static Marks sample_marks(double threshold)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT m;
    tiny_uvit_create(&m, &ctx, TINY, 5);
    Method *me;
    cr_assert_eq(method_new(&me, "deediff"), 0, "%s", err_msg());
    method_create_params(me, &ctx, &m);
    method_init_from_backbone(me, &ctx, &m, 9);
    Marks marks = {0};
    for (int k = 0; k < PHASE_KINDS; k++) marks.max_index[k] = -2;
    struct PhaseHooks hooks = {mark_begin, mark_end, &marks};
    NoisePredictor *p = method_predictor(me, &ctx, &m, 2, SCHEDULE_VPSDE, threshold, NULL);
    SamplerConfig sc = sampler_config_default(SAMPLER_DDIM, SCHEDULE_VPSDE);
    sc.steps = 3;
    int64_t ids[2] = {0, 1};
    float out[2 * 2 * 8 * 8];
    ctx.phases = &hooks;
    cr_assert_eq(sample_run(&ctx, p, &sc, 2, 8, 8, 2, ids, NULL, out), 0, "%s", err_msg());
    ctx.phases = NULL;
    cr_expect_eq(marks.depth, 0, "every phase closed");
    method_predictor_free(me, &ctx, p);
    method_free(me, &ctx);
    uvit_destroy(&m, &ctx);
    ctx_destroy(&ctx);
    return marks;
}

Test(profile, sampling_marks_its_phases)
{
    Marks full = sample_marks(0);   /* no exit: every block, no head, no rule */
    cr_expect_eq(full.begun[PHASE_SAMPLE_STEP], 3);
    cr_expect_eq(full.max_index[PHASE_SAMPLE_STEP], 2);
    cr_expect_eq(full.begun[PHASE_BLOCK], 3 * 5, "3 evaluations of 5 blocks");
    cr_expect_eq(full.max_index[PHASE_BLOCK], 4);
    cr_expect_eq(full.begun[PHASE_HEAD] + full.begun[PHASE_EXIT_RULE], 0);
    cr_expect_eq(full.max_depth, 2, "sample_step > block");

    Marks first = sample_marks(1);  /* every image at the first exit */
    cr_expect_eq(first.begun[PHASE_BLOCK], 3, "block 0 of each evaluation");
    cr_expect_eq(first.begun[PHASE_EXIT_RULE], 3);
    cr_expect_eq(first.begun[PHASE_HEAD], 3);
    cr_expect_eq(first.max_index[PHASE_HEAD], 0);
}

/* ---- --profile on the CPU ---------------------------------------------------------- */

Test(profile, refused_on_the_cpu_backend)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Profiler *p = (Profiler *)&ctx;
    err_clear();
    cr_expect_eq(profile_start(&p, &ctx), -1);
    cr_expect_null(p);
    cr_expect_null(ctx.phases, "no hooks left behind");
    cr_expect(strstr(err_msg(), "--profile") == err_msg() && !strchr(err_msg(), '\n'), "%s", err_msg());
    ctx_destroy(&ctx);
}

/* the documented behaviour of the commands: one line, exit status 2, no run written */
Test(profile, cli_profile_on_the_cpu_exits_2)
{
    cli_need_binary();
    const char *db = temp_dir_path(dir, "cli.db");
    char args[1024], err[4096];
    snprintf(args, sizeof args, "sample --model results/weights/fmnist-uvit.safetensors --n 1 --steps 2 "
             "--out %s --backend cpu --profile --db %s", temp_dir_path(dir, "out"), db);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, "--profile") != NULL && count_lines(err) == 1, "%s", err);
    cr_expect_eq(access(db, F_OK), -1, "nothing written");
    snprintf(args, sizeof args, "train --help");
    char out[16384];
    cr_expect_eq(cli_run(args, out, sizeof out, NULL, 0), 0);
    cr_expect(strstr(out, "--profile") != NULL, "train --help lists --profile");
    snprintf(args, sizeof args, "eval --help");
    cr_expect_eq(cli_run(args, out, sizeof out, NULL, 0), 0);
    cr_expect(strstr(out, "--profile") != NULL, "eval --help lists --profile");
}

/* `deediff kernels RUN` prints each phase's top kernels from the table */
Test(profile, cli_kernels_prints_the_table)
{
    cli_need_binary();
    const char *db = temp_dir_path(dir, "k.db");
    Store s;
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    int64_t id = new_run(&s), bare = new_run(&s);
    KernelTiming rows[] = {
        {"run", -1, "gemm_bf16", 4, 4000, 900, 1100},
        {"run", -1, "layernorm", 2, 100, 50, 50},
        {"block", 3, "gemm_bf16", 2, 2000, 1000, 1000},
    };
    cr_assert_eq(store_kernel_timings(&s, id, "cupti", NULL, rows, 3), 0, "%s", err_msg());
    store_close(&s);
    char args[512], out[8192], err[2048];
    snprintf(args, sizeof args, "kernels %lld --db %s --top 1", (long long)id, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(out, "timed by cupti") != NULL, "%s", out);
    cr_expect(strstr(out, "block 3") != NULL && strstr(out, "run -1") != NULL, "%s", out);
    cr_expect(strstr(out, "gemm_bf16") != NULL, "%s", out);
    cr_expect(strstr(out, "layernorm") == NULL, "--top 1 shows one kernel per phase: %s", out);
    snprintf(args, sizeof args, "kernels %lld --db %s", (long long)bare, db);
    cr_expect_eq(cli_run(args, NULL, 0, err, sizeof err), 2);
    cr_expect(strstr(err, "--profile") != NULL && count_lines(err) == 1, "%s", err);
}
