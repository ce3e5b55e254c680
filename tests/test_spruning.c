/*
 * test_spruning.c: the S-Pruning baseline (Diff-Pruning, model/uvit_prune.h,
 * baselines/spruning.c, `deediff prune`): Taylor scores against a
 * brute-force sum over the parameters by name; ratio 1 leaves the network
 * bit for bit; a pruned network hits the multiply-add target with the
 * smallest uniform fraction and computes what the original computes with
 * the removed groups' weights zeroed; a pruned file's shapes, weights,
 * outputs and method options survive a save and load; the gradient pass
 * sums the gradients of t = 1/N, 2/N, ... on one noise draw; the stopping
 * rule; and the command's bad input, output and fine-tuning.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/method.h"
#include "../model/uvit_prune.h"
#include "support/cli_run.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"
#include "support/tiny_uvit.h"

/* D 16, 4 heads of 4, MLP 32, 5 blocks (2 with skips), qkv bias: every grouped tensor */
#define TINY "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":16,\"depth\":4," \
             "\"num_heads\":4,\"mlp_ratio\":2,\"qkv_bias\":true,\"conv\":true}"
#define NB 3
#define IMG (2 * 8 * 8)

typedef struct {
    Ctx ctx;
    UViT m;
    float x[NB * IMG], t[NB];
} Net;

/* random weights (biases included) and random "accumulated" gradients */
static void net_create(Net *n, const char *json, uint64_t seed)
{
    ctx_init_cpu(&n->ctx, 1);
    tiny_uvit_create(&n->m, &n->ctx, json, seed);
    fill_uniform(n->m.weights, (int64_t)n->m.total, -0.3f, 0.3f, seed + 1);
    uvit_enable_grads(&n->m, &n->ctx);
    fill_uniform(n->m.grads, (int64_t)n->m.total, -1, 1, seed + 2);
    fill_uniform(n->x, NB * IMG, -1, 1, seed + 3);
    n->t[0] = 2.5f, n->t[1] = 400, n->t[2] = 990;
}

static void net_destroy(Net *n)
{
    uvit_destroy(&n->m, &n->ctx);
    ctx_destroy(&n->ctx);
}

/* out[B,2,8,8] = m(x, t) */
static void forward(Net *n, const UViT *m, float *out)
{
    UViTActs *a = uvit_acts_create(&n->ctx, m, NB, 0);
    uvit_forward(&n->ctx, m, a, tensor4(n->x, DT_F32, NB, 2, 8, 8), tensor1(n->t, DT_F32, NB), cond_none(),
                 tensor4(out, DT_F32, NB, 2, 8, 8));
    uvit_acts_destroy(&n->ctx, a);
}

static double macs_of(const UViTConfig *c)
{
    UViTMacs m;
    uvit_macs(c, &m);
    return m.total;
}

/* scores, the fraction for ratio, the plan and the pruned network */
static void prune_to(Net *n, double ratio, double *p, PrunePlan *plan, UViT *pruned)
{
    PruneScores s;
    UViTConfig cfg;
    prune_scores(&n->ctx, &n->m, &s);
    cr_assert_eq(prune_fraction(&n->m.cfg, ratio, p, &cfg), 0, "%s", err_msg());
    prune_plan(&s, &cfg, plan);
    prune_apply(&n->ctx, &n->m, plan, pruned);
    prune_scores_free(&s);
}

/* ---- importance -------------------------------------------------------------------- */

/* block of a parameter name ("in_blocks.1.", "mid_block.", "out_blocks.0."), -1 outside; *rest the suffix */
static int block_of(const UViTConfig *c, const char *name, const char **rest)
{
    int i, at = 0;
    if (sscanf(name, "in_blocks.%d.%n", &i, &at) == 1 && at) return *rest = name + at, i;
    if (!strncmp(name, "mid_block.", 10)) return *rest = name + 10, c->depth / 2;
    if (sscanf(name, "out_blocks.%d.%n", &i, &at) == 1 && at) return *rest = name + at, c->depth / 2 + 1 + i;
    return -1;
}

