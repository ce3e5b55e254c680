/*
 * uvit_config.c: U-ViT configurations: defaults, JSON parsing with strict
 * key and type checks, validation with derived per-block sizes, and JSON
 * output that parses back to the same configuration.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../kernels/errors.h"
#include "json_values.h"
#include "uvit_config.h"

/* upper bounds: far above any real U-ViT, low enough that no size overflows */
#define UVIT_MAX_IMG 4096
#define UVIT_MAX_CHANS 1024
#define UVIT_MAX_PATCH_VALUES (1 << 20)  /* patch_size^2 * in_chans: decoder width */
#define UVIT_MAX_PATCHES (1 << 16)       /* (img_size / patch_size)^2 */
#define UVIT_MAX_DIM 16384               /* embed_dim, and heads * head_dim of a block */
#define UVIT_MAX_HIDDEN (1 << 18)        /* MLP hidden units of a block */
#define UVIT_MAX_CLASSES (1 << 24)
#define UVIT_MAX_CLIP_TOKENS 4096        /* num_clip_token (U-ViT: 77) */
#define UVIT_T2I_DEFAULT_TOKENS 77       /* libs/uvit_t2i.py's num_clip_token default */

void uvit_config_default(UViTConfig *c)
{
    memset(c, 0, sizeof *c);
    c->img_size = 224;
    c->patch_size = 16;
    c->in_chans = 3;
    c->embed_dim = 768;
    c->depth = 12;
    c->num_heads = 12;
    c->mlp_ratio = 4.0;
    c->qkv_bias = 0;
    c->mlp_time_embed = 0;
    c->num_classes = -1;
    c->conv = 1;
    CHECK(uvit_config_finish(c, "defaults") == 0, "U-ViT defaults rejected: %s", err_msg());
}

static int default_mlp_hidden(const UViTConfig *c) { return (int)(c->embed_dim * c->mlp_ratio); }

/* checks the scalar fields (everything but the per-block arrays) */
static int check_scalars(const UViTConfig *c, const char *src)
{
#define RANGE(field, lo, hi)                                                              \
    if (c->field < (lo) || c->field > (hi))                                               \
        return err_set("%s: config: '" #field "' is %d, must be %d..%d", src, c->field,   \
                       (int)(lo), (int)(hi));
    RANGE(img_size, 1, UVIT_MAX_IMG);
    RANGE(patch_size, 1, c->img_size);
    RANGE(in_chans, 1, UVIT_MAX_CHANS);
    RANGE(embed_dim, 1, UVIT_MAX_DIM);
    RANGE(num_heads, 1, c->embed_dim);
    RANGE(depth, 0, UVIT_MAX_BLOCKS - 2);
    RANGE(qkv_bias, 0, 1);
    RANGE(mlp_time_embed, 0, 1);
    RANGE(conv, 0, 1);
#undef RANGE
    if (c->img_size % c->patch_size)
        return err_set("%s: config: img_size %d is not a multiple of patch_size %d", src,
                       c->img_size, c->patch_size);
    int grid = c->img_size / c->patch_size;
    if ((int64_t)grid * grid > UVIT_MAX_PATCHES)
        return err_set("%s: config: img_size %d / patch_size %d gives %lld patches, more than %d",
                       src, c->img_size, c->patch_size, (long long)grid * grid, UVIT_MAX_PATCHES);
    if ((int64_t)c->patch_size * c->patch_size * c->in_chans > UVIT_MAX_PATCH_VALUES)
        return err_set("%s: config: patch_size %d with in_chans %d gives patches of more than %d "
                       "values", src, c->patch_size, c->in_chans, UVIT_MAX_PATCH_VALUES);
    if (c->embed_dim % c->num_heads)
        return err_set("%s: config: embed_dim %d is not a multiple of num_heads %d", src,
                       c->embed_dim, c->num_heads);
    if (c->depth % 2)
        return err_set("%s: config: 'depth' is %d, must be even (depth/2 in and out blocks)",
                       src, c->depth);
    if (!(c->mlp_ratio > 0) || !(c->embed_dim * c->mlp_ratio < UVIT_MAX_HIDDEN + 1.0))
        return err_set("%s: config: 'mlp_ratio' %g must be positive and give at most %d MLP "
                       "units", src, c->mlp_ratio, UVIT_MAX_HIDDEN);
    if (default_mlp_hidden(c) < 1)
        return err_set("%s: config: 'mlp_ratio' %g gives an MLP of 0 units", src, c->mlp_ratio);
    if (c->num_classes != -1 && (c->num_classes < 1 || c->num_classes > UVIT_MAX_CLASSES))
        return err_set("%s: config: 'num_classes' is %d, must be -1 (unconditional) or 1..%d",
                       src, c->num_classes, UVIT_MAX_CLASSES);
    if (c->clip_dim < 0 || c->clip_dim > UVIT_MAX_DIM)
        return err_set("%s: config: 'clip_dim' is %d, must be 0 (not text-to-image) or 1..%d", src,
                       c->clip_dim, UVIT_MAX_DIM);
    if (c->num_clip_token < 0 || c->num_clip_token > UVIT_MAX_CLIP_TOKENS)
        return err_set("%s: config: 'num_clip_token' is %d, must be 0 (not text-to-image) or 1..%d", src,
                       c->num_clip_token, UVIT_MAX_CLIP_TOKENS);
    if ((c->clip_dim > 0) != (c->num_clip_token > 0))
        return err_set("%s: config: 'clip_dim' is %d and 'num_clip_token' %d: a text-to-image model needs "
                       "both, any other model neither", src, c->clip_dim, c->num_clip_token);
    if (c->clip_dim > 0 && c->num_classes != -1)
        return err_set("%s: config: 'num_classes' is %d with 'clip_dim' %d: the text-to-image U-ViT "
                       "(libs/uvit_t2i.py) has no class labels; use -1", src, c->num_classes, c->clip_dim);
    return 0;
}

