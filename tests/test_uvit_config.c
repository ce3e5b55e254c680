/*
 * test_uvit_config.c: U-ViT configuration JSON: defaults, the paper's
 * configs, strict keys and types, bad values, per-block arrays (structural
 * pruning) and the exact JSON round trip.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kernels/errors.h"
#include "model/uvit_config.h"

/* parse must fail with exactly "cfg.json: config: <what>" */
static void expect_error(const char *json, const char *what)
{
    UViTConfig c;
    uvit_config_default(&c);
    c.depth = 777;   /* a failed parse must leave c untouched */
    err_clear();
    cr_expect_eq(uvit_config_parse(&c, json, "cfg.json"), -1, "accepted: %s", json);
    char expect[512];
    snprintf(expect, sizeof expect, "cfg.json: config: %s", what);
    cr_expect(strncmp(err_msg(), expect, strlen(expect)) == 0,
              "for %s\n  got      %s\n  expected %s...", json, err_msg(), expect);
    cr_expect_eq(c.depth, 777, "a failed parse changed the config: %s", json);
}

static void parse_ok(UViTConfig *c, const char *json)
{
    cr_assert_eq(uvit_config_parse(c, json, "cfg.json"), 0, "%s: %s", json, err_msg());
}

/* to_json, parse back, compare; returns the JSON (caller frees) */
static char *round_trip(const UViTConfig *c)
{
    char *json = uvit_config_to_json(c);
    UViTConfig back;
    parse_ok(&back, json);
    cr_assert(uvit_config_equal(c, &back), "round trip changed the config: %s", json);
    cr_assert_eq(memcmp(c->block_mlp_hidden, back.block_mlp_hidden, sizeof back.block_mlp_hidden), 0);
    char *again = uvit_config_to_json(&back);
    cr_assert_str_eq(again, json);
    free(again);
    return json;
}

Test(uvit_config, defaults_are_uvit_constructor_defaults)
{
    UViTConfig c;
    uvit_config_default(&c);
    cr_assert_eq(c.img_size, 224);
    cr_assert_eq(c.patch_size, 16);
    cr_assert_eq(c.in_chans, 3);
    cr_assert_eq(c.embed_dim, 768);
    cr_assert_eq(c.depth, 12);
    cr_assert_eq(c.num_heads, 12);
    cr_assert_eq(c.mlp_ratio, 4.0);
    cr_assert_eq(c.qkv_bias, 0);
    cr_assert_eq(c.mlp_time_embed, 0);
    cr_assert_eq(c.num_classes, -1);
    cr_assert_eq(c.conv, 1);
    cr_assert_eq(c.num_blocks, 13);
    cr_assert_eq(c.head_dim, 64);
    for (int i = 0; i < 13; i++) {
        cr_assert_eq(c.block_mlp_hidden[i], 3072);
        cr_assert_eq(c.block_num_heads[i], 12);
    }
    for (int i = 13; i < UVIT_MAX_BLOCKS; i++) cr_assert_eq(c.block_mlp_hidden[i], 0);
    cr_assert_eq(uvit_num_patches(&c), 196);
    cr_assert_eq(uvit_num_tokens(&c), 197);

    UViTConfig e;
    parse_ok(&e, "{}");
    cr_assert(uvit_config_equal(&c, &e));
    parse_ok(&e, " {\n} \n");
    cr_assert(uvit_config_equal(&c, &e));
}