Test(spruning, scores_equal_a_brute_force_sum_by_name)
{
    Net n;
    net_create(&n, TINY, 5);
    const UViTConfig *c = &n.m.cfg;
    int A = c->num_heads * c->head_dim, Hm = c->block_mlp_hidden[0];
    double mlp[UVIT_MAX_BLOCKS][64] = {{0}}, head[UVIT_MAX_BLOCKS][8] = {{0}};
    /* every element of every parameter, its group found from its name and index alone */
    for (int i = 0; i < n.m.num_params; i++) {
        const ParamInfo *p = &n.m.params[i];
        const char *rest;
        int b = block_of(c, p->name, &rest);
        if (b < 0) continue;
        int64_t cols = p->ndim == 2 ? p->shape[1] : 1;
        for (int64_t e = 0; e < (int64_t)p->numel; e++) {
            double v = fabs((double)n.m.weights[p->offset + e] * n.m.grads[p->offset + e]);
            int64_t r = e / cols, col = e % cols;
            if (!strcmp(rest, "mlp.fc1.weight") || !strcmp(rest, "mlp.fc1.bias")) mlp[b][r] += v;
            else if (!strcmp(rest, "mlp.fc2.weight")) mlp[b][col] += v;
            else if (!strcmp(rest, "attn.qkv.weight") || !strcmp(rest, "attn.qkv.bias"))
                head[b][(r % A) / c->head_dim] += v;
            else if (!strcmp(rest, "attn.proj.weight")) head[b][col / c->head_dim] += v;
        }
    }
    PruneScores s;
    prune_scores(&n.ctx, &n.m, &s);
    cr_assert_eq(s.num_blocks, c->num_blocks);
    for (int b = 0; b < c->num_blocks; b++) {
        cr_assert_eq(s.mlp_hidden[b], Hm);
        cr_assert_eq(s.heads[b], c->num_heads);
        for (int j = 0; j < Hm; j++)
            cr_expect(fabs(s.mlp[b][j] - mlp[b][j]) <= 1e-12 * mlp[b][j] && mlp[b][j] > 0,
                      "block %d unit %d: %.17g vs %.17g", b, j, s.mlp[b][j], mlp[b][j]);
        for (int h = 0; h < c->num_heads; h++)
            cr_expect(fabs(s.head[b][h] - head[b][h]) <= 1e-12 * head[b][h] && head[b][h] > 0,
                      "block %d head %d: %.17g vs %.17g", b, h, s.head[b][h], head[b][h]);
    }
    prune_scores_free(&s);
    net_destroy(&n);
}

/* ---- selection and the pruned network ----------------------------------------------- */

Test(spruning, ratio_one_is_the_same_network_bit_for_bit)
{
    Net n;
    net_create(&n, TINY, 7);
    double p = -1;
    PrunePlan plan;
    UViT same;
    prune_to(&n, 1.0, &p, &plan, &same);
    cr_expect_eq(p, 0);
    cr_expect(uvit_config_equal(&same.cfg, &n.m.cfg));
    cr_assert_eq(same.total, n.m.total);
    for (int i = 0; i < n.m.num_params; i++) {   /* (the padding between parameters aside) */
        const ParamInfo *p = &n.m.params[i];
        cr_expect(memcmp(same.weights + p->offset, n.m.weights + p->offset, p->numel * sizeof(float)) == 0,
                  "%s changed", p->name);
    }
    float a[NB * IMG], b[NB * IMG];
    forward(&n, &n.m, a);
    forward(&n, &same, b);
    cr_expect(memcmp(a, b, sizeof a) == 0, "the output changed");
    uvit_destroy(&same, &n.ctx);
    prune_plan_free(&plan);
    net_destroy(&n);
}

static int listed(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* keep[k] ascending, and no removed group scores above a kept one */
static void expect_lowest_removed(const double *score, int n, const int *keep, int k)
{
    for (int i = 1; i < k; i++) cr_expect(keep[i - 1] < keep[i], "kept groups out of order");
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++)
            cr_expect(listed(keep, k, j) || score[j] <= score[keep[i]], "group %d removed, %d (lower) kept", j,
                      keep[i]);
}

/* the original with every removed group's weights zeroed: a unit's fc1 row,
   bias and fc2 column; a head's proj input columns (its output never reaches
   the block then, and the kept heads' softmax never saw it) */