int uvit_config_refuse_text(const UViTConfig *c, const char *source, const char *what)
{
    if (!uvit_is_text(c)) return 0;
    return err_set("%s: config: 'clip_dim' is %d: a text-to-image model, and %s reads no text contexts "
                   "(yet)", source, c->clip_dim, what);
}

int uvit_config_finish(UViTConfig *c, const char *source)
{
    if (check_scalars(c, source)) return -1;
    c->num_blocks = c->depth + 1;
    c->head_dim = c->embed_dim / c->num_heads;
    for (int i = 0; i < UVIT_MAX_BLOCKS; i++) {
        if (i >= c->num_blocks) {       /* unused entries are kept zero */
            c->block_mlp_hidden[i] = c->block_num_heads[i] = 0;
            continue;
        }
        if (c->block_mlp_hidden[i] == 0) c->block_mlp_hidden[i] = default_mlp_hidden(c);
        if (c->block_num_heads[i] == 0) c->block_num_heads[i] = c->num_heads;
        if (c->block_mlp_hidden[i] < 0 || c->block_mlp_hidden[i] > UVIT_MAX_HIDDEN)
            return err_set("%s: config: block_mlp_hidden[%d] is %d, must be 1..%d", source, i,
                           c->block_mlp_hidden[i], UVIT_MAX_HIDDEN);
        if (c->block_num_heads[i] < 0 || c->block_num_heads[i] > UVIT_MAX_DIM / c->head_dim)
            return err_set("%s: config: block_num_heads[%d] is %d, must be 1..%d (heads * "
                           "head_dim %d at most %d)", source, i, c->block_num_heads[i],
                           UVIT_MAX_DIM / c->head_dim, c->head_dim, UVIT_MAX_DIM);
    }
    return 0;
}

int uvit_config_equal(const UViTConfig *a, const UViTConfig *b)
{
    int same = a->img_size == b->img_size && a->patch_size == b->patch_size &&
               a->in_chans == b->in_chans && a->embed_dim == b->embed_dim &&
               a->depth == b->depth && a->num_heads == b->num_heads &&
               a->mlp_ratio == b->mlp_ratio && a->qkv_bias == b->qkv_bias &&
               a->mlp_time_embed == b->mlp_time_embed && a->num_classes == b->num_classes &&
               a->conv == b->conv && a->clip_dim == b->clip_dim && a->num_clip_token == b->num_clip_token &&
               a->num_blocks == b->num_blocks && a->head_dim == b->head_dim;
    for (int i = 0; same && i < UVIT_MAX_BLOCKS; i++)
        same = a->block_mlp_hidden[i] == b->block_mlp_hidden[i] &&
               a->block_num_heads[i] == b->block_num_heads[i];
    return same;
}