Test(uvit_config, paper_configs)
{
    UViTConfig c;
    /* CIFAR-10 U-ViT-S/2 (configs/cifar10_uvit_small.py) */
    parse_ok(&c, "{\"img_size\": 32, \"patch_size\": 2, \"in_chans\": 3, \"embed_dim\": 512,"
                 " \"depth\": 12, \"num_heads\": 8, \"mlp_ratio\": 4, \"qkv_bias\": false,"
                 " \"mlp_time_embed\": false, \"num_classes\": -1}");
    cr_assert_eq(c.img_size, 32);
    cr_assert_eq(c.embed_dim, 512);
    cr_assert_eq(c.num_heads, 8);
    cr_assert_eq(c.head_dim, 64);
    cr_assert_eq(c.num_blocks, 13);
    cr_assert_eq(c.block_mlp_hidden[12], 2048);
    cr_assert_eq(c.block_num_heads[0], 8);
    cr_assert_eq(uvit_num_tokens(&c), 257);
    cr_assert_eq(c.conv, 1);

    /* ImageNet 256 U-ViT-L/2 on latents, class-conditional with the null class */
    parse_ok(&c, "{\"img_size\": 32, \"patch_size\": 2, \"in_chans\": 4, \"embed_dim\": 1024,"
                 " \"depth\": 20, \"num_heads\": 16, \"num_classes\": 1001,"
                 " \"qk_scale\": null, \"use_checkpoint\": true, \"skip\": true, \"conv\": false}");
    cr_assert_eq(c.num_blocks, 21);
    cr_assert_eq(c.block_mlp_hidden[20], 4096);
    cr_assert_eq(uvit_num_extras(&c), 2);
    cr_assert_eq(uvit_num_tokens(&c), 258);
    cr_assert_eq(c.conv, 0);
}

Test(uvit_config, unknown_keys_are_rejected)
{
    expect_error("{\"foo\": 1}", "unknown key 'foo'");
    expect_error("{\"depth\": 12, \"name\": \"uvit_small\"}", "unknown key 'name'");
    expect_error("{\"Depth\": 12}", "unknown key 'Depth'");
    expect_error("{\"depth\": 12, \"depth\": 10}", "key 'depth' appears twice");
}

Test(uvit_config, wrong_types)
{
    expect_error("{\"depth\": \"12\"}", "'depth' must be an integer");
    expect_error("{\"depth\": 12.5}", "'depth' must be an integer");
    expect_error("{\"img_size\": null}", "'img_size' must be an integer");
    expect_error("{\"embed_dim\": 1e10}", "'embed_dim' must be an integer");
    expect_error("{\"num_classes\": [10]}", "'num_classes' must be an integer");
    expect_error("{\"patch_size\": true}", "'patch_size' must be an integer");
    expect_error("{\"mlp_ratio\": \"4\"}", "'mlp_ratio' must be a number");
    expect_error("{\"qkv_bias\": 0}", "'qkv_bias' must be true or false");
    expect_error("{\"conv\": \"true\"}", "'conv' must be true or false");
    expect_error("{\"mlp_time_embed\": null}", "'mlp_time_embed' must be true or false");
    expect_error("{\"use_checkpoint\": 1}", "'use_checkpoint' must be true or false");
    expect_error("{\"skip\": 1}", "'skip' must be true or false");
    expect_error("{\"qk_scale\": 0.125}", "'qk_scale' must be null");
    expect_error("{\"skip\": false}", "'skip' must be true");
    expect_error("{\"block_mlp_hidden\": 2048}", "'block_mlp_hidden' must be an array of integers");
    expect_error("[1, 2]", "not a JSON object");
    expect_error("12", "not a JSON object");
    expect_error("", "not valid JSON");
    expect_error("{\"depth\": 12", "not valid JSON");
    expect_error("{\"depth\": 12} x", "not valid JSON");
}

