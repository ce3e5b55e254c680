/*
 * cond.h: what one network evaluation is conditioned on, row by row.
 *
 * U-ViT comes in three kinds (model/uvit_config.h): unconditional,
 * class-conditional (libs/uvit.py: a label token) and text-to-image
 * (libs/uvit_t2i.py: num_clip_token precomputed CLIP token features of each
 * image's prompt, embedded by context_embed). A Conditioning carries what
 * the kind needs, for the B rows of one call:
 *
 *   y             [B] I64 class labels (backend), or tensor_none()
 *   context       [B, num_clip_token, clip_dim] F32 text tokens (backend),
 *                 or tensor_none()
 *   exit_partner  [B] host, or NULL. Set only by classifier-free guidance
 *                 under paired exits (model/denoiser.h, CFG_EXIT_PAIRED):
 *                 exit_partner[b] is the row that holds the other pass of
 *                 row b's image (the conditional pass of an unconditional
 *                 row and back). An early-exit predictor then lets the two
 *                 rows leave at the same block; predictors that exit no
 *                 rows ignore it. NULL: every row exits on its own.
 *
 * The struct is passed by value; it owns nothing.
 */
#ifndef DEEDIFF_COND_H
#define DEEDIFF_COND_H

#include "../kernels/ops.h"

typedef struct {
    Tensor y;
    Tensor context;
    const int *exit_partner;
} Conditioning;

/* unconditional */
static inline Conditioning cond_none(void)
{
    return (Conditioning){tensor_none(), tensor_none(), NULL};
}

/* class labels y[B] (I64), or tensor_none() */
static inline Conditioning cond_labels(Tensor y)
{
    return (Conditioning){y, tensor_none(), NULL};
}

/* text contexts [B, L, Dc] (F32) */
static inline Conditioning cond_context(Tensor context)
{
    return (Conditioning){tensor_none(), context, NULL};
}

#endif
