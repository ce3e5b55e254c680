/*
 * uvit_config.h: a U-ViT configuration, parsed from and written to JSON.
 *
 * Keys are U-ViT's constructor argument names (libs/uvit.py):
 *   img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
 *   qkv_bias, mlp_time_embed, num_classes, conv
 * with U-ViT's defaults for missing keys (224, 16, 3, 768, 12, 12, 4.0,
 * false, false, -1, true). Also accepted for compatibility: "qk_scale" (must
 * be null), "use_checkpoint" (no effect here), "skip" (must be true).
 * Our extensions, for structural pruning: "block_mlp_hidden" and
 * "block_num_heads", arrays with one entry per block (depth + 1 blocks, in
 * order in_blocks, mid_block, out_blocks). An unknown key is an error.
 *
 * In a checkpoint the JSON travels in __metadata__["config"].
 */
#ifndef DEEDIFF_UVIT_CONFIG_H
#define DEEDIFF_UVIT_CONFIG_H

#define UVIT_MAX_BLOCKS 64

typedef struct {
    int img_size, patch_size, in_chans, embed_dim, depth, num_heads;
    double mlp_ratio;
    int qkv_bias, mlp_time_embed, num_classes, conv;
    /* derived and per-block (filled by uvit_config_finish) */
    int num_blocks;                       /* depth + 1: in, mid, out */
    int block_mlp_hidden[UVIT_MAX_BLOCKS]; /* default int(D * mlp_ratio) */
    int block_num_heads[UVIT_MAX_BLOCKS];  /* default num_heads */
    int head_dim;                          /* embed_dim / num_heads */
} UViTConfig;

/* U-ViT's defaults, finished */
void uvit_config_default(UViTConfig *c);
/* parses JSON text (missing keys keep U-ViT's defaults), then validates;
   `source` names the file in errors ("m.safetensors: config: ...").
   On failure c is left untouched. */
int uvit_config_parse(UViTConfig *c, const char *json, const char *source);
/* fills derived fields and checks ranges; -1 with err_msg() on bad values.
   A per-block entry of 0 takes its default; entries past num_blocks are
   zeroed. After changing embed_dim, num_heads or mlp_ratio of a finished
   config, zero the per-block arrays before finishing it again, or they keep
   the old defaults (and count as pruned). */
int uvit_config_finish(UViTConfig *c, const char *source);
/* 1 when two finished configs describe the same network */
int uvit_config_equal(const UViTConfig *a, const UViTConfig *b);
/* JSON of a finished config with the eleven constructor keys (per-block
   arrays only when they differ from the defaults); parsing it gives back an
   equal config. malloc'd, caller frees */
char *uvit_config_to_json(const UViTConfig *c);

/* tokens in the sequence: (img/p)^2 patches + 1 time (+ 1 label) */
static inline int uvit_num_patches(const UViTConfig *c)
{
    int g = c->img_size / c->patch_size;
    return g * g;
}
static inline int uvit_num_extras(const UViTConfig *c) { return c->num_classes > 0 ? 2 : 1; }
static inline int uvit_num_tokens(const UViTConfig *c)
{
    return uvit_num_patches(c) + uvit_num_extras(c);
}

#endif
