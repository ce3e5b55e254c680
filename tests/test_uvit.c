/*
 * test_uvit.c: U-ViT model checks that need no fixtures: parameter counts
 * against the official code's, multiply-adds, whole-model gradients against
 * finite differences (text-to-image's context_embed included), block-by-block
 * equals the full forward, batch-row independence, a batch run as pieces on
 * several threads against one thread, and the checkpoint round trip.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/errors.h"
#include "../model/uvit.h"
#include "support/gradcheck.h"

static UViTConfig config(const char *json)
{
    UViTConfig c;
    cr_assert_eq(uvit_config_parse(&c, json, "test"), 0, "%s", err_msg());
    return c;
}

Test(uvit, official_parameter_counts)
{
    /* measured with the official U-ViT code (REFERENCE.md section 1) */
    UViTConfig s2 = config("{\"img_size\":32,\"patch_size\":2,\"in_chans\":3,\"embed_dim\":512,"
                           "\"depth\":12,\"num_heads\":8}");
    cr_expect_eq(lround(uvit_param_count(&s2) / 1e4), 4426L, "U-ViT-S/2: %zu", uvit_param_count(&s2));
    UViTConfig l2 = config("{\"img_size\":32,\"patch_size\":2,\"in_chans\":4,\"embed_dim\":1024,"
                           "\"depth\":20,\"num_heads\":16,\"num_classes\":1001}");
    cr_expect_eq(lround(uvit_param_count(&l2) / 1e4), 28676L, "U-ViT-L/2: %zu", uvit_param_count(&l2));
    UViTMacs macs;
    uvit_macs(&s2, &macs);
    cr_expect(fabs(macs.total / 1e9 - 12.2) < 0.1, "U-ViT-S/2 MACs %.3f G", macs.total / 1e9);
    /* MS-COCO's text-to-image U-ViT-S/2 (configs/mscoco_uvit.py), counted with libs/uvit_t2i.py */
    UViTConfig coco = config("{\"img_size\":32,\"patch_size\":2,\"in_chans\":4,\"embed_dim\":512,"
                             "\"depth\":12,\"num_heads\":8,\"clip_dim\":768,\"num_clip_token\":77}");
    cr_expect_eq(uvit_param_count(&coco), (size_t)44692644, "U-ViT-S/2 t2i: %zu", uvit_param_count(&coco));
}

/* a tiny model with every feature, random weights, and a batch of inputs */
typedef struct {
    Ctx ctx;
    UViT m;
    UViTActs *acts;
    int B;      /* images of a forward: the arena's max_batch, at most 3 */
    float x[3 * 2 * 8 * 8], t[3], out[3 * 2 * 8 * 8], r[3 * 2 * 8 * 8];
    int64_t y[3];
    float context[3 * 5 * 4];   /* [3, L, Dc] for text-to-image configs of L * Dc <= 20 */
} Tiny;

static void tiny_setup_threads(Tiny *s, const char *json, int batch, int threads)
{
    ctx_init_cpu(&s->ctx, threads);
    s->B = batch;
    UViTConfig c = config(json);
    uvit_create(&s->m, &s->ctx, &c);
    /* random everything, biases and norms included, so no gradient is trivially 0 */
    fill_uniform(s->m.weights, (int64_t)s->m.total, -0.3f, 0.3f, 7);
    for (int i = 0; i < s->m.num_params; i++)
        if (strstr(s->m.params[i].name, "norm") && strstr(s->m.params[i].name, ".weight"))
            for (size_t k = 0; k < s->m.params[i].numel; k++) s->m.weights[s->m.params[i].offset + k] += 1;
    uvit_enable_grads(&s->m, &s->ctx);
    s->acts = uvit_acts_create(&s->ctx, &s->m, batch, 1);
    fill_uniform(s->x, 3 * 2 * 8 * 8, -1, 1, 11);
    fill_uniform(s->r, 3 * 2 * 8 * 8, -1, 1, 13);
    s->t[0] = 3.5f, s->t[1] = 500.25f, s->t[2] = 998.0f;
    s->y[0] = 0, s->y[1] = 2, s->y[2] = 0;
    cr_assert(c.num_clip_token * c.clip_dim <= 20, "the tiny context holds 20 values per image");
    fill_uniform(s->context, 3 * 5 * 4, -2, 2, 17);
}

