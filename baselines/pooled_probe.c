/*
 * pooled_probe.c: the pooled linear exit-decision module of
 * pooled_probe.h, forward and backward over the op interface.
 */
#include <stdlib.h>

#include "../kernels/errors.h"
#include "../kernels/philox.h"
#include "pooled_probe.h"

void pooled_probe_build(PooledProbe *p, Method *me, const UViTConfig *c, const char *name, int K)
{
    p->K = K;
    p->w = method_add_param(me, 2, (int64_t[]){K, c->embed_dim}, "%s.weight", name);
    p->b = method_add_param(me, 1, (int64_t[]){K}, "%s.bias", name);
}

void pooled_probe_init(const PooledProbe *p, Method *me, Ctx *ctx, uint64_t seed)
{
    const ParamInfo *pi = &me->params[p->w];
    float *host = xmalloc(pi->numel * sizeof(float));
    philox_fill_normal(host, (int64_t)pi->numel, seed, RNG_INIT_METHOD, (uint32_t)p->w, 0);
    for (size_t k = 0; k < pi->numel; k++) host[k] *= 0.02f;
    ctx_upload(ctx, me->weights + pi->offset, host, pi->numel * sizeof(float));
    free(host);
    ctx_zero(ctx, method_param(me, me->weights, p->b));
}

void pooled_probe_forward(const PooledProbe *p, const Method *me, Ctx *ctx, Tensor hidden, Tensor pooled,
                          Tensor z)
{
    op_token_mean_forward(ctx, pooled, hidden);     // [B,T,D] -> [B,D]
    op_linear_forward(ctx, z, pooled, method_param(me, me->weights, p->w), method_param(me, me->weights, p->b));
}

void pooled_probe_backward(const PooledProbe *p, const Method *me, Ctx *ctx, Tensor pooled, Tensor dz,
                           Tensor d_hidden, Tensor d_pooled)
{
    int into_hidden = tensor_present(d_hidden);
    if (into_hidden) ctx_zero(ctx, d_pooled);
    op_linear_backward(ctx, into_hidden ? d_pooled : tensor_none(), method_param(me, me->grads, p->w),
                       method_param(me, me->grads, p->b), dz, pooled, method_param(me, me->weights, p->w));
    if (into_hidden) op_token_mean_backward(ctx, d_hidden, d_pooled);
}

double pooled_probe_macs(const UViTConfig *c, int K)
{
    return (double)c->embed_dim * K;
}
