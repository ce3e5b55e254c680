"""make_adamw_fixture.py: U-ViT's optimizer step in PyTorch, for tests/test_optim.c.

Runs what U-ViT's train.py does after the backward pass, on a flat parameter
vector, for K steps with given gradients:
    clip_grad_norm_ (when grad_clip > 0), AdamW.step(), LambdaLR.step()
    (U-ViT's utils.customized_lr_scheduler: lr * min(step / warmup, 1)),
    utils.ema(): ema.mul_(rate).add_((1 - rate) * p)
with the EMA copy starting as the initial parameters (utils.ema(..., 0)).
Because the scheduler steps after the optimizer, update k (from 1) uses
lr * min((k - 1) / warmup, 1): the first update has lr 0.

Writes tests/fixtures/adamw.safetensors. For each configuration <c>:
    <c>.p0 [N], <c>.grads [K, N]            inputs
    <c>.p, <c>.m, <c>.v, <c>.ema [K, N]     state after each update
and metadata "<c>.<field>" holding repr() of lr, beta1, beta2, eps,
weight_decay, warmup, ema_rate, grad_clip, steps, n (exact decimal round trips).

    /usr/bin/python3 tests/reference/make_adamw_fixture.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "adamw.safetensors")

N = 515   # not a multiple of 16: exercises loop tails
K = 6

CONFIGS = {
    # U-ViT CIFAR-10 (configs/cifar10_uvit_small.py), short warmup
    "cifar": dict(lr=2e-4, beta1=0.99, beta2=0.999, eps=1e-8, weight_decay=0.03,
                  warmup=3, ema_rate=0.9999, grad_clip=0.0),
    # U-ViT CelebA / ImageNet betas
    "others": dict(lr=2e-4, beta1=0.99, beta2=0.99, eps=1e-8, weight_decay=0.03,
                   warmup=2, ema_rate=0.9999, grad_clip=0.0),
    # large steps, so that a wrong update shows in the parameters; clipping on
    "big": dict(lr=5e-2, beta1=0.9, beta2=0.999, eps=1e-3, weight_decay=0.1,
                warmup=0, ema_rate=0.9, grad_clip=1.0),
}


def run(name, c, gen):
    # parameters of mixed magnitudes, some exact zeros
    scale = torch.logspace(-3, 1, N, dtype=torch.float64)[torch.randperm(N, generator=gen)]
    p0 = (torch.randn(N, generator=gen, dtype=torch.float64) * scale).float()
    p0[::37] = 0.0
    grads = torch.randn(K, N, generator=gen, dtype=torch.float64).float()
    grads *= torch.logspace(-9, 1, N, dtype=torch.float64)[torch.randperm(N, generator=gen)].float()
    grads[:, ::41] = 0.0
    grads[2] *= 30.0   # one large gradient: clipping acts there when on

    param = torch.nn.Parameter(p0.clone())
    ema = p0.clone()
    opt = torch.optim.AdamW([param], lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                            weight_decay=c["weight_decay"], foreach=False)
    warmup = c["warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(step / warmup, 1) if warmup > 0 else 1)
    out = {k: torch.empty(K, N) for k in ("p", "m", "v", "ema")}
    for k in range(K):
        opt.zero_grad()
        param.grad = grads[k].clone()
        if c["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_([param], max_norm=c["grad_clip"])
        opt.step()
        sched.step()
        rate = c["ema_rate"]
        ema.mul_(rate).add_((1 - rate) * param.data)
        st = opt.state[param]
        out["p"][k] = param.data
        out["m"][k] = st["exp_avg"]
        out["v"][k] = st["exp_avg_sq"]
        out["ema"][k] = ema
    tensors = {name + ".p0": p0, name + ".grads": grads}
    tensors.update({name + "." + k: v for k, v in out.items()})
    meta = {name + "." + k: repr(v) for k, v in c.items()}
    meta[name + ".steps"] = repr(K)
    meta[name + ".n"] = repr(N)
    return tensors, meta


def main():
    gen = torch.Generator().manual_seed(20261127)
    tensors, meta = {}, {"torch": torch.__version__}
    for name, c in CONFIGS.items():
        t, m = run(name, c, gen)
        tensors.update(t)
        meta.update(m)
    save_file(tensors, OUT, metadata=meta)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
