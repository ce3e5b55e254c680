/*
 * guidance_options.h: the conditioning and guidance flags that `deediff
 * sample` and `deediff eval` share, checked against the model in one place:
 *
 *   --guidance W       classifier-free guidance scale (0: none, the default):
 *                      eps = eps_cond + W (eps_cond - eps_uncond), the
 *                      unconditional pass with the null class (class-
 *                      conditional models) or the empty context (text-to-image)
 *   --cfg-exit MODE    how an image's two passes exit under guidance:
 *                      independent (default) or paired (model/denoiser.h)
 *   --context PATH     text-to-image: the images' prompts (required for such
 *                      a model; harness/data/context_source.h)
 *   --empty-context F  text-to-image with guidance: the empty prompt's
 *                      features (required then)
 *
 * Flags a model cannot use are refused (--context for a model that is not
 * text-to-image, --cfg-exit without --guidance, ...): one line naming the
 * flag, exit status 2. What was used goes into the run's protocol; a run
 * without these flags has exactly the protocol it had before they existed.
 */
#ifndef DEEDIFF_GUIDANCE_OPTIONS_H
#define DEEDIFF_GUIDANCE_OPTIONS_H

#include <cjson/cJSON.h>

#include "../../model/denoiser.h"
#include "../data/context_source.h"
#include "../store/file_hash.h"

typedef struct {
    const char *guidance, *cfg_exit, *context, *empty_context;
} GuidanceOptions;

#define GUIDANCE_OPTIONS(go)                                                                                  \
    {"--guidance", "W", "classifier-free guidance scale, eps_c + W (eps_c - eps_u) (class-conditional or "    \
     "text-to-image models; default 0: none)", &(go).guidance, NULL, 0},                                      \
    {"--cfg-exit", "independent|paired", "under guidance, an image's two passes leave at their own exits "    \
     "(independent, default) or together at the later of the two (paired)", &(go).cfg_exit, NULL, 0},       \
    {"--context", "FILE|DIR", "text-to-image: prompt i of image i, a safetensors 'context' [N,L,Dc] or "       \
     "U-ViT's MS-COCO feature folder (caption 0 of item i)", &(go).context, NULL, 0},                        \
    {"--empty-context", "FILE", "text-to-image guidance: the empty prompt's features, U-ViT's "               \
     "empty_context.npy [L,Dc] or a safetensors 'empty_context'", &(go).empty_context, NULL, 0}

/* the flags, opened for one model */
typedef struct {
    const GuidanceOptions *go;
    double scale;              /* 0: no guidance */
    CfgExit exit;
    int context_len, context_dim;           /* text-to-image: the model's L, Dc; 0 otherwise */
    ContextSource *contexts;                /* text-to-image */
    float *empty;                           /* [L, Dc] host, text-to-image with guidance */
    char context_sha256[SHA256_HEX_LEN + 1];   /* of a context file ("" for a folder) */
    char empty_sha256[SHA256_HEX_LEN + 1];
    float *batch_context;                   /* host scratch for guidance_cond */
    int64_t batch_cap;
} Guidance;

/* checks the flags against the model c and opens the files; -1 + err_msg()
   naming the flag or the file (nothing is left open then) */
int guidance_open(const GuidanceOptions *go, const UViTConfig *c, Guidance *g);
void guidance_close(Guidance *g);

/* the classes labels are drawn from: num_classes, less the null class when
   guided (class-conditional models only) */
int guidance_label_classes(const Guidance *g, const UViTConfig *c);

/* inner itself without guidance, else inner wrapped in cfg (the caller's
   storage, cfg_predictor_destroy it when guidance_wraps); -1 + err_msg() */
int guidance_wrap(const Guidance *g, Ctx *ctx, const UViTConfig *c, NoisePredictor *inner, CfgPredictor *cfg,
                  NoisePredictor **out);
static inline int guidance_wraps(const Guidance *g) { return g->scale != 0; }

/* every image id has a prompt (text-to-image); -1 + err_msg() naming --context */
int guidance_check_ids(const Guidance *g, const int64_t *ids, int64_t n);

/* what images ids[n] are conditioned on: labels (may be NULL) and, for a
   text-to-image model, their contexts (read into g's scratch, valid until
   the next call); -1 + err_msg() naming the context file */
int guidance_cond(Guidance *g, const int64_t *ids, int64_t n, const int64_t *labels, SampleCond *out);

/* adds what was used to a run's protocol: cfg_exit under guidance, the
   context source and the empty context for text-to-image (nothing for a
   run without these flags; the caller writes "guidance" itself) */
void guidance_protocol_add(const Guidance *g, cJSON *protocol);
/* the flags that redraw an image the same way (" --cfg-exit paired
   --context F ..."; "" when none), into buf */
void guidance_redraw_flags(const Guidance *g, char *buf, size_t n);

#endif