Test(uvit_config, bad_values)
{
    expect_error("{\"img_size\": 0}", "'img_size' is 0, must be 1..4096");
    expect_error("{\"img_size\": 8192, \"patch_size\": 2}", "'img_size' is 8192, must be 1..4096");
    expect_error("{\"img_size\": 32, \"patch_size\": 3}", "img_size 32 is not a multiple of patch_size 3");
    expect_error("{\"img_size\": 32, \"patch_size\": 64}", "'patch_size' is 64, must be 1..32");
    expect_error("{\"patch_size\": -2}", "'patch_size' is -2");
    expect_error("{\"img_size\": 4096, \"patch_size\": 1}", "img_size 4096 / patch_size 1 gives 16777216 patches");
    expect_error("{\"img_size\": 2048, \"patch_size\": 1024, \"in_chans\": 3}",
                 "patch_size 1024 with in_chans 3 gives patches of more than");
    expect_error("{\"in_chans\": 0}", "'in_chans' is 0");
    expect_error("{\"embed_dim\": 500, \"num_heads\": 8}", "embed_dim 500 is not a multiple of num_heads 8");
    expect_error("{\"embed_dim\": 0}", "'embed_dim' is 0");
    expect_error("{\"embed_dim\": 100000}", "'embed_dim' is 100000");
    expect_error("{\"num_heads\": 0}", "'num_heads' is 0");
    expect_error("{\"embed_dim\": 8, \"num_heads\": 16}", "'num_heads' is 16, must be 1..8");
    expect_error("{\"depth\": 11}", "'depth' is 11, must be even");
    expect_error("{\"depth\": -2}", "'depth' is -2");
    expect_error("{\"depth\": 64}", "'depth' is 64, must be 0..62");
    expect_error("{\"num_classes\": 0}", "'num_classes' is 0, must be -1 (unconditional) or 1..");
    expect_error("{\"num_classes\": -5}", "'num_classes' is -5");
    expect_error("{\"mlp_ratio\": 0}", "'mlp_ratio' 0 must be positive");
    expect_error("{\"mlp_ratio\": -4}", "'mlp_ratio' -4 must be positive");
    expect_error("{\"mlp_ratio\": 1e300}", "'mlp_ratio' 1e+300 must be positive and give at most");
    expect_error("{\"mlp_ratio\": 0.001}", "'mlp_ratio' 0.001 gives an MLP of 0 units");

    UViTConfig c;
    parse_ok(&c, "{\"depth\": 0, \"img_size\": 4, \"patch_size\": 4, \"embed_dim\": 1, \"num_heads\": 1}");
    cr_assert_eq(c.num_blocks, 1);
    cr_assert_eq(c.block_mlp_hidden[0], 4);
    parse_ok(&c, "{\"depth\": 62}");
    cr_assert_eq(c.num_blocks, UVIT_MAX_BLOCKS - 1);
    parse_ok(&c, "{\"num_classes\": 1, \"mlp_ratio\": 2.5, \"depth\": 12.0}");
    cr_assert_eq(c.block_mlp_hidden[0], 1920);
    cr_assert_eq(c.depth, 12);
}

Test(uvit_config, per_block_arrays)
{
    const char *cfg = "{\"img_size\": 32, \"patch_size\": 2, \"embed_dim\": 512, \"depth\": 4,"
                      " \"num_heads\": 8, \"block_mlp_hidden\": [2048, 1024, 512, 1, 2048],"
                      " \"block_num_heads\": [8, 4, 1, 8, 16]}";
    UViTConfig c;
    parse_ok(&c, cfg);
    cr_assert_eq(c.num_blocks, 5);
    int hidden[5] = {2048, 1024, 512, 1, 2048}, heads[5] = {8, 4, 1, 8, 16};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(c.block_mlp_hidden[i], hidden[i]);
        cr_assert_eq(c.block_num_heads[i], heads[i]);
    }
    /* only one of the two arrays: the other keeps its defaults */
    parse_ok(&c, "{\"depth\": 2, \"block_num_heads\": [12, 6, 12]}");
    cr_assert_eq(c.block_num_heads[1], 6);
    cr_assert_eq(c.block_mlp_hidden[1], 3072);

    expect_error("{\"depth\": 4, \"block_mlp_hidden\": [1, 2, 3, 4]}",
                 "'block_mlp_hidden' has 4 entries, expected 5 (depth + 1)");
    expect_error("{\"block_num_heads\": [12, 12]}", "'block_num_heads' has 2 entries, expected 13");
    expect_error("{\"depth\": 2, \"block_mlp_hidden\": [1, 0, 3]}", "block_mlp_hidden[1] must be a positive integer");
    expect_error("{\"depth\": 2, \"block_mlp_hidden\": [1, -3, 3]}", "block_mlp_hidden[1] must be a positive integer");
    expect_error("{\"depth\": 2, \"block_mlp_hidden\": [1, 2, 3.5]}", "block_mlp_hidden[2] must be a positive integer");
    expect_error("{\"depth\": 2, \"block_num_heads\": [1, \"2\", 3]}", "block_num_heads[1] must be a positive integer");
    expect_error("{\"depth\": 2, \"block_mlp_hidden\": [1, 2, 1000000]}", "block_mlp_hidden[2] is 1000000, must be 1..");
    expect_error("{\"depth\": 2, \"block_num_heads\": [1, 2, 1000]}", "block_num_heads[2] is 1000, must be 1..256");
    expect_error("{\"block_mlp_hidden\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                 "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}",
                 "'block_mlp_hidden' has more than 64 entries");
    /* the length is checked against depth wherever depth appears in the object */
    parse_ok(&c, "{\"block_mlp_hidden\": [5, 5, 5], \"depth\": 2}");
    cr_assert_eq(c.block_mlp_hidden[2], 5);
}

