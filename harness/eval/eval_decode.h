/*
 * eval_decode.h: latent samples to images for `deediff eval --autoencoder`
 * (Table 2: U-ViT's latent models are evaluated on the images the KL
 * autoencoder decodes, as U-ViT's eval_ldm.py does before FID).
 */
#ifndef DEEDIFF_EVAL_DECODE_H
#define DEEDIFF_EVAL_DECODE_H

#include <stdint.h>

#include "../../model/autoencoder.h"
#include "../../model/uvit_config.h"
#include "../store/file_hash.h"

typedef struct {
    const char *path;
    char sha256[SHA256_HEX_LEN + 1];
    Autoencoder m;
    int channels, side;      /* the decoded images: channels x side x side */
} EvalDecoder;

/* loads the autoencoder at path and checks that it decodes the model's
   samples (embed_dim = in_chans); -1 + err_msg() naming the file and the
   field ("--autoencoder: W: ...") */
int eval_decoder_open(Ctx *ctx, const char *path, const UViTConfig *model, EvalDecoder *d);
void eval_decoder_close(Ctx *ctx, EvalDecoder *d);

/* images[n, channels, side, side] <- latents[n, in_chans, img_size,
   img_size] (already times scale_factor, as sampled), `batch` at a time;
   returns the seconds the decoder took */
double eval_decoder_run(Ctx *ctx, EvalDecoder *d, const float *latents, int64_t n, int batch, float *images);

#endif
