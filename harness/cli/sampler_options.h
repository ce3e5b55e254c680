/*
 * sampler_options.h: the sampling flags that `deediff sample` and
 * `deediff eval` share (--sampler --schedule --steps --seed --eta), parsed
 * into a SamplerConfig in one place.
 */
#ifndef DEEDIFF_SAMPLER_OPTIONS_H
#define DEEDIFF_SAMPLER_OPTIONS_H

#include "../../model/sampler.h"

typedef struct {
    const char *sampler;   /* default "em" */
    const char *schedule;  /* default "vpsde" */
    const char *steps, *seed, *eta;
} SamplerOptions;

#define SAMPLER_OPTIONS(so)                                                                     \
    {"--sampler", "em|dpm|dpm++|ddim", "sampler (default em)", &(so).sampler, NULL, 0},          \
    {"--schedule", "vpsde|discrete", "noise schedule (default vpsde)", &(so).schedule, NULL, 0}, \
    {"--steps", "S", "sampling steps (default: em 1000, dpm 50, ddim 100)", &(so).steps, NULL, 0}, \
    {"--seed", "S", "run seed; with an image's id it fixes the image's noise (default 0)",       \
     &(so).seed, NULL, 0},                                                                       \
    {"--eta", "E", "DDIM noise (default 0)", &(so).eta, NULL, 0}

/* the flags' SamplerConfig, checked; -1 + err_msg() naming the flag */
int sampler_options_parse(const SamplerOptions *so, SamplerConfig *sc);

#endif