static void zero_removed(UViT *m, const PrunePlan *plan)
{
    const UViTConfig *c = &m->cfg;
    int64_t D = c->embed_dim;
    for (int b = 0; b < c->num_blocks; b++) {
        const UViTBlockParams *w = &m->w.blocks[b];
        float *fc1 = w->fc1_w.data, *fc1_b = w->fc1_b.data, *fc2 = w->fc2_w.data, *proj = w->proj_w.data;
        for (int j = 0; j < w->mlp_hidden; j++) {
            if (listed(plan->mlp_keep[b], plan->cfg.block_mlp_hidden[b], j)) continue;
            memset(fc1 + j * D, 0, (size_t)D * sizeof(float));   // fc1 [Hm, D]
            fc1_b[j] = 0;
            for (int64_t r = 0; r < D; r++) fc2[r * w->mlp_hidden + j] = 0;   // fc2 [D, Hm]
        }
        for (int h = 0; h < w->heads; h++) {
            if (listed(plan->head_keep[b], plan->cfg.block_num_heads[b], h)) continue;
            for (int64_t r = 0; r < D; r++)   // proj [D, A]
                memset(proj + r * w->attn_dim + h * c->head_dim, 0, (size_t)c->head_dim * sizeof(float));
        }
    }
}

Test(spruning, pruned_network_is_the_original_with_removed_groups_zeroed)
{
    Net n;
    net_create(&n, TINY, 11);
    const UViTConfig *c = &n.m.cfg;
    double p, ratio = 0.5;
    PrunePlan plan;
    UViT pruned;
    prune_to(&n, ratio, &p, &plan, &pruned);
    /* the target met, by the smallest uniform fraction */
    double full = macs_of(c), got = macs_of(&pruned.cfg);
    UViTConfig less;
    prune_config(c, p - 1e-6, &less);
    cr_expect(got <= ratio * full, "%.0f MAC > %.2f of %.0f", got, ratio, full);
    cr_expect(macs_of(&less) > ratio * full, "a smaller fraction (%g) also meets the target", p - 1e-6);
    for (int b = 0; b < c->num_blocks; b++) {
        cr_expect_eq(pruned.cfg.block_mlp_hidden[b], prune_kept(c->block_mlp_hidden[b], p));
        cr_expect_eq(pruned.cfg.block_num_heads[b], prune_kept(c->block_num_heads[b], p));
        cr_expect(pruned.cfg.block_num_heads[b] < c->num_heads && pruned.cfg.block_mlp_hidden[b] < 32,
                  "block %d pruned nothing", b);
    }
    /* within a block the lowest scores went */
    PruneScores s;
    prune_scores(&n.ctx, &n.m, &s);
    for (int b = 0; b < c->num_blocks; b++) {
        expect_lowest_removed(s.mlp[b], s.mlp_hidden[b], plan.mlp_keep[b], pruned.cfg.block_mlp_hidden[b]);
        expect_lowest_removed(s.head[b], s.heads[b], plan.head_keep[b], pruned.cfg.block_num_heads[b]);
    }
    prune_scores_free(&s);
    /* the same function as the zeroed original */
    float want[NB * IMG], got_out[NB * IMG];
    forward(&n, &pruned, got_out);
    zero_removed(&n.m, &plan);
    forward(&n, &n.m, want);
    double worst = 0, scale = 0;
    for (int i = 0; i < NB * IMG; i++) {
        worst = fmax(worst, fabs(want[i] - got_out[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    cr_expect(worst <= 1e-5 * fmax(scale, 1), "max |pruned - zeroed| = %g (outputs up to %g)", worst, scale);
    uvit_destroy(&pruned, &n.ctx);
    prune_plan_free(&plan);
    net_destroy(&n);
}

Test(spruning, fraction_search_refuses_unreachable_ratios_and_rounds_half_up)
{
    UViTConfig c;
    cr_assert_eq(uvit_config_parse(&c, TINY, "test"), 0, "%s", err_msg());
    double p;
    UViTConfig out;
    cr_expect_eq(prune_fraction(&c, 0.01, &p, &out), -1);
    cr_expect(strstr(err_msg(), "--ratio") != NULL, "%s", err_msg());
    cr_expect_eq(prune_fraction(&c, 0, &p, &out), -1);
    cr_expect_eq(prune_fraction(&c, 1.5, &p, &out), -1);
    cr_expect_eq(prune_kept(4, 0.375), 3);   /* 2.5 rounds up */
    cr_expect_eq(prune_kept(4, 0.4), 2);     /* 2.4 */
    cr_expect_eq(prune_kept(2, 0.99), 1);    /* never below one */
    cr_expect_eq(prune_kept(256, 0), 256);
}

/* ---- files ------------------------------------------------------------------------- */

static char dir[64];
static void make_dir(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-spruning-XXXXXX"); }
static void remove_dir(void) { temp_dir_remove(dir); }

Test(spruning, pruned_file_round_trips_shapes_outputs_and_options, .init = make_dir, .fini = remove_dir)
{
    Net n;
    net_create(&n, TINY, 13);
    double p;
    PrunePlan plan;
    UViT pruned;
    prune_to(&n, 0.6, &p, &plan, &pruned);
    Method *me;
    cr_assert_eq(method_new(&me, "spruning"), 0, "%s", err_msg());
    cr_assert_eq(method_set_option(me, "ratio", "0.6"), 0, "%s", err_msg());
    cr_assert_eq(method_set_option(me, "base_gmacs", "0.000123"), 0, "%s", err_msg());
    cr_assert_eq(method_set_option(me, "timesteps_used", "17"), 0, "%s", err_msg());
    char *opts = method_options_json(me);
    const char *path = temp_dir_path(dir, "pruned.safetensors");
    const char *k[] = {"method", "method_options"}, *v[] = {"spruning", opts};
    cr_assert_eq(uvit_save(&pruned, &n.ctx, path, 2, k, v), 0, "%s", err_msg());

    UViT back;
    Method *bm;
    cr_assert_eq(method_load(path, NULL, NULL, &n.ctx, &back, &bm), 0, "%s", err_msg());
    cr_expect_str_eq(bm->kind->name, "spruning");
    char *back_opts = method_options_json(bm);
    cr_expect_str_eq(back_opts, opts);
    cr_expect(uvit_config_equal(&back.cfg, &pruned.cfg));
    cr_expect_float_eq(method_base_macs(bm, &back.cfg), 0.000123e9, 1e-3, "the compute ratio's base");
    cr_assert_eq(back.num_params, pruned.num_params);
    for (int i = 0; i < back.num_params; i++) {
        const ParamInfo *a = &back.params[i], *b = &pruned.params[i];
        cr_expect(!strcmp(a->name, b->name) && a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof a->shape),
                  "parameter %d: %s vs %s", i, a->name, b->name);
        cr_expect(!memcmp(back.weights + a->offset, pruned.weights + b->offset, a->numel * sizeof(float)),
                  "%s differs", a->name);
    }
    float a[NB * IMG], b[NB * IMG];
    forward(&n, &pruned, a);
    forward(&n, &back, b);
    cr_expect(memcmp(a, b, sizeof a) == 0, "the output changed after the round trip");
    free(back_opts);
    free(opts);
    method_free(bm, &n.ctx);
    method_free(me, NULL);
    uvit_destroy(&back, &n.ctx);
    uvit_destroy(&pruned, &n.ctx);
    prune_plan_free(&plan);
    net_destroy(&n);
}

Test(spruning, method_options_are_checked_and_the_base_defaults_to_the_unpruned_widths)
{
    Method *me;
    cr_assert_eq(method_new(&me, "spruning"), 0, "%s", err_msg());
    UViTConfig full, half;
    cr_assert_eq(uvit_config_parse(&full, TINY, "test"), 0, "%s", err_msg());
    prune_config(&full, 0.5, &half);
    cr_expect(macs_of(&half) < macs_of(&full));
    cr_expect_eq(method_base_macs(me, &half), macs_of(&full));
    cr_expect_eq(method_set_option(me, "ratio", "0"), -1);
    cr_expect_eq(method_set_option(me, "ratio", "1.2"), -1);
    cr_expect_eq(method_set_option(me, "timesteps_used", "2.5"), -1);
    cr_expect_eq(method_set_option(me, "nosuch", "1"), -1);
    cr_expect(strstr(err_msg(), "method.nosuch") != NULL, "%s", err_msg());
    method_free(me, NULL);
}

/* ---- the gradient pass --------------------------------------------------------------- */

Test(spruning, stopping_rule_stops_at_the_first_loss_below_thr_times_max)
{
    /* the max rises to 0.5 at step 2; 0.03 is not below 0.025, 0.02 is */
    const double losses[] = {0.3, 0.5, 0.2, 0.03, 0.02, 0.01};
    PruneStop st = {0.05, 0};
    int stopped_at = -1;
    for (int k = 0; k < 6 && stopped_at < 0; k++)
        if (prune_stop_after(&st, losses[k])) stopped_at = k;
    cr_expect_eq(stopped_at, 4);
    cr_expect_eq(st.max_loss, 0.5);
    /* the first loss is its own maximum: never a stop */
    PruneStop first = {0.99, 0};
    cr_expect_eq(prune_stop_after(&first, 1e-9), 0);
    cr_expect_eq(prune_stop_after(&first, 0.5e-9), 1);
}

Test(spruning, gradient_pass_sums_each_timesteps_gradient_on_one_noise)
{
    Net n;
    net_create(&n, TINY, 17);
    UViT *m = &n.m;
    Tensor x0 = tensor4(n.x, DT_F32, NB, 2, 8, 8);
    PruneGradOptions o = prune_grad_defaults();
    o.thr = 0;   /* never stops by the rule */
    o.max_steps = 2;
    o.seed = 3;
    PruneGradResult r;
    uvit_zero_grads(m, &n.ctx);
    cr_assert_eq(prune_accumulate(&n.ctx, m, TRAIN_NOISE_VPSDE, x0, NULL, &o, &r), 0, "%s", err_msg());
    cr_expect_eq(r.timesteps_used, 2);
    cr_expect_eq(r.stopped, 0);
    float *pass = malloc(m->total * sizeof(float));
    memcpy(pass, m->grads, m->total * sizeof(float));

    /* by hand: t = 1/1000 then 2/1000, the same eps, backward into the same sum */
    TrainNoise tn;
    train_noise_create(&tn, &n.ctx, TRAIN_NOISE_VPSDE, NB, 2, 8, 8);
    UViTActs *acts = uvit_acts_create(&n.ctx, m, NB, 1);
    float eps0[NB * IMG];
    double max_loss = 0;
    uvit_zero_grads(m, &n.ctx);
    for (int k = 0; k < 2; k++) {
        train_noise_draw_at(&n.ctx, &tn, x0, (k + 1) / 1000.0, o.seed, 0);
        cr_expect_float_eq(tn.net_t_host[1], (float)((k + 1) / 1000.0 * 999), 0);
        if (k == 0) memcpy(eps0, tn.eps, sizeof eps0);
        else cr_expect(memcmp(eps0, tn.eps, sizeof eps0) == 0, "the noise changed with t");
        float loss = train_noise_uvit_loss(&n.ctx, &tn, m, acts, 0);
        max_loss = fmax(max_loss, loss);
        uvit_backward(&n.ctx, m, acts, train_noise_dpred(&tn));
    }
    cr_expect_eq(r.max_loss, max_loss);
    cr_expect(memcmp(pass, m->grads, m->total * sizeof(float)) == 0, "the accumulated gradients differ");
    uvit_acts_destroy(&n.ctx, acts);
    train_noise_destroy(&tn, &n.ctx);
    free(pass);
    net_destroy(&n);
}

/* ---- the command ---------------------------------------------------------------------- */

#define PLAIN_BACKBONE "results/weights/fmnist-uvit.safetensors"
#define DEEDIFF_MODEL "results/weights/fmnist-deediff.safetensors"
#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static void cli_setup(void)
{
    cli_need_binary();
    make_dir();
}

/* exit 2, one stderr line with both needles, nothing written */
static void expect_refused(const char *flags, const char *needle1, const char *needle2)
{
    char args[2048], err[2048];
    const char *out = temp_dir_path(dir, "out.safetensors");
    snprintf(args, sizeof args, "prune %s --output '%s'", flags, out);
    int rc = cli_run(args, NULL, 0, err, sizeof err);
    cr_expect_eq(rc, 2, "exit %d for %s: %s", rc, args, err);
    cr_expect_eq(count_lines(err), 1, "%s: not one line: %s", args, err);
    cr_expect(strstr(err, needle1) != NULL, "%s: '%s' not in: %s", args, needle1, err);
    cr_expect(!needle2 || strstr(err, needle2) != NULL, "%s: '%s' not in: %s", args, needle2, err);
    cr_expect(access(out, F_OK) != 0, "%s: an output file was written", args);
}

Test(spruning, prune_bad_input_exits_2_with_one_line, .init = cli_setup, .fini = remove_dir, .timeout = 120)
{
    if (access(PLAIN_BACKBONE, R_OK)) cr_skip_test(PLAIN_BACKBONE " is not there");
    expect_refused("--model " PLAIN_BACKBONE " --ratio 0", "--ratio", "(0, 1]");
    expect_refused("--model " PLAIN_BACKBONE " --ratio 1.5", "--ratio", "1.5");
    expect_refused("--model " PLAIN_BACKBONE " --ratio abc", "--ratio", "abc");
    expect_refused("--model " PLAIN_BACKBONE " --ratio 0.5 --thr 1", "--thr", NULL);
    expect_refused("--model " PLAIN_BACKBONE " --ratio 0.5 --max-steps 0", "--max-steps", NULL);
    expect_refused("--ratio 0.5", "--model", NULL);
    expect_refused("--model /nonexistent/m.safetensors --ratio 0.5", "/nonexistent/m.safetensors", NULL);
    if (access(FMNIST, R_OK)) return;   /* the rest is checked once the data set is open */
    expect_refused("--model " PLAIN_BACKBONE " --ratio 0.01", "--ratio", "one head");
    expect_refused("--model " PLAIN_BACKBONE " --ratio 0.5 data.dataset=cifar10 data.path=/nonexistent",
                   "/nonexistent", NULL);
    if (access(DEEDIFF_MODEL, R_OK) == 0)
        expect_refused("--model " DEEDIFF_MODEL " --ratio 0.5", "--model", "deediff");
}

static void read_meta(const char *path, const char *key, char *buf, size_t n)
{
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
    const char *v = st_metadata(&st, key);
    snprintf(buf, n, "%s", v ? v : "");
    st_close(&st);
}

Test(spruning, prune_writes_a_file_that_info_describes_and_train_fine_tunes, .init = cli_setup,
     .fini = remove_dir, .timeout = 240)
{
    if (access(PLAIN_BACKBONE, R_OK) || access(FMNIST, R_OK))
        cr_skip_test("the backbone or Fashion-MNIST is not there");
    char pruned[256], tuned[256], args[2048], out[8192], err[4096], meta[2048];
    snprintf(pruned, sizeof pruned, "%s", temp_dir_path(dir, "pruned.safetensors"));
    snprintf(tuned, sizeof tuned, "%s", temp_dir_path(dir, "tuned.safetensors"));
    snprintf(args, sizeof args, "prune --model %s --ratio 0.7 --output '%s' --batch 2 --max-steps 3 --threads 1",
             PLAIN_BACKBONE, pruned);
    int rc = cli_run(args, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", args, rc, err);
    read_meta(pruned, "method", meta, sizeof meta);
    cr_expect_str_eq(meta, "spruning");
    read_meta(pruned, "method_options", meta, sizeof meta);
    cr_expect(strstr(meta, "\"ratio\":0.7") && strstr(meta, "\"timesteps_used\":3"), "%s", meta);
    read_meta(pruned, "config", meta, sizeof meta);
    cr_expect(strstr(meta, "block_mlp_hidden") && strstr(meta, "block_num_heads"), "%s", meta);

    snprintf(args, sizeof args, "info '%s'", pruned);
    rc = cli_run(args, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", args, rc, err);
    cr_expect(strstr(out, "compute ratio 0.") != NULL, "no compute ratio in: %s", out);

    /* two fine-tuning steps: the pruned widths train, and the file's options travel on */
    snprintf(args, sizeof args,
             "train --method spruning --backbone '%s' train.steps=2 train.batch=2 train.log_every=1 "
             "output.dir='%s' output.db='%s' output.export='%s' --threads 1",
             pruned, temp_dir_path(dir, "run"), temp_dir_path(dir, "results.db"), tuned);
    rc = cli_run(args, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", args, rc, err);
    read_meta(tuned, "method", meta, sizeof meta);
    cr_expect_str_eq(meta, "spruning");
    read_meta(tuned, "method_options", meta, sizeof meta);
    cr_expect(strstr(meta, "\"ratio\":0.7") && strstr(meta, "\"timesteps_used\":3"), "%s", meta);
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViT a, b;
    cr_assert_eq(uvit_load(&a, &ctx, pruned), 0, "%s", err_msg());
    cr_assert_eq(uvit_load(&b, &ctx, tuned), 0, "%s", err_msg());
    cr_expect(uvit_config_equal(&a.cfg, &b.cfg), "the fine-tuned network changed shape");
    uvit_destroy(&a, &ctx);
    uvit_destroy(&b, &ctx);
    ctx_destroy(&ctx);
}
