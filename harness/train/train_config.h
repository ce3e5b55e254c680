/*
 * train_config.h: the configuration of `deediff train`, a JSON file plus
 * command-line overrides.
 *
 * Format (every key optional except model; unknown keys are errors):
 *   {
 *     "model": { U-ViT constructor keys, as in deediff info --config },
 *     "data":  { "dataset": "fmnist"|"cifar10"|"images"|"celeba"|"latents",
 *                "path": folder (default: the format's own), "flip": false,
 *                "pad32": false (fmnist), "max_items": 0 (all),
 *                "empty_context": "" (text-to-image with train.p_uncond: the
 *                empty prompt's CLIP features, U-ViT's empty_context.npy) },
 *     "train": { "steps": 1000, "batch": 128, "seed": 0,
 *                "noise": "vpsde"|"discrete", "p_uncond": 0.0,
 *                "log_every": 50, "ckpt_every": 500 },
 *     "optim": { "lr": 2e-4, "beta1": 0.99, "beta2": 0.999, "eps": 1e-8,
 *                "weight_decay": 0.03, "warmup_steps": 2500,
 *                "ema_decay": 0.9999, "max_grad_norm": 0 },
 *     "output": { "dir": "results/runs/NAME", "db": "results/results.db",
 *                 "export": "" (a plain EMA model file written at the end),
 *                 "init": "" (start from these weights: a pretrained backbone) },
 *     "method": { "name": "none" (model/method.h; deediff methods lists them), and the
 *                 method's own options, e.g. "uem_buckets": 4 (deediff
 *                 --help lists them) }
 *   }
 * train.freeze_backbone (false) trains only the method's parameters.
 * `deediff train-autoencoder` reads the same format with the KL
 * autoencoder's configuration as "model" (model/autoencoder_config.h; its
 * scale_factor is measured after training) and one key of its own,
 * train.kl_weight (1e-6, LDM's), from a pixel dataset; method, p_uncond,
 * noise and output.init do not apply to it.
 * "model" may be left out when output.init names a backbone: its
 * configuration is then the backbone's; when both are given they must agree.
 * When output.init is a file of the run's method, the method options the
 * file records are the run's, except those the configuration gives.
 * The optim defaults are U-ViT's CIFAR-10 settings. An override is
 * "section.key=value" (e.g. train.steps=200 optim.lr=1e-4); its value is
 * read as JSON when it parses as JSON, else as a string.
 */
#ifndef DEEDIFF_TRAIN_CONFIG_H
#define DEEDIFF_TRAIN_CONFIG_H

#include <stdint.h>

#include "../../model/autoencoder_config.h"
#include "../../model/optim.h"
#include "../../model/uvit_config.h"
#include "../../model/vpsde_train.h"
#include "../data/dataset.h"

/* what "model" configures */
typedef enum { TRAIN_MODEL_UVIT = 0, TRAIN_MODEL_AUTOENCODER } TrainModelKind;

typedef struct {
    TrainModelKind kind;
    UViTConfig model;          /* TRAIN_MODEL_UVIT */
    AutoencoderConfig ae;      /* TRAIN_MODEL_AUTOENCODER */
    double kl_weight;          /* autoencoder: the KL term's weight; -1 = not given */
    /* data */
    char dataset[32];
    char data_path[1024];
    char empty_context[1024];  /* text-to-image with p_uncond: the empty prompt's features */
    int flip, pad32;
    int64_t max_items;
    /* train */
    int64_t steps;
    int batch;
    uint64_t seed;
    TrainNoiseKind noise;
    double p_uncond;
    int64_t log_every, ckpt_every;
    int freeze_backbone;
    OptimConfig optim;
    /* method */
    char method[32];
    char *method_options;   /* JSON object of the method's options (owned) */
    /* output */
    char out_dir[1024], db[1024], export_path[1024], init[1024];
    char source[1024];   /* the configuration file, for error messages */
    /* the whole configuration after overrides, as JSON (owned) */
    char *json;
} TrainConfig;

/* reads path, applies overrides ("a.b=v"), validates; -1 + err_msg() naming
   the file (or the override) and the key. path NULL starts from an empty
   configuration (then output.init must name the backbone). */
int train_config_load(TrainConfig *tc, const char *path, int n_overrides,
                      const char *const *overrides);
/* the same for another kind of model (train_config_load is TRAIN_MODEL_UVIT) */
int train_config_load_kind(TrainConfig *tc, TrainModelKind kind, const char *path, int n_overrides,
                           const char *const *overrides);
void train_config_free(TrainConfig *tc);

/* the dataset spec the configuration describes */
int train_config_dataset(const TrainConfig *tc, DatasetSpec *spec);

#endif