/* ---- parsing ------------------------------------------------------------------ */

/* a per-block array: positive integers, at most UVIT_MAX_BLOCKS; *n gets the count */
static int parse_block_array(const cJSON *v, int *dst, int *n, const char *src)
{
    if (!cJSON_IsArray(v))
        return err_set("%s: config: '%s' must be an array of integers", src, v->string);
    *n = 0;
    for (const cJSON *e = v->child; e; e = e->next, (*n)++) {
        if (*n >= UVIT_MAX_BLOCKS)
            return err_set("%s: config: '%s' has more than %d entries", src, v->string,
                           UVIT_MAX_BLOCKS);
        if (json_int(e, &dst[*n]) < 0 || dst[*n] < 1)
            return err_set("%s: config: %s[%d] must be a positive integer", src, v->string, *n);
    }
    return 0;
}

/* reads every key of the object into c; *n_hidden / *n_heads get the lengths
   of the per-block arrays (-1 when absent) */
static int parse_keys(UViTConfig *c, const cJSON *root, const char *src, int *n_hidden,
                      int *n_heads)
{
    static const struct { const char *key; size_t offset; } int_keys[] = {
        {"img_size", offsetof(UViTConfig, img_size)},
        {"patch_size", offsetof(UViTConfig, patch_size)},
        {"in_chans", offsetof(UViTConfig, in_chans)},
        {"embed_dim", offsetof(UViTConfig, embed_dim)},
        {"depth", offsetof(UViTConfig, depth)},
        {"num_heads", offsetof(UViTConfig, num_heads)},
        {"num_classes", offsetof(UViTConfig, num_classes)},
        {"clip_dim", offsetof(UViTConfig, clip_dim)},
        {"num_clip_token", offsetof(UViTConfig, num_clip_token)},
    }, bool_keys[] = {
        {"qkv_bias", offsetof(UViTConfig, qkv_bias)},
        {"mlp_time_embed", offsetof(UViTConfig, mlp_time_embed)},
        {"conv", offsetof(UViTConfig, conv)},
    };
    const int n_int = sizeof int_keys / sizeof int_keys[0];
    const int n_bool = sizeof bool_keys / sizeof bool_keys[0];

    for (const cJSON *v = root->child; v; v = v->next) {
        const char *key = v->string;
        for (const cJSON *u = root->child; u != v; u = u->next)
            if (strcmp(u->string, key) == 0)
                return err_set("%s: config: key '%s' appears twice", src, key);

        int done = 0, ignored;
        for (int i = 0; i < n_int && !done; i++)
            if (strcmp(key, int_keys[i].key) == 0) {
                if (json_int(v, (int *)((char *)c + int_keys[i].offset)) < 0)
                    return err_set("%s: config: '%s' must be an integer", src, key);
                done = 1;
            }
        for (int i = 0; i < n_bool && !done; i++)
            if (strcmp(key, bool_keys[i].key) == 0) {
                if (json_bool(v, (int *)((char *)c + bool_keys[i].offset)) < 0)
                    return err_set("%s: config: '%s' must be true or false", src, key);
                done = 1;
            }
        if (done) continue;

        if (strcmp(key, "mlp_ratio") == 0) {
            if (!cJSON_IsNumber(v))
                return err_set("%s: config: 'mlp_ratio' must be a number", src);
            c->mlp_ratio = v->valuedouble;
        } else if (strcmp(key, "qk_scale") == 0) {
            if (!cJSON_IsNull(v))
                return err_set("%s: config: 'qk_scale' must be null (only the default scale "
                               "head_dim^-0.5 is supported)", src);
        } else if (strcmp(key, "use_checkpoint") == 0) {
            if (json_bool(v, &ignored) < 0)
                return err_set("%s: config: 'use_checkpoint' must be true or false", src);
        } else if (strcmp(key, "skip") == 0) {
            int skip;
            if (json_bool(v, &skip) < 0)
                return err_set("%s: config: 'skip' must be true or false", src);
            if (!skip)
                return err_set("%s: config: 'skip' must be true (U-ViT without long skip "
                               "connections is not supported)", src);
        } else if (strcmp(key, "block_mlp_hidden") == 0) {
            if (parse_block_array(v, c->block_mlp_hidden, n_hidden, src)) return -1;
        } else if (strcmp(key, "block_num_heads") == 0) {
            if (parse_block_array(v, c->block_num_heads, n_heads, src)) return -1;
        } else {
            return err_set("%s: config: unknown key '%s'", src, key);
        }
    }
    return 0;
}