static void tiny_setup(Tiny *s, const char *json, int batch) { tiny_setup_threads(s, json, batch, 1); }

static void tiny_teardown(Tiny *s)
{
    uvit_acts_destroy(&s->ctx, s->acts);
    uvit_destroy(&s->m, &s->ctx);
    ctx_destroy(&s->ctx);
}

static void tiny_forward(void *user)
{
    Tiny *s = user;
    const UViTConfig *c = &s->m.cfg;
    int B = s->B;
    Conditioning cond = cond_labels(c->num_classes > 0 ? tensor1(s->y, DT_I64, B) : tensor_none());
    if (uvit_is_text(c)) cond.context = tensor3(s->context, DT_F32, B, c->num_clip_token, c->clip_dim);
    uvit_forward(&s->ctx, &s->m, s->acts, tensor4(s->x, DT_F32, B, 2, 8, 8),
                 tensor1(s->t, DT_F32, B), cond, tensor4(s->out, DT_F32, B, 2, 8, 8));
}

static void check_all_gradients_threads(const char *json, int threads)
{
    Tiny s;
    tiny_setup_threads(&s, json, 3, threads);
    tiny_forward(&s);
    uvit_zero_grads(&s.m, &s.ctx);
    uvit_backward(&s.ctx, &s.m, s.acts, tensor4(s.r, DT_F32, 3, 2, 8, 8));
    GradCheck g = {s.out, 3 * 2 * 8 * 8, s.r, tiny_forward, &s};
    for (int i = 0; i < s.m.num_params; i++) {
        const ParamInfo *p = &s.m.params[i];
        double err = gradcheck_max_error(&g, s.m.weights + p->offset, (int64_t)p->numel,
                                         s.m.grads + p->offset, 1e-2f, 6);
        cr_expect(err < 2e-2, "%s: gradient error %g", p->name, err);
    }
    tiny_teardown(&s);
}

static void check_all_gradients(const char *json) { check_all_gradients_threads(json, 1); }

Test(uvit, gradients_unconditional_conv_pruned)
{
    check_all_gradients("{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":12,"
                        "\"depth\":2,\"num_heads\":3,\"mlp_ratio\":2,\"conv\":true,"
                        "\"block_mlp_hidden\":[24,8,24],\"block_num_heads\":[3,1,2]}");
}

Test(uvit, gradients_conditional_mlp_time)
{
    check_all_gradients("{\"img_size\":8,\"patch_size\":4,\"in_chans\":2,\"embed_dim\":8,"
                        "\"depth\":2,\"num_heads\":2,\"qkv_bias\":true,\"mlp_time_embed\":true,"
                        "\"num_classes\":3,\"conv\":false}");
}

/* text-to-image: [time, 5 context tokens, patches]; context_embed's gradients too */
Test(uvit, gradients_text_to_image_context_embed)
{
    check_all_gradients("{\"img_size\":8,\"patch_size\":4,\"in_chans\":2,\"embed_dim\":8,"
                        "\"depth\":2,\"num_heads\":2,\"mlp_time_embed\":true,\"clip_dim\":4,"
                        "\"num_clip_token\":5}");
}

/* the contexts reach the output, every token of them: changing one value of
   one image's prompt moves that image's prediction and no other's */
