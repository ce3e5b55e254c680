/*
 * autoencoder_config.h: the configuration of the KL autoencoder
 * (model/autoencoder.h), as the safetensors metadata "config" keeps it.
 *
 * The JSON object holds U-ViT's `ddconfig` keys (libs/autoencoder.py,
 * get_model) and the two arguments of FrozenAutoencoderKL beside them:
 *   double_z          true (required to be true: FrozenAutoencoderKL asserts it)
 *   z_channels        channels of z between the encoder's conv_out and quant_conv
 *   resolution        image side the configuration was built for; it places
 *                     the attention blocks (attn_resolutions) and must be a
 *                     multiple of the downsampling factor 2^(levels-1)
 *   in_channels, out_ch   image channels in and out
 *   ch, ch_mult       base width and its multiplier per level (1 to 8 levels)
 *   num_res_blocks    ResnetBlocks per level (the decoder has one more)
 *   attn_resolutions  levels (by their side) with an AttnBlock after each
 *                     ResnetBlock; [] in Stable Diffusion's autoencoder
 *   dropout           must be 0 (no dropout is implemented)
 *   embed_dim         latent channels (quant_conv gives 2*embed_dim moments)
 *   scale_factor      0.18215 by default (U-ViT's): decode divides z by it
 *   num_groups        GroupNorm groups, 32 by default. Not an official key:
 *                     the official Normalize fixes 32; a smaller value exists
 *                     so that test models stay small. ch must divide by it.
 * Keys are checked strictly: unknown keys, wrong types and values out of
 * range are errors naming the key. double_z, attn_resolutions, dropout,
 * scale_factor and num_groups may be left out (their defaults above); the
 * others are required.
 */
#ifndef DEEDIFF_AUTOENCODER_CONFIG_H
#define DEEDIFF_AUTOENCODER_CONFIG_H

#define AE_MAX_LEVELS 8
#define AE_MAX_ATTN 8

typedef struct {
    int in_channels, out_ch, ch, num_res_blocks;
    int num_levels, ch_mult[AE_MAX_LEVELS];
    int num_attn, attn_resolutions[AE_MAX_ATTN];
    int resolution, z_channels, embed_dim, num_groups;
    double scale_factor;
} AutoencoderConfig;

/* Stable Diffusion's KL-f8 autoencoder as U-ViT's get_model builds it: ch
   128, ch_mult [1,2,4,4], 2 res blocks, z_channels 4, embed_dim 4,
   resolution 256, no attention in the levels, scale_factor 0.18215 */
void autoencoder_config_sd(AutoencoderConfig *c);

/* parses and validates JSON; `source` starts every error message
   ("m.safetensors: __metadata__"); -1 + err_msg() naming the key */
int autoencoder_config_parse(AutoencoderConfig *c, const char *json, const char *source);
/* validates a configuration built in code; -1 + err_msg() */
int autoencoder_config_check(const AutoencoderConfig *c, const char *source);
/* compact JSON with every key (parses back to an equal configuration); free() it */
char *autoencoder_config_to_json(const AutoencoderConfig *c);
int autoencoder_config_equal(const AutoencoderConfig *a, const AutoencoderConfig *b);

/* the side ratio image / latent: 2^(num_levels - 1) */
int autoencoder_factor(const AutoencoderConfig *c);
/* does level i (side resolution / 2^i) hold attention blocks? */
int autoencoder_level_has_attn(const AutoencoderConfig *c, int level);

#endif