int uvit_config_parse(UViTConfig *c, const char *json, const char *source)
{
    UViTConfig cfg;
    uvit_config_default(&cfg);
    memset(cfg.block_mlp_hidden, 0, sizeof cfg.block_mlp_hidden);
    memset(cfg.block_num_heads, 0, sizeof cfg.block_num_heads);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root)
        return err_set("%s: config: not valid JSON (near byte %zu)", source,
                       end ? (size_t)(end - json) : (size_t)0);
    int n_hidden = -1, n_heads = -1;
    int rc = cJSON_IsObject(root) ? parse_keys(&cfg, root, source, &n_hidden, &n_heads)
                                  : err_set("%s: config: not a JSON object", source);
    /* uvit_t2i's constructor default: 77 CLIP tokens when only clip_dim is given */
    if (rc == 0 && cfg.clip_dim > 0 && !cJSON_GetObjectItemCaseSensitive(root, "num_clip_token"))
        cfg.num_clip_token = UVIT_T2I_DEFAULT_TOKENS;
    cJSON_Delete(root);
    if (rc || check_scalars(&cfg, source)) return -1;
    if (n_hidden >= 0 && n_hidden != cfg.depth + 1)
        return err_set("%s: config: 'block_mlp_hidden' has %d entries, expected %d (depth + 1)",
                       source, n_hidden, cfg.depth + 1);
    if (n_heads >= 0 && n_heads != cfg.depth + 1)
        return err_set("%s: config: 'block_num_heads' has %d entries, expected %d (depth + 1)",
                       source, n_heads, cfg.depth + 1);
    if (uvit_config_finish(&cfg, source)) return -1;
    *c = cfg;
    return 0;
}

/* ---- writing ---------------------------------------------------------------- */

static void add_block_array(cJSON *root, const char *key, const int *values, int n, int deflt)
{
    int custom = 0;
    for (int i = 0; i < n; i++) custom |= values[i] != deflt;
    if (!custom) return;
    cJSON *arr = cJSON_AddArrayToObject(root, key);
    CHECK(arr, "out of memory");
    for (int i = 0; i < n; i++) CHECK(cJSON_AddItemToArray(arr, cJSON_CreateNumber(values[i])),
                                      "out of memory");
}

char *uvit_config_to_json(const UViTConfig *c)
{
    char ratio[40];
    json_format_double(ratio, sizeof ratio, c->mlp_ratio);
    cJSON *root = cJSON_CreateObject();
    CHECK(root, "out of memory");
    int ok = cJSON_AddNumberToObject(root, "img_size", c->img_size) &&
             cJSON_AddNumberToObject(root, "patch_size", c->patch_size) &&
             cJSON_AddNumberToObject(root, "in_chans", c->in_chans) &&
             cJSON_AddNumberToObject(root, "embed_dim", c->embed_dim) &&
             cJSON_AddNumberToObject(root, "depth", c->depth) &&
             cJSON_AddNumberToObject(root, "num_heads", c->num_heads) &&
             cJSON_AddRawToObject(root, "mlp_ratio", ratio) &&
             cJSON_AddBoolToObject(root, "qkv_bias", c->qkv_bias) &&
             cJSON_AddBoolToObject(root, "mlp_time_embed", c->mlp_time_embed) &&
             cJSON_AddNumberToObject(root, "num_classes", c->num_classes) &&
             cJSON_AddBoolToObject(root, "conv", c->conv);
    if (ok && uvit_is_text(c))
        ok = cJSON_AddNumberToObject(root, "clip_dim", c->clip_dim) &&
             cJSON_AddNumberToObject(root, "num_clip_token", c->num_clip_token);
    CHECK(ok, "out of memory");
    add_block_array(root, "block_mlp_hidden", c->block_mlp_hidden, c->num_blocks,
                    default_mlp_hidden(c));
    add_block_array(root, "block_num_heads", c->block_num_heads, c->num_blocks, c->num_heads);
    char *text = cJSON_PrintUnformatted(root);
    CHECK(text, "out of memory");
    cJSON_Delete(root);
    return text;
}