Test(uvit, text_to_image_reads_every_context_token_per_image)
{
    Tiny s;
    tiny_setup(&s, "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":8,\"depth\":2,"
                   "\"num_heads\":2,\"clip_dim\":4,\"num_clip_token\":5}", 3);
    cr_assert_eq(uvit_num_extras(&s.m.cfg), 6);
    cr_assert_eq(uvit_num_tokens(&s.m.cfg), 16 + 6);
    tiny_forward(&s);
    float base[3 * 128];
    memcpy(base, s.out, sizeof base);
    for (int tok = 0; tok < 5; tok++) {
        float *v = &s.context[(1 * 5 + tok) * 4 + 3];   /* image 1, token tok, last feature */
        float keep = *v;
        *v += 0.5f;
        tiny_forward(&s);
        *v = keep;
        cr_expect(memcmp(s.out, base, 128 * sizeof(float)) == 0, "token %d: image 0 moved", tok);
        cr_expect(memcmp(s.out + 256, base + 256, 128 * sizeof(float)) == 0, "token %d: image 2 moved", tok);
        cr_expect(rel_l2(s.out + 128, base + 128, 128) > 1e-4, "token %d: image 1 did not move", tok);
    }
    tiny_teardown(&s);
}

#define PRUNED_CONV "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":12," \
                    "\"depth\":2,\"num_heads\":3,\"mlp_ratio\":2,\"conv\":true," \
                    "\"block_mlp_hidden\":[24,8,24],\"block_num_heads\":[3,1,2]}"

/* the blocks as pieces on 2 threads (pieces of 1 and 2 images, so one
   piece's gradients go through its own buffer): every gradient against
   finite differences */
Test(uvit, gradients_as_pieces_on_two_threads)
{
    check_all_gradients_threads(PRUNED_CONV, 2);
}

/* forward and backward of batch B on `threads` threads (B * 128 outputs) */
static void tiny_run(Tiny *s, const char *json, int B, int threads)
{
    tiny_setup_threads(s, json, B, threads);
    tiny_forward(s);
    uvit_zero_grads(&s->m, &s->ctx);
    uvit_backward(&s->ctx, &s->m, s->acts, tensor4(s->r, DT_F32, B, 2, 8, 8));
}

/* more threads against 1: the same outputs and gradients up to fp32
   rounding (each piece's GEMMs have fewer rows, its weight gradients are
   summed apart), with skips, pruned blocks, labels and contexts; batches
   that split unevenly (3 on 2 threads), into single images (3 on 3), over
   fewer images than threads (2 on 3) or not at all (1 on 2) */
Test(uvit, pieces_on_threads_match_one_thread)
{
    const char *jsons[] = {PRUNED_CONV,
                           "{\"img_size\":8,\"patch_size\":4,\"in_chans\":2,\"embed_dim\":8,\"depth\":4,"
                           "\"num_heads\":2,\"qkv_bias\":true,\"mlp_time_embed\":true,\"num_classes\":3}",
                           "{\"img_size\":8,\"patch_size\":4,\"in_chans\":2,\"embed_dim\":8,\"depth\":2,"
                           "\"num_heads\":2,\"mlp_time_embed\":true,\"clip_dim\":4,\"num_clip_token\":5}"};
    const int runs[][2] = {{3, 2}, {3, 3}, {2, 3}, {1, 2}};   /* batch, threads */
    for (size_t j = 0; j < sizeof jsons / sizeof jsons[0]; j++)
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
            int B = runs[k][0], threads = runs[k][1];
            Tiny one, s;
            tiny_run(&one, jsons[j], B, 1);
            tiny_run(&s, jsons[j], B, threads);
            int pieces = B < threads ? B : threads;
            cr_expect_eq(s.ctx.num_workers, pieces > 1 ? threads : 0, "%s, batch %d, %d threads: %d workers",
                         jsons[j], B, threads, s.ctx.num_workers);
            double out_err = rel_l2(s.out, one.out, B * 128);
            cr_expect(out_err < 1e-6, "%s, batch %d, %d threads: output differs by %g", jsons[j], B, threads, out_err);
            for (int i = 0; i < s.m.num_params; i++) {
                const ParamInfo *p = &s.m.params[i];
                double err = rel_l2(s.m.grads + p->offset, one.m.grads + p->offset, (int64_t)p->numel);
                cr_expect(err < 1e-5, "%s, batch %d, %d threads: %s's gradient differs by %g", jsons[j], B, threads,
                          p->name, err);
            }
            tiny_teardown(&s);
            tiny_teardown(&one);
        }
}

