/*
 * bench_ours.h: our U-ViT's images/s on a context, CPU or CUDA: the one
 * timing loop of the CPU section (cmd_bench.c) and the GPU section
 * (bench_gpu.c) of `deediff bench`.
 */
#ifndef DEEDIFF_BENCH_OURS_H
#define DEEDIFF_BENCH_OURS_H

#include "../../model/uvit.h"

typedef struct {
    double fwd_ips, fwdbwd_ips, train_ips;  /* images/s; the last two 0 unless training */
    double gflop_fwd;                       /* 2 x multiply-adds of one image's forward */
} OurTimes;

/* times `iters` iterations on a batch of `batch` images after `warmup` more:
   the forward alone on an inference arena (the network evaluation a
   sampler makes; PyTorch's peer runs it under no_grad), then when training
   the forward and the backward from a fixed dL/dout on a training arena,
   and the training step's update (optim_step: the NaN check, the gradient
   norm, AdamW and the EMA, U-ViT's settings with a tiny learning rate so
   the weights stay where they are). Inputs live in backend memory; the
   device is synchronized around every timed part. Medians go to *r.     */
void bench_ours(Ctx *ctx, UViT *m, int batch, int warmup, int iters, int training, OurTimes *r);

#endif
