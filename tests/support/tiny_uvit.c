/*
 * tiny_uvit.c: a small U-ViT for tests (see tiny_uvit.h).
 */
#include <criterion/criterion.h>

#include "kernels/errors.h"
#include "tiny_uvit.h"

void tiny_uvit_create(UViT *m, Ctx *ctx, const char *json, uint64_t seed)
{
    UViTConfig cfg;
    cr_assert_eq(uvit_config_parse(&cfg, json, "test"), 0, "%s", err_msg());
    uvit_create(m, ctx, &cfg);
    uvit_init_random(m, ctx, seed);
}
