/*
 * tiny_uvit.h: a small U-ViT for tests (test support), from a JSON
 * configuration, with random weights.
 */
#ifndef DEEDIFF_TINY_UVIT_H
#define DEEDIFF_TINY_UVIT_H

#include <stdint.h>

#include "model/uvit.h"

/* parses json (the test fails on a bad one), creates m on ctx and fills it
   with uvit_init_random(seed); uvit_destroy frees it */
void tiny_uvit_create(UViT *m, Ctx *ctx, const char *json, uint64_t seed);

#endif
