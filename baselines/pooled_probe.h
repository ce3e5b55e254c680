/*
 * pooled_probe.h: a linear layer on the mean-pooled tokens of a hidden
 * state, the exit-decision module of BERxiT (its learning-to-exit module,
 * K = 1 with a sigmoid) and of CALM's meta-classifier (K = 2, softmax).
 *
 *   pooled = mean over T of hidden[B,T,D]       [B,D]
 *   z      = pooled @ w^T + b                   [B,K]   w [K,D], b [K]
 *
 * One module serves every exit (BERxiT shares its LTE across layers; so
 * does our calm-meta). The backward reaches w, b and, when asked, the
 * hidden state (both methods detach it: the module reads the features,
 * it does not shape them).
 */
#ifndef DEEDIFF_POOLED_PROBE_H
#define DEEDIFF_POOLED_PROBE_H

#include "../model/method.h"

typedef struct {
    int w, b;          /* method parameter indices */
    int K;
} PooledProbe;

/* appends method.NAME.weight [K,D] and method.NAME.bias [K] */
void pooled_probe_build(PooledProbe *p, Method *me, const UViTConfig *c, const char *name, int K);
/* weights normal(0, 0.02) from the seed, bias 0 */
void pooled_probe_init(const PooledProbe *p, Method *me, Ctx *ctx, uint64_t seed);

/* pooled[B,D] (backend) and z[B,K] (backend) from hidden[B,T,D] */
void pooled_probe_forward(const PooledProbe *p, const Method *me, Ctx *ctx, Tensor hidden, Tensor pooled,
                          Tensor z);
/* accumulates dz[B,K] into the probe's gradients (me->grads) and, when
   d_hidden is present, into d_hidden[B,T,D] (d_pooled [B,D] scratch) */
void pooled_probe_backward(const PooledProbe *p, const Method *me, Ctx *ctx, Tensor pooled, Tensor dz,
                           Tensor d_hidden, Tensor d_pooled);

/* multiply-adds per image (the pooling's adds not counted, as uvit_macs) */
double pooled_probe_macs(const UViTConfig *c, int K);

#endif
