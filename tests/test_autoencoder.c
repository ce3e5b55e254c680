/*
 * test_autoencoder.c: the KL autoencoder in C ("autoencoder" suite): its
 * configuration (parsing, checks, JSON round trip), the official parameter
 * names and sizes of Stable Diffusion's configuration, every gradient of
 * both parts against finite differences on a tiny configuration, the
 * memory-reusing inference arena against the training one, batch
 * independence, and files (round trip; a file that does not match its
 * configuration names the file and the tensor).
 * Outputs against PyTorch: test_autoencoder_golden.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "model/autoencoder.h"
#include "tests/support/float_buffers.h"
#include "tests/support/gradcheck.h"

/* two levels (attention in the second), channels 4 and 8 in 2 groups,
   embed_dim != z_channels and out_ch != in_channels so no two are confused */
#define TINY_JSON "{\"z_channels\":2,\"resolution\":8,\"in_channels\":2,\"out_ch\":3,\"ch\":4,\"ch_mult\":[1,2]," \
                  "\"num_res_blocks\":1,\"attn_resolutions\":[4],\"embed_dim\":3,\"num_groups\":2," \
                  "\"scale_factor\":0.5}"
#define SIDE 8
#define LATENT 4
#define BATCH 2

static AutoencoderConfig parse(const char *json)
{
    AutoencoderConfig c;
    cr_assert(autoencoder_config_parse(&c, json, "test") == 0, "%s", err_msg());
    return c;
}

/* ---- configuration ------------------------------------------------------------------ */

Test(autoencoder, config_round_trips_and_defaults)
{
    AutoencoderConfig sd, back;
    autoencoder_config_sd(&sd);
    char *json = autoencoder_config_to_json(&sd);
    back = parse(json);
    cr_expect(autoencoder_config_equal(&sd, &back), "SD config does not round-trip: %s", json);
    free(json);
    /* U-ViT's ddconfig as written in libs/autoencoder.py, plus embed_dim */
    back = parse("{\"double_z\":true,\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,"
                 "\"ch_mult\":[1,2,4,4],\"num_res_blocks\":2,\"attn_resolutions\":[],\"dropout\":0.0,"
                 "\"embed_dim\":4}");
    cr_expect(autoencoder_config_equal(&sd, &back), "U-ViT's ddconfig is not the SD default");
    cr_expect_eq(autoencoder_factor(&sd), 8);
    cr_expect_eq(back.num_groups, 32);
    cr_expect_eq(back.scale_factor, 0.18215);
}

Test(autoencoder, config_errors_name_the_key)
{
    static const struct { const char *json, *needle; } bad[] = {
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4,\"wings\":1}", "wings"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2}", "embed_dim"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":100,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4}", "num_groups"},
        {"{\"z_channels\":4,\"resolution\":250,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2,4],"
         "\"num_res_blocks\":2,\"embed_dim\":4}", "resolution"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4,\"dropout\":0.1}", "dropout"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4,\"double_z\":false}", "double_z"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[],"
         "\"num_res_blocks\":2,\"embed_dim\":4}", "ch_mult"},
        {"{\"z_channels\":4,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4,\"scale_factor\":-1}", "scale_factor"},
        {"{\"z_channels\":4.5,\"resolution\":256,\"in_channels\":3,\"out_ch\":3,\"ch\":128,\"ch_mult\":[1,2],"
         "\"num_res_blocks\":2,\"embed_dim\":4}", "z_channels"},
        {"[1,2]", "object"},
        {"{not json", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        AutoencoderConfig c;
        err_clear();
        cr_expect(autoencoder_config_parse(&c, bad[i].json, "f.safetensors: __metadata__") == -1, "accepted: %s",
                  bad[i].json);
        cr_expect(strstr(err_msg(), "f.safetensors: __metadata__") && strstr(err_msg(), bad[i].needle),
                  "'%s' not named: %s", bad[i].needle, err_msg());
    }
}

/* ---- names and sizes --------------------------------------------------------------------- */

