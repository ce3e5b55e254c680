/*
 * train_autoencoder.h: training a KL autoencoder of our own
 * (`deediff train-autoencoder`): the tiny scale of Table 2 needs one for
 * Fashion-MNIST, since Stable Diffusion's is made for 256x256 RGB images.
 */
#ifndef DEEDIFF_TRAIN_AUTOENCODER_H
#define DEEDIFF_TRAIN_AUTOENCODER_H

#include "../cli/run_context.h"
#include "train_config.h"

/* How (LDM's first stage, without its perceptual and adversarial terms):
 *   moments = encode(x); z = mean + std eps (eps: Philox RNG_AE_POSTERIOR);
 *   loss = mean (decode(z) - x)^2 + kl_weight KL / (C H W)
 * (KL summed over the latent per image, averaged over the batch: the ratio
 * of LDM's summed reconstruction error to its kl_weight 1e-6), AdamW with
 * the configuration's schedule. Then the scale factor, as LDM chooses it:
 * 1 / std of z over the first 2048 training images (at most), so a latent
 * model sees unit-variance inputs; the reconstruction error of the test
 * split's first 1000 images (decoded from the posterior mean) is measured.
 * The run, its loss curve and those numbers (ae.scale_factor,
 * ae.recon_mse_test, ae.kl) go to output.db; the weights (not their EMA:
 * LDM keeps none) to output.export, atomically. No checkpoints: the
 * training is short, and a killed one starts again. -1 + err_msg(). */
int train_autoencoder_run(RunContext *run, const TrainConfig *tc, const char *command);

#endif