Test(uvit_config, finish_fills_zero_entries_and_validates)
{
    UViTConfig c;
    uvit_config_default(&c);
    c.depth = 4;
    c.block_mlp_hidden[2] = 100;
    cr_assert_eq(uvit_config_finish(&c, "x"), 0, "%s", err_msg());
    cr_assert_eq(c.num_blocks, 5);
    cr_assert_eq(c.block_mlp_hidden[2], 100);
    cr_assert_eq(c.block_mlp_hidden[5], 0, "entries past num_blocks are zeroed");

    memset(c.block_mlp_hidden, 0, sizeof c.block_mlp_hidden);
    memset(c.block_num_heads, 0, sizeof c.block_num_heads);
    c.embed_dim = 256;
    c.num_heads = 4;
    cr_assert_eq(uvit_config_finish(&c, "x"), 0, "%s", err_msg());
    cr_assert_eq(c.block_mlp_hidden[0], 1024);
    cr_assert_eq(c.block_num_heads[4], 4);
    cr_assert_eq(c.head_dim, 64);

    c.block_num_heads[1] = -1;
    cr_assert_eq(uvit_config_finish(&c, "m.safetensors"), -1);
    cr_assert_str_eq(err_msg(), "m.safetensors: config: block_num_heads[1] is -1, must be 1..256 "
                                "(heads * head_dim 64 at most 16384)");
    c.block_num_heads[1] = 0;
    c.qkv_bias = 2;
    cr_assert_eq(uvit_config_finish(&c, "m.safetensors"), -1);
    cr_assert(strstr(err_msg(), "m.safetensors: config: 'qkv_bias' is 2"), "%s", err_msg());
}