Test(autoencoder, sd_configuration_has_the_official_names)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    AutoencoderConfig c;
    autoencoder_config_sd(&c);
    Autoencoder m;
    autoencoder_create(&m, &ctx, &c);
    static const struct { const char *name; int64_t s0, s1; } want[] = {
        {"encoder.conv_in.weight", 128, 3},
        {"encoder.down.0.block.1.norm2.bias", 128, 0},
        {"encoder.down.1.block.0.nin_shortcut.weight", 256, 128},
        {"encoder.down.2.downsample.conv.weight", 512, 512},
        {"encoder.mid.attn_1.q.weight", 512, 512},
        {"encoder.mid.attn_1.proj_out.bias", 512, 0},
        {"encoder.conv_out.weight", 8, 512},
        {"quant_conv.weight", 8, 8},
        {"post_quant_conv.weight", 4, 4},
        {"decoder.conv_in.weight", 512, 4},
        {"decoder.up.3.upsample.conv.weight", 512, 512},
        {"decoder.up.1.block.0.nin_shortcut.weight", 256, 512},
        {"decoder.up.0.block.2.conv2.weight", 128, 128},
        {"decoder.conv_out.weight", 3, 128},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int k = autoencoder_find_param(&m, want[i].name);
        cr_assert(k >= 0, "no parameter %s", want[i].name);
        cr_expect(m.params[k].shape[0] == want[i].s0 && m.params[k].shape[1] == want[i].s1, "%s: shape [%lld, %lld]",
                  want[i].name, (long long)m.params[k].shape[0], (long long)m.params[k].shape[1]);
    }
    static const char *const absent[] = {"encoder.down.3.downsample.conv.weight", "decoder.up.0.upsample.conv.weight",
                                         "encoder.down.0.attn.0.q.weight", "decoder.up.0.block.1.nin_shortcut.weight"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        cr_expect(autoencoder_find_param(&m, absent[i]) < 0, "unexpected parameter %s", absent[i]);
    /* counted by tests/reference/make_autoencoder_fixture.py's modules (state dict of
       FrozenAutoencoderKL with U-ViT's get_model ddconfig) */
    size_t n = 0;
    for (int i = 0; i < m.num_params; i++) n += m.params[i].numel;
    cr_expect_eq(m.num_params, 248, "%d tensors", m.num_params);
    cr_expect_eq(n, (size_t)83653863, "%zu parameters", n);
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

/* ---- gradients against finite differences ---------------------------------------------- */

typedef struct {
    Ctx ctx;
    Autoencoder m;
    AutoencoderPart part;
    AutoencoderActs *acts;
    int64_t nin, nout;
    float *in, *out, *r;
} Tiny;

static Tensor tiny_in(Tiny *s, float *d)
{
    const AutoencoderConfig *c = &s->m.cfg;
    return s->part == AE_ENCODER ? tensor4(d, DT_F32, BATCH, c->in_channels, SIDE, SIDE)
                                 : tensor4(d, DT_F32, BATCH, c->embed_dim, LATENT, LATENT);
}

static Tensor tiny_out(Tiny *s, float *d)
{
    const AutoencoderConfig *c = &s->m.cfg;
    return s->part == AE_ENCODER ? tensor4(d, DT_F32, BATCH, 2 * c->embed_dim, LATENT, LATENT)
                                 : tensor4(d, DT_F32, BATCH, c->out_ch, SIDE, SIDE);
}

static void tiny_forward(void *user)
{
    Tiny *s = user;
    if (s->part == AE_ENCODER) autoencoder_encode_moments(&s->ctx, &s->m, s->acts, tiny_in(s, s->in), tiny_out(s, s->out));
    else autoencoder_decode(&s->ctx, &s->m, s->acts, tiny_in(s, s->in), tiny_out(s, s->out));
}

/* random everything, GroupNorm weights around 1, so no gradient is trivially 0 */
static void random_weights(Autoencoder *m, uint64_t seed)
{
    fill_uniform(m->weights, (int64_t)m->total, -0.4f, 0.4f, seed);
    for (int i = 0; i < m->num_params; i++)
        if (strstr(m->params[i].name, ".norm") && strstr(m->params[i].name, ".weight"))
            for (size_t k = 0; k < m->params[i].numel; k++) m->weights[m->params[i].offset + k] += 1;
}

static void tiny_setup(Tiny *s, AutoencoderPart part, int with_grads)
{
    memset(s, 0, sizeof *s);
    ctx_init_cpu(&s->ctx, 1);
    AutoencoderConfig c = parse(TINY_JSON);
    autoencoder_create(&s->m, &s->ctx, &c);
    random_weights(&s->m, 7);
    autoencoder_enable_grads(&s->m, &s->ctx);
    s->part = part;
    s->acts = autoencoder_acts_create(&s->ctx, &s->m, part, BATCH, SIDE, SIDE, with_grads);
    s->nin = tensor_numel(tiny_in(s, NULL)), s->nout = tensor_numel(tiny_out(s, NULL));
    s->in = fvec(s->nin, -1, 1, 11), s->out = fzeros(s->nout), s->r = fvec(s->nout, -1, 1, 13);
}

static void tiny_teardown(Tiny *s)
{
    autoencoder_acts_destroy(&s->ctx, s->acts);
    autoencoder_destroy(&s->m, &s->ctx);
    ctx_destroy(&s->ctx);
    free(s->in), free(s->out), free(s->r);
}

static void check_gradients(AutoencoderPart part)
{
    Tiny s;
    tiny_setup(&s, part, 1);
    tiny_forward(&s);
    float *din = fzeros(s.nin);
    if (part == AE_ENCODER)
        autoencoder_encode_backward(&s.ctx, &s.m, s.acts, tiny_in(&s, s.in), tiny_out(&s, s.r), tiny_in(&s, din));
    else autoencoder_decode_backward(&s.ctx, &s.m, s.acts, tiny_in(&s, s.in), tiny_out(&s, s.r), tiny_in(&s, din));
    GradCheck g = {s.out, s.nout, s.r, tiny_forward, &s};
    int lo = part == AE_ENCODER ? 0 : s.m.num_encoder_params, hi = part == AE_ENCODER ? s.m.num_encoder_params : s.m.num_params;
    for (int i = 0; i < s.m.num_params; i++) {
        const ParamInfo *p = &s.m.params[i];
        if (i < lo || i >= hi) {  /* the other part's parameters get nothing */
            for (size_t k = 0; k < p->numel; k++)
                cr_assert(s.m.grads[p->offset + k] == 0, "%s: gradient from the other part", p->name);
            continue;
        }
        double err = gradcheck_max_error(&g, s.m.weights + p->offset, (int64_t)p->numel, s.m.grads + p->offset,
                                         1e-2f, 6);
        cr_expect(err < 1e-2, "%s: gradient error %g", p->name, err);
    }
    double err = gradcheck_max_error(&g, s.in, s.nin, din, 1e-2f, 40);
    cr_expect(err < 1e-2, "%s input: gradient error %g", part == AE_ENCODER ? "encoder" : "decoder", err);
    free(din);
    tiny_teardown(&s);
}

Test(autoencoder, encoder_gradients_match_finite_differences) { check_gradients(AE_ENCODER); }
Test(autoencoder, decoder_gradients_match_finite_differences) { check_gradients(AE_DECODER); }

/* the backward adds: twice gives twice the gradients */
Test(autoencoder, backward_accumulates)
{
    Tiny s;
    tiny_setup(&s, AE_DECODER, 1);
    tiny_forward(&s);
    float *d1 = fzeros(s.nin), *d2 = fzeros(s.nin);
    autoencoder_decode_backward(&s.ctx, &s.m, s.acts, tiny_in(&s, s.in), tiny_out(&s, s.r), tiny_in(&s, d1));
    float *once = malloc(s.m.total * sizeof(float));
    memcpy(once, s.m.grads, s.m.total * sizeof(float));
    memcpy(d2, d1, (size_t)s.nin * sizeof(float));
    autoencoder_decode_backward(&s.ctx, &s.m, s.acts, tiny_in(&s, s.in), tiny_out(&s, s.r), tiny_in(&s, d2));
    for (size_t k = 0; k < s.m.total; k++)
        cr_assert(fabsf(s.m.grads[k] - 2 * once[k]) <= 1e-5f * (1 + fabsf(once[k])), "grads[%zu] did not add", k);
    for (int64_t k = 0; k < s.nin; k++) cr_assert(fabsf(d2[k] - 2 * d1[k]) <= 1e-5f * (1 + fabsf(d1[k])));
    free(once), free(d1), free(d2);
    tiny_teardown(&s);
}

/* ---- arenas and batches ------------------------------------------------------------------- */

/* the reusing inference arena computes exactly what the keeping one does, in less memory */
Test(autoencoder, inference_arena_matches_training_arena)
{
    for (int part = 0; part < 2; part++) {
        Tiny keep, reuse;
        tiny_setup(&keep, (AutoencoderPart)part, 1);
        tiny_setup(&reuse, (AutoencoderPart)part, 0);
        tiny_forward(&keep);
        tiny_forward(&reuse);
        cr_expect(memcmp(keep.out, reuse.out, (size_t)keep.nout * sizeof(float)) == 0, "part %d: outputs differ", part);
        cr_expect(autoencoder_acts_bytes(reuse.acts) * 3 < autoencoder_acts_bytes(keep.acts),
                  "part %d: inference arena %zu bytes, training %zu", part, autoencoder_acts_bytes(reuse.acts),
                  autoencoder_acts_bytes(keep.acts));
        tiny_teardown(&keep);
        tiny_teardown(&reuse);
    }
}

/* an image's output does not depend on its batch */
Test(autoencoder, images_are_independent_of_their_batch)
{
    for (int part = 0; part < 2; part++) {
        Tiny s;
        tiny_setup(&s, (AutoencoderPart)part, 0);
        tiny_forward(&s);
        float *one = fzeros(s.nout / BATCH);
        Tensor in = tiny_in(&s, s.in + s.nin / BATCH), out = tiny_out(&s, one);
        in.shape[0] = out.shape[0] = 1;
        if (part == AE_ENCODER) autoencoder_encode_moments(&s.ctx, &s.m, s.acts, in, out);
        else autoencoder_decode(&s.ctx, &s.m, s.acts, in, out);
        cr_expect(rel_l2(one, s.out + s.nout / BATCH, s.nout / BATCH) < 1e-6, "part %d: image 1 alone differs", part);
        free(one);
        tiny_teardown(&s);
    }
}

/* decode divides by scale_factor first: decoding z at scale 0.5 equals
   decoding 2z at scale 1 */
Test(autoencoder, decode_divides_by_the_scale_factor)
{
    Tiny s;
    tiny_setup(&s, AE_DECODER, 0);
    tiny_forward(&s);
    float *first = fzeros(s.nout);
    memcpy(first, s.out, (size_t)s.nout * sizeof(float));
    s.m.cfg.scale_factor = 1.0;
    autoencoder_acts_destroy(&s.ctx, s.acts);
    s.acts = autoencoder_acts_create(&s.ctx, &s.m, AE_DECODER, BATCH, SIDE, SIDE, 0);
    for (int64_t k = 0; k < s.nin; k++) s.in[k] *= 2;
    tiny_forward(&s);
    cr_expect(rel_l2(s.out, first, s.nout) < 1e-6);
    free(first);
    tiny_teardown(&s);
}

/* ---- files ------------------------------------------------------------------------------------ */

static char path[128];

static void write_tiny(const char *p)
{
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    AutoencoderConfig c = parse(TINY_JSON);
    Autoencoder m;
    autoencoder_create(&m, &ctx, &c);
    autoencoder_init_random(&m, &ctx, 3);
    const char *k[1] = {"note"}, *v[1] = {"test"};
    cr_assert(autoencoder_save(&m, &ctx, p, 1, k, v) == 0, "%s", err_msg());
    autoencoder_destroy(&m, &ctx);
    ctx_destroy(&ctx);
}

static void setup_path(void) { snprintf(path, sizeof path, "/tmp/deediff-test-ae-%d.safetensors", (int)getpid()); }
static void remove_path(void) { unlink(path); }

Test(autoencoder, save_load_round_trip, .init = setup_path, .fini = remove_path)
{
    write_tiny(path);
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Autoencoder a, b;
    cr_assert(autoencoder_load(&a, &ctx, path) == 0, "%s", err_msg());
    AutoencoderConfig c = parse(TINY_JSON);
    autoencoder_create(&b, &ctx, &c);
    autoencoder_init_random(&b, &ctx, 3);
    cr_expect(autoencoder_config_equal(&a.cfg, &c));
    cr_expect(memcmp(a.weights, b.weights, a.total * sizeof(float)) == 0, "weights changed on the way");
    /* PyTorch's defaults: GroupNorm (1, 0), convs within 1/sqrt(fan_in) */
    const ParamInfo *p = &a.params[autoencoder_find_param(&a, "decoder.norm_out.weight")];
    cr_expect_eq(a.weights[p->offset], 1.0f);
    p = &a.params[autoencoder_find_param(&a, "encoder.mid.attn_1.k.bias")];
    for (size_t k = 0; k < p->numel; k++) cr_expect(fabsf(a.weights[p->offset + k]) <= 1 / sqrtf(8.0f));
    autoencoder_destroy(&a, &ctx);
    autoencoder_destroy(&b, &ctx);
    ctx_destroy(&ctx);
}

/* copies the tiny file leaving out `omit`, reshaping `reshape` to [1] and
   adding `extra`, with config `config` (NULL: the file's); the load must
   fail naming the file and `needle` */
static void expect_bad_file(const char *omit, const char *reshape, const char *extra, const char *config,
                            const char *needle)
{
    SafeTensors st;
    cr_assert(st_open(&st, path) == 0, "%s", err_msg());
    StWriter *w = st_writer_new();
    for (int i = 0; i < st.count; i++) {
        const StEntry *e = &st.entries[i];
        if (omit && !strcmp(e->name, omit)) continue;
        int64_t one = 1;
        if (reshape && !strcmp(e->name, reshape)) st_writer_add(w, e->name, e->dtype, 1, &one, st_data(&st, e));
        else st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, st_data(&st, e));
    }
    float zero = 0;
    int64_t one = 1;
    if (extra) st_writer_add(w, extra, DT_F32, 1, &one, &zero);
    st_writer_meta(w, "config", config ? config : st_metadata(&st, "config"));
    char bad[160];
    snprintf(bad, sizeof bad, "%s.bad", path);
    cr_assert(st_writer_save(w, bad) == 0, "%s", err_msg());
    st_writer_free(w);
    st_close(&st);
    Ctx ctx;
    ctx_init_cpu(&ctx, 1);
    Autoencoder m;
    err_clear();
    cr_expect(autoencoder_load(&m, &ctx, bad) == -1, "loaded a bad file (%s)", needle);
    cr_expect(strstr(err_msg(), bad) && strstr(err_msg(), needle), "'%s' not named: %s", needle, err_msg());
    unlink(bad);
    ctx_destroy(&ctx);
}

Test(autoencoder, files_that_do_not_match_their_config_are_refused, .init = setup_path, .fini = remove_path)
{
    write_tiny(path);
    expect_bad_file("decoder.up.1.upsample.conv.weight", NULL, NULL, NULL, "'decoder.up.1.upsample.conv.weight'");
    expect_bad_file(NULL, "encoder.mid.attn_1.v.bias", NULL, NULL, "'encoder.mid.attn_1.v.bias'");
    expect_bad_file(NULL, NULL, "loss.logvar", NULL, "'loss.logvar'");
    /* another configuration's file: one more res block than the tensors have */
    expect_bad_file(NULL, NULL, NULL,
                    "{\"z_channels\":2,\"resolution\":8,\"in_channels\":2,\"out_ch\":3,\"ch\":4,\"ch_mult\":[1,2],"
                    "\"num_res_blocks\":2,\"attn_resolutions\":[4],\"embed_dim\":3,\"num_groups\":2}",
                    "encoder.down.0.block.1.");
    expect_bad_file(NULL, NULL, NULL, "{\"img_size\":8}", "img_size");
}
