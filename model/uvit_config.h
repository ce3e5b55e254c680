/*
 * uvit_config.h: a U-ViT configuration, parsed from and written to JSON.
 *
 * Keys are U-ViT's constructor argument names (libs/uvit.py):
 *   img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
 *   qkv_bias, mlp_time_embed, num_classes, conv
 * with U-ViT's defaults for missing keys (224, 16, 3, 768, 12, 12, 4.0,
 * false, false, -1, true), and the text-to-image network's
 * (libs/uvit_t2i.py), which has no num_classes:
 *   clip_dim, num_clip_token
 * absent or 0: not text-to-image. A config with clip_dim > 0 is a uvit_t2i
 * network: context_embed = Linear(clip_dim, D) over num_clip_token
 * precomputed CLIP token features (U-ViT's default 77 when num_clip_token is
 * absent), the sequence [time, context tokens, patches]; num_classes must
 * then stay -1. Also accepted for compatibility: "qk_scale" (must
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
    int clip_dim, num_clip_token;         /* text-to-image; 0: not */
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
/* JSON of a finished config with the eleven constructor keys (clip_dim and
   num_clip_token only for text-to-image, per-block arrays only when they
   differ from the defaults); parsing it gives back an equal config.
   malloc'd, caller frees */
char *uvit_config_to_json(const UViTConfig *c);

/* a command that reads no text contexts refuses a text-to-image config:
   -1 + err_set("<source>: config: 'clip_dim' is 768: <what> ..."), else 0 */
int uvit_config_refuse_text(const UViTConfig *c, const char *source, const char *what);

/* tokens in the sequence: (img/p)^2 patches + the extras before them:
     unconditional      [time, patches]                      1 extra
     class-conditional  [label, time, patches]               2
     text-to-image      [time, context tokens, patches]      1 + num_clip_token
   Every place that drops or skips the extras uses uvit_num_extras.        */
static inline int uvit_num_patches(const UViTConfig *c)
{
    int g = c->img_size / c->patch_size;
    return g * g;
}
static inline int uvit_is_text(const UViTConfig *c) { return c->clip_dim > 0; }
static inline int uvit_num_extras(const UViTConfig *c)
{
    return uvit_is_text(c) ? 1 + c->num_clip_token : c->num_classes > 0 ? 2 : 1;
}
/* where the time token sits: after the label when class-conditional */
static inline int uvit_time_token(const UViTConfig *c) { return c->num_classes > 0 ? 1 : 0; }
/* where the context tokens start (text-to-image): right after the time token */
#define UVIT_CONTEXT_TOKEN 1
static inline int uvit_num_tokens(const UViTConfig *c)
{
    return uvit_num_patches(c) + uvit_num_extras(c);
}

#endif