Test(uvit_config, json_round_trip_is_exact)
{
    UViTConfig c;
    uvit_config_default(&c);
    char *json = round_trip(&c);
    cr_assert_str_eq(json, "{\"img_size\":224,\"patch_size\":16,\"in_chans\":3,\"embed_dim\":768,"
                           "\"depth\":12,\"num_heads\":12,\"mlp_ratio\":4,\"qkv_bias\":false,"
                           "\"mlp_time_embed\":false,\"num_classes\":-1,\"conv\":true}");
    free(json);

    parse_ok(&c, "{\"img_size\": 64, \"patch_size\": 4, \"embed_dim\": 96, \"depth\": 2,"
                 " \"num_heads\": 3, \"mlp_ratio\": 2.6666666666666665, \"qkv_bias\": true,"
                 " \"mlp_time_embed\": true, \"num_classes\": 1001, \"conv\": false,"
                 " \"in_chans\": 4}");
    cr_assert_eq(c.block_mlp_hidden[0], 256, "int(96 * 2.6666666666666665) = 256 as in Python");
    json = round_trip(&c);
    cr_assert_null(strstr(json, "block_"), "default arrays are not written: %s", json);
    free(json);

    parse_ok(&c, "{\"mlp_ratio\": 0.7, \"embed_dim\": 384, \"num_heads\": 6}");
    cr_assert_eq(c.block_mlp_hidden[0], 268, "int(384 * 0.7) = int(268.79999999999995)");
    free(round_trip(&c));
    parse_ok(&c, "{\"mlp_ratio\": 3.0000000000000004}");
    free(round_trip(&c));

    parse_ok(&c, "{\"depth\": 2, \"block_mlp_hidden\": [3072, 17, 3072]}");
    json = round_trip(&c);
    cr_assert(strstr(json, "\"block_mlp_hidden\":[3072,17,3072]"), "%s", json);
    cr_assert_null(strstr(json, "block_num_heads"), "%s", json);
    free(json);

    parse_ok(&c, "{\"depth\": 2, \"block_num_heads\": [1, 2, 3]}");
    json = round_trip(&c);
    cr_assert(strstr(json, "\"block_num_heads\":[1,2,3]"), "%s", json);
    free(json);
}

/* text-to-image (libs/uvit_t2i.py): clip_dim and num_clip_token, U-ViT's
   default of 77 tokens, 1 + L extras, and no class labels */
Test(uvit_config, text_to_image_keys)
{
    UViTConfig c;
    parse_ok(&c, "{\"img_size\":32,\"patch_size\":2,\"in_chans\":4,\"embed_dim\":512,\"depth\":12,"
                 "\"num_heads\":8,\"clip_dim\":768,\"num_clip_token\":77}");   /* configs/mscoco_uvit.py */
    cr_assert(uvit_is_text(&c));
    cr_assert_eq(uvit_num_extras(&c), 78);
    cr_assert_eq(uvit_num_tokens(&c), 256 + 78);
    cr_assert_eq(uvit_time_token(&c), 0);
    char *json = round_trip(&c);
    cr_assert(strstr(json, "\"clip_dim\":768,\"num_clip_token\":77"), "%s", json);
    free(json);
    parse_ok(&c, "{\"clip_dim\":16}");   /* uvit_t2i's default token count */
    cr_assert_eq(c.num_clip_token, 77);
    parse_ok(&c, "{\"clip_dim\":0,\"num_classes\":10}");   /* 0: not text-to-image */
    cr_assert(!uvit_is_text(&c) && uvit_num_extras(&c) == 2 && uvit_time_token(&c) == 1);
    json = uvit_config_to_json(&c);
    cr_assert(!strstr(json, "clip"), "a model that is not text-to-image names no clip keys: %s", json);
    free(json);
    expect_error("{\"num_clip_token\":5}", "'clip_dim' is 0 and 'num_clip_token' 5");
    expect_error("{\"clip_dim\":8,\"num_clip_token\":0}", "'clip_dim' is 8 and 'num_clip_token' 0");
    expect_error("{\"clip_dim\":8,\"num_classes\":10}", "'num_classes' is 10 with 'clip_dim' 8");
    expect_error("{\"clip_dim\":-1}", "'clip_dim' is -1");
    expect_error("{\"clip_dim\":8,\"num_clip_token\":5000}", "'num_clip_token' is 5000");
    expect_error("{\"clip_dim\":\"768\"}", "'clip_dim' must be an integer");
    cr_assert_eq(uvit_config_refuse_text(&c, "m.safetensors", "training"), 0);
    parse_ok(&c, "{\"clip_dim\":8,\"num_clip_token\":3}");
    cr_assert_eq(uvit_config_refuse_text(&c, "m.safetensors", "training"), -1);
    cr_assert(strstr(err_msg(), "m.safetensors: config: 'clip_dim' is 8"), "%s", err_msg());
}