Test(uvit, rows_are_independent_and_blocks_compose)
{
    Tiny s;
    tiny_setup(&s, "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":12,\"depth\":4,"
                   "\"num_heads\":3,\"num_classes\":3}", 3);
    tiny_forward(&s);
    float full[3 * 128];
    memcpy(full, s.out, sizeof full);
    /* image 1 alone gives the same output as inside the batch */
    Tensor y1 = tensor1(&s.y[1], DT_I64, 1);
    float one[128];
    uvit_forward(&s.ctx, &s.m, s.acts, tensor4(s.x + 128, DT_F32, 1, 2, 8, 8),
                 tensor1(&s.t[1], DT_F32, 1), cond_labels(y1), tensor4(one, DT_F32, 1, 2, 8, 8));
    cr_expect(rel_l2(one, full + 128, 128) < 1e-6);
    /* embed + blocks + decode is the full forward */
    uvit_embed(&s.ctx, &s.m, s.acts, tensor4(s.x, DT_F32, 3, 2, 8, 8), tensor1(s.t, DT_F32, 3),
               cond_labels(tensor1(s.y, DT_I64, 3)));
    for (int i = 0; i < s.m.cfg.num_blocks; i++) uvit_block(&s.ctx, &s.m, s.acts, i);
    uvit_decode(&s.ctx, &s.m, s.acts, tensor4(s.out, DT_F32, 3, 2, 8, 8));
    cr_expect(rel_l2(s.out, full, 3 * 128) == 0);
    Tensor h = uvit_hidden(s.acts, 2);
    cr_expect(h.shape[0] == 3 && h.shape[1] == 16 + 2 && h.shape[2] == 12);
    tiny_teardown(&s);
}

Test(uvit, checkpoint_round_trip)
{
    Tiny s;
    tiny_setup(&s, "{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":12,\"depth\":2,"
                   "\"num_heads\":3,\"block_mlp_hidden\":[24,8,24]}", 3);
    char path[] = "/tmp/deediff-test-uvit-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    const char *k[] = {"note"}, *v[] = {"round trip"};
    cr_assert_eq(uvit_save(&s.m, &s.ctx, path, 1, k, v), 0, "%s", err_msg());
    UViT back;
    cr_assert_eq(uvit_load(&back, &s.ctx, path), 0, "%s", err_msg());
    cr_expect_eq(back.total, s.m.total);
    cr_expect_eq(back.cfg.block_mlp_hidden[1], 8);
    for (int i = 0; i < s.m.num_params; i++) {
        const ParamInfo *p = &s.m.params[i];
        cr_expect(memcmp(back.weights + p->offset, s.m.weights + p->offset, p->numel * sizeof(float)) == 0,
                  "%s differs after the round trip", p->name);
    }
    uvit_destroy(&back, &s.ctx);
    unlink(path);
    tiny_teardown(&s);
}

Test(uvit, init_is_seeded_and_follows_uvit)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    UViTConfig c = config("{\"img_size\":8,\"patch_size\":2,\"in_chans\":2,\"embed_dim\":64,"
                          "\"depth\":2,\"num_heads\":2}");
    UViT a, b;
    uvit_create(&a, &ctx, &c);
    uvit_create(&b, &ctx, &c);
    uvit_init_random(&a, &ctx, 5);
    uvit_init_random(&b, &ctx, 5);
    cr_expect(memcmp(a.weights, b.weights, a.total * sizeof(float)) == 0);
    const ParamInfo *fc1 = &a.params[uvit_find_param(&a, "in_blocks.0.mlp.fc1.weight")];
    double ss = 0;
    for (size_t i = 0; i < fc1->numel; i++) ss += (double)a.weights[fc1->offset + i] * a.weights[fc1->offset + i];
    cr_expect(fabs(sqrt(ss / fc1->numel) - 0.02) < 0.002, "fc1 std %g", sqrt(ss / fc1->numel));
    cr_expect_eq(a.weights[a.params[uvit_find_param(&a, "norm.weight")].offset], 1.0f);
    uvit_destroy(&a, &ctx);
    uvit_destroy(&b, &ctx);
    ctx_destroy(&ctx);
}
