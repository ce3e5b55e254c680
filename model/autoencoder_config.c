/*
 * autoencoder_config.c: the KL autoencoder's configuration: Stable
 * Diffusion's defaults, strict JSON parsing and validation, and JSON output
 * that parses back to the same configuration (autoencoder_config.h).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../kernels/errors.h"
#include "autoencoder_config.h"
#include "json_values.h"

/* upper bounds: far above any real autoencoder, low enough that no size overflows */
#define AE_MAX_CHANNELS 4096    /* ch * ch_mult, z_channels, embed_dim, image channels */
#define AE_MAX_RESOLUTION 16384
#define AE_MAX_RES_BLOCKS 64

void autoencoder_config_sd(AutoencoderConfig *c)
{
    static const int mult[4] = {1, 2, 4, 4};
    memset(c, 0, sizeof *c);
    c->in_channels = 3, c->out_ch = 3, c->ch = 128, c->num_res_blocks = 2;
    c->num_levels = 4;
    memcpy(c->ch_mult, mult, sizeof mult);
    c->resolution = 256, c->z_channels = 4, c->embed_dim = 4, c->num_groups = 32;
    c->scale_factor = 0.18215;
}

int autoencoder_factor(const AutoencoderConfig *c) { return 1 << (c->num_levels - 1); }

int autoencoder_level_has_attn(const AutoencoderConfig *c, int level)
{
    int side = c->resolution >> level;
    for (int k = 0; k < c->num_attn; k++)
        if (c->attn_resolutions[k] == side) return 1;
    return 0;
}

int autoencoder_config_check(const AutoencoderConfig *c, const char *src)
{
#define RANGE(field, lo, hi)                                                                  \
    if (c->field < (lo) || c->field > (hi))                                                   \
        return err_set("%s: config: '" #field "' is %d, must be %d..%d", src, c->field, (int)(lo), \
                       (int)(hi));
    RANGE(in_channels, 1, AE_MAX_CHANNELS);
    RANGE(out_ch, 1, AE_MAX_CHANNELS);
    RANGE(ch, 1, AE_MAX_CHANNELS);
    RANGE(num_res_blocks, 1, AE_MAX_RES_BLOCKS);
    RANGE(z_channels, 1, AE_MAX_CHANNELS);
    RANGE(embed_dim, 1, AE_MAX_CHANNELS);
    RANGE(resolution, 1, AE_MAX_RESOLUTION);
    RANGE(num_groups, 1, c->ch);
#undef RANGE
    if (c->num_levels < 1 || c->num_levels > AE_MAX_LEVELS)
        return err_set("%s: config: 'ch_mult' has %d entries, must have 1..%d", src, c->num_levels, AE_MAX_LEVELS);
    for (int i = 0; i < c->num_levels; i++)
        if (c->ch_mult[i] < 1 || (int64_t)c->ch * c->ch_mult[i] > AE_MAX_CHANNELS)
            return err_set("%s: config: ch_mult[%d] is %d, must be 1..%d (ch * ch_mult at most %d)", src, i,
                           c->ch_mult[i], AE_MAX_CHANNELS / c->ch, AE_MAX_CHANNELS);
    if (c->num_attn < 0 || c->num_attn > AE_MAX_ATTN)
        return err_set("%s: config: 'attn_resolutions' has %d entries, at most %d", src, c->num_attn, AE_MAX_ATTN);
    if (c->ch % c->num_groups)
        return err_set("%s: config: 'ch' %d is not a multiple of num_groups %d (every GroupNorm splits its "
                       "channels into num_groups groups)", src, c->ch, c->num_groups);
    if (c->resolution % autoencoder_factor(c))
        return err_set("%s: config: 'resolution' %d is not a multiple of the downsampling factor %d "
                       "(2^(levels-1))", src, c->resolution, autoencoder_factor(c));
    if (!(c->scale_factor > 0) || !isfinite(c->scale_factor))
        return err_set("%s: config: 'scale_factor' %g must be a positive number", src, c->scale_factor);
    return 0;
}

