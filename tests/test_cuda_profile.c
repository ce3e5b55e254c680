/*
 * test_cuda_profile.c: `--profile` on a GPU (suite "cuda", which make
 * gpu-check runs): CUPTI's records, or CUDA events when forced, summed by
 * the phases that launched them, into a results database. Without a CUDA
 * build or a GPU every test skips with its reason; the CPU side of the
 * profiler is tests/test_profile.c.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness/profile/profile.h"
#include "harness/store/store_kernels.h"
#include "kernels/errors.h"
#include "kernels/phase.h"
#include "tests/support/temp_dir.h"

#define N (1 << 20)

typedef struct { int64_t rows, block0, block1, run_total, block_total, spans; char source[32], note[512]; } Seen;

static int look(void *user, const KernelTiming *r)
{
    Seen *s = user;
    s->rows++;
    if (!strcmp(r->phase, "block") && r->phase_index == 0) s->block0 += r->count;
    if (!strcmp(r->phase, "block") && r->phase_index == 1) s->block1 += r->count;
    if (!strcmp(r->phase, "block")) s->block_total += r->total_ns;
    if (!strcmp(r->phase, "run")) s->run_total += r->total_ns;
    if (!strcmp(r->kernel, KERNEL_TIMING_SPAN)) s->spans++;
    return 0;
}

/* two phases of known kernel counts (op_scale: one kernel a call) under a
   sampling step, profiled into a fresh database */
static Seen profile_some_kernels(void)
{
    if (!ctx_cuda_available()) cr_skip_test("no CUDA device (or a build without CUDA)");
    char dir[64];
    temp_dir_make(dir, sizeof dir, "/tmp/deediff-cuda-profile-XXXXXX");
    Ctx ctx;
    cr_assert_eq(ctx_init_cuda(&ctx, 0), 0, "%s", err_msg());
    float *x = ctx_alloc(&ctx, N * sizeof(float));
    Tensor t = tensor1(x, DT_F32, N);
    Profiler *p;
    cr_assert_eq(profile_start(&p, &ctx), 0, "%s", err_msg());
    op_scale(&ctx, t, 1.0f);   /* the run alone */
    phase_begin(&ctx, PHASE_SAMPLE_STEP, 0);
    phase_begin(&ctx, PHASE_BLOCK, 0);
    for (int i = 0; i < 3; i++) op_scale(&ctx, t, 1.0f);
    phase_end(&ctx, PHASE_BLOCK);
    phase_begin(&ctx, PHASE_BLOCK, 1);
    for (int i = 0; i < 5; i++) op_scale(&ctx, t, 1.0f);
    phase_end(&ctx, PHASE_BLOCK);
    phase_end(&ctx, PHASE_SAMPLE_STEP);
    Store s;
    cr_assert_eq(store_open(&s, temp_dir_path(dir, "r.db")), 0, "%s", err_msg());
    RunInfo ri = {.kind = "sample", .name = "cuda-profile", .backend = "cuda"};
    int64_t id, rows;
    cr_assert_eq(store_run_begin(&s, &ri, &id), 0, "%s", err_msg());
    cr_assert_eq(profile_finish(p, &s, id, &rows), 0, "%s", err_msg());
    cr_expect_null(ctx.phases, "the hooks are removed");
    Seen seen = {0};
    cr_assert_eq(store_kernel_timings_read(&s, id, look, &seen), 0, "%s", err_msg());
    cr_assert_eq(store_kernel_timing_source(&s, id, seen.source, seen.note, sizeof seen.source), 0);
    cr_expect_eq(seen.rows, rows);
    store_close(&s);
    ctx_free(&ctx, x);
    ctx_destroy(&ctx);
    temp_dir_remove(dir);
    cr_log_info("profile: %s%s%s, %lld rows", seen.source, seen.note[0] ? ": " : "", seen.note, (long long)rows);
    return seen;
}

Test(cuda, profile_cupti_sums_kernels_by_phase)
{
    unsetenv(PROFILE_ENV);
    Seen s = profile_some_kernels();
    if (strcmp(s.source, "cupti")) cr_skip_test("CUPTI did not start here: %s", s.note);
    cr_expect_eq(s.block0, 3, "block 0 launched 3 kernels, CUPTI saw %lld", (long long)s.block0);
    cr_expect_eq(s.block1, 5, "block 1 launched 5 kernels, CUPTI saw %lld", (long long)s.block1);
    cr_expect_gt(s.block_total, 0);
    cr_expect_gt(s.run_total, s.block_total, "the run holds the blocks and one kernel more");
    cr_expect_eq(s.spans, 0);
}

Test(cuda, profile_cuda_events_time_phases)
{
    setenv(PROFILE_ENV, "cuda-events", 1);
    Seen s = profile_some_kernels();
    unsetenv(PROFILE_ENV);
    cr_expect_str_eq(s.source, "cuda-events");
    cr_expect(strstr(s.note, PROFILE_ENV) != NULL, "note: %s", s.note);
    cr_expect_eq(s.block0, 1, "one span of block 0");
    cr_expect_eq(s.block1, 1, "one span of block 1");
    cr_expect_eq(s.rows, 4, "run, sample_step 0, block 0, block 1");
    cr_expect_geq(s.run_total, s.block_total);
}
