/*
 * context_source.h: the text conditioning of generated images for a
 * text-to-image U-ViT (libs/uvit_t2i.py): each image's prompt as CLIP token
 * features [L, Dc] (L = num_clip_token, Dc = clip_dim), and the empty
 * prompt's features for classifier-free guidance.
 *
 * `--context PATH` (deediff sample, eval) is one of
 *   FILE.safetensors  a tensor "context" F32 [N, L, Dc]: prompt i in row i
 *                     (any prompts a researcher encoded: test prompts,
 *                     U-ViT's run_videos/contexts, ...)
 *   DIR               U-ViT's MS-COCO feature folder (the val split of
 *                     scripts/extract_mscoco_feature.py, read by the latent
 *                     dataset, harness/data/dataset_latents.c): prompt i is
 *                     item i's first caption, {i}_0.npy
 * Image id i is conditioned on prompt i, so an image keeps its prompt in
 * any batch and `--ids` redraws it; every id must be below N. (U-ViT's
 * eval_t2i_discrete.py draws contexts from a shuffled val loader, a random
 * caption each; ours is the deterministic first caption of item i.)
 *
 * `--empty-context PATH`: U-ViT's empty_context.npy (F32 [L, Dc], written by
 * scripts/extract_empty_feature.py: CLIP's features of ""), or a
 * .safetensors file with a tensor "empty_context" F32 [L, Dc].
 *
 * Every shape is checked against the model's (L, Dc) when the file is
 * opened; errors are one line naming the file and the field:
 *   "c.safetensors: tensor 'context': shape [4,5,8], expected [N, 5, 16] (...)".
 * A safetensors file is read whole into memory (st_open): for tens of
 * thousands of prompts use the feature folder, read item by item.
 */
#ifndef DEEDIFF_CONTEXT_SOURCE_H
#define DEEDIFF_CONTEXT_SOURCE_H

#include <stdint.h>

typedef struct ContextSource ContextSource;

/* opens a file or folder of contexts [N, len, dim]; -1 + err_msg() */
int context_source_open(const char *path, int len, int dim, ContextSource **out);
void context_source_close(ContextSource *s);
/* N: how many prompts the source holds */
int64_t context_source_count(const ContextSource *s);
/* "safetensors" or "mscoco-features" */
const char *context_source_kind(const ContextSource *s);
/* out[n, len, dim] (host) = the contexts of images ids[n]; -1 + err_msg()
   naming the path when an id is N or more, or a file is bad or not finite */
int context_source_read(ContextSource *s, const int64_t *ids, int64_t n, float *out);

/* out[len, dim] (host) = the empty context from a .npy or .safetensors
   file; -1 + err_msg() naming the file and the field */
int empty_context_read(const char *path, int len, int dim, float *out);

#endif