int autoencoder_config_equal(const AutoencoderConfig *a, const AutoencoderConfig *b)
{
    int same = a->in_channels == b->in_channels && a->out_ch == b->out_ch && a->ch == b->ch &&
               a->num_res_blocks == b->num_res_blocks && a->num_levels == b->num_levels &&
               a->num_attn == b->num_attn && a->resolution == b->resolution &&
               a->z_channels == b->z_channels && a->embed_dim == b->embed_dim &&
               a->num_groups == b->num_groups && a->scale_factor == b->scale_factor;
    for (int i = 0; same && i < a->num_levels; i++) same = a->ch_mult[i] == b->ch_mult[i];
    for (int i = 0; same && i < a->num_attn; i++) same = a->attn_resolutions[i] == b->attn_resolutions[i];
    return same;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* an array of positive integers into dst[max]; *n gets the count */
static int parse_int_array(const cJSON *v, int *dst, int max, int *n, const char *src)
{
    if (!cJSON_IsArray(v)) return err_set("%s: config: '%s' must be an array of integers", src, v->string);
    *n = 0;
    for (const cJSON *e = v->child; e; e = e->next, (*n)++) {
        if (*n >= max) return err_set("%s: config: '%s' has more than %d entries", src, v->string, max);
        if (json_int(e, &dst[*n]) < 0 || dst[*n] < 1)
            return err_set("%s: config: %s[%d] must be a positive integer", src, v->string, *n);
    }
    return 0;
}

/* the keys every configuration must name (ddconfig's and embed_dim) */
static const char *const required_keys[] = {"z_channels", "resolution", "in_channels", "out_ch", "ch",
                                            "ch_mult", "num_res_blocks", "embed_dim"};
#define N_REQUIRED (int)(sizeof required_keys / sizeof required_keys[0])

static int parse_keys(AutoencoderConfig *c, const cJSON *root, const char *src)
{
    static const struct { const char *key; size_t offset; } int_keys[] = {
        {"z_channels", offsetof(AutoencoderConfig, z_channels)},
        {"resolution", offsetof(AutoencoderConfig, resolution)},
        {"in_channels", offsetof(AutoencoderConfig, in_channels)},
        {"out_ch", offsetof(AutoencoderConfig, out_ch)},
        {"ch", offsetof(AutoencoderConfig, ch)},
        {"num_res_blocks", offsetof(AutoencoderConfig, num_res_blocks)},
        {"embed_dim", offsetof(AutoencoderConfig, embed_dim)},
        {"num_groups", offsetof(AutoencoderConfig, num_groups)},
    };
    const int n_int = sizeof int_keys / sizeof int_keys[0];
    for (const cJSON *v = root->child; v; v = v->next) {
        const char *key = v->string;
        for (const cJSON *u = root->child; u != v; u = u->next)
            if (!strcmp(u->string, key)) return err_set("%s: config: key '%s' appears twice", src, key);
        int done = 0, flag;
        for (int i = 0; i < n_int && !done; i++)
            if (!strcmp(key, int_keys[i].key)) {
                if (json_int(v, (int *)((char *)c + int_keys[i].offset)) < 0)
                    return err_set("%s: config: '%s' must be an integer", src, key);
                done = 1;
            }
        if (done) continue;
        if (!strcmp(key, "ch_mult")) {
            if (parse_int_array(v, c->ch_mult, AE_MAX_LEVELS, &c->num_levels, src)) return -1;
        } else if (!strcmp(key, "attn_resolutions")) {
            if (parse_int_array(v, c->attn_resolutions, AE_MAX_ATTN, &c->num_attn, src)) return -1;
        } else if (!strcmp(key, "double_z")) {
            if (json_bool(v, &flag) < 0 || !flag)
                return err_set("%s: config: 'double_z' must be true (the encoder gives mean and log-variance)", src);
        } else if (!strcmp(key, "dropout")) {
            if (!cJSON_IsNumber(v) || v->valuedouble != 0)
                return err_set("%s: config: 'dropout' must be 0 (no dropout is implemented)", src);
        } else if (!strcmp(key, "scale_factor")) {
            if (!cJSON_IsNumber(v)) return err_set("%s: config: 'scale_factor' must be a number", src);
            c->scale_factor = v->valuedouble;
        } else {
            return err_set("%s: config: unknown key '%s'", src, key);
        }
    }
    for (int k = 0; k < N_REQUIRED; k++)
        if (!cJSON_GetObjectItemCaseSensitive(root, required_keys[k]))
            return err_set("%s: config: missing key '%s'", src, required_keys[k]);
    return 0;
}

int autoencoder_config_parse(AutoencoderConfig *c, const char *json, const char *source)
{
    AutoencoderConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.num_groups = 32, cfg.scale_factor = 0.18215;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root)
        return err_set("%s: config: not valid JSON (near byte %zu)", source, end ? (size_t)(end - json) : (size_t)0);
    int rc = cJSON_IsObject(root) ? parse_keys(&cfg, root, source) : err_set("%s: config: not a JSON object", source);
    cJSON_Delete(root);
    if (rc || autoencoder_config_check(&cfg, source)) return -1;
    *c = cfg;
    return 0;
}

/* ---- writing --------------------------------------------------------------------------- */

static void add_int_array(cJSON *root, const char *key, const int *values, int n)
{
    cJSON *arr = cJSON_AddArrayToObject(root, key);
    CHECK(arr, "out of memory");
    for (int i = 0; i < n; i++) CHECK(cJSON_AddItemToArray(arr, cJSON_CreateNumber(values[i])), "out of memory");
}

char *autoencoder_config_to_json(const AutoencoderConfig *c)
{
    char scale[40];
    json_format_double(scale, sizeof scale, c->scale_factor);
    cJSON *root = cJSON_CreateObject();
    CHECK(root, "out of memory");
    int ok = cJSON_AddBoolToObject(root, "double_z", 1) &&
             cJSON_AddNumberToObject(root, "z_channels", c->z_channels) &&
             cJSON_AddNumberToObject(root, "resolution", c->resolution) &&
             cJSON_AddNumberToObject(root, "in_channels", c->in_channels) &&
             cJSON_AddNumberToObject(root, "out_ch", c->out_ch) &&
             cJSON_AddNumberToObject(root, "ch", c->ch);
    CHECK(ok, "out of memory");
    add_int_array(root, "ch_mult", c->ch_mult, c->num_levels);
    ok = cJSON_AddNumberToObject(root, "num_res_blocks", c->num_res_blocks) != NULL;
    CHECK(ok, "out of memory");
    add_int_array(root, "attn_resolutions", c->attn_resolutions, c->num_attn);
    ok = cJSON_AddNumberToObject(root, "dropout", 0) && cJSON_AddNumberToObject(root, "embed_dim", c->embed_dim) &&
         cJSON_AddRawToObject(root, "scale_factor", scale) &&
         cJSON_AddNumberToObject(root, "num_groups", c->num_groups);
    CHECK(ok, "out of memory");
    char *text = cJSON_PrintUnformatted(root);
    CHECK(text, "out of memory");
    cJSON_Delete(root);
    return text;
}
