"""bench_torch.py: the PyTorch side of the performance comparison (harness/bench.sh).

    /usr/bin/python3 tests/reference/bench_torch.py --config '{"img_size":32,...}' \
        --batch 8 --threads 2 --iters 5 [--model m.safetensors] [--warmup 3]

Builds uvit_ref.UViT in float32 on the CPU (random weights, or the weights of
--model, whose metadata config is used when --config is absent), random
inputs (x, fractional t in [0, 999), labels when conditional), then times
  forward   under torch.no_grad()
  fwdbwd    forward + backward of loss = mean((out - target)^2)
  train     fwdbwd + torch.optim.AdamW step (zero_grad included)
Each is warmed up, then the median over --iters timed iterations gives images
per second. Prints one JSON line:
  {"forward_ips":..., "fwdbwd_ips":..., "train_ips":..., "torch":"1.13.0", "threads":N, ...}

With --device cuda (the peer of `deediff bench --backend cuda`, harness/bench/bench_gpu.c)
the module runs on the GPU as U-ViT trains and samples there: F.scaled_dot_product_attention
(the official code's "flash" mode), bf16 autocast over F32 weights, eager and then
torch.compile(dynamic=False), timing
  forward   batch --batch under torch.inference_mode()
  train     batch --train-batch: zero_grad, forward, MSE loss, backward, fused AdamW,
            the EMA of the weights (torch._foreach_lerp_, U-ViT's ema_update)
(median over --iters / --train-iters after --warmup calls; the first compiled call's time is
reported as compile_s), and prints one JSON line as each is measured (flushed):
  {"torch": "2.11.0", "device": "NVIDIA H200"}
  {"pass": "forward", "mode": "eager", "batch": 256, "ips": ...}
  {"pass": "train", "mode": "compile", "batch": 128, "ips": ..., "compile_s": ...}
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import uvit_ref  # noqa: E402


def median_seconds(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def emit(obj):
    print(json.dumps(obj), flush=True)


def cuda_seconds(fn, warmup, iters):
    """(median seconds of iters calls after warmup calls, seconds of the first call)"""
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        fn()
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def run_cuda(model, args):
    """the GPU peer: forward and training step, eager then compiled"""
    dev = torch.device("cuda")
    uvit_ref.Attention.fused = hasattr(F, "scaled_dot_product_attention")
    model = model.to(dev)
    emit({"torch": torch.__version__, "device": torch.cuda.get_device_name(dev)})
    c = model.cfg

    def inputs(b):
        x = torch.randn(b, c["in_chans"], c["img_size"], c["img_size"], device=dev)
        t = torch.rand(b, device=dev) * 999
        y = torch.randint(0, c["num_classes"], (b,), device=dev) if c["num_classes"] > 0 else None
        return x, t, y

    fx, ft, fy = inputs(args.batch)
    tx, tt, ty = inputs(args.train_batch)
    target = torch.randn_like(tx)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    try:
        opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.03, betas=(0.99, 0.999), fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.03, betas=(0.99, 0.999))

    for mode in ("eager", "compile"):
        if mode == "compile":
            # no `import torch._dynamo` here: importing a submodule in a
            # function makes `torch` a local name of the whole function
            if not hasattr(torch, "compile"):
                print("bench_torch: torch.compile unavailable (torch %s)" % torch.__version__, file=sys.stderr)
                return 0
            net_fwd = torch.compile(model, dynamic=False)
            net_train = torch.compile(model, dynamic=False)
        else:
            net_fwd = net_train = model

        def forward():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                net_fwd(fx, ft, fy)

        def train():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = (net_train(tx, tt, ty).float() - target).pow(2).mean()
            loss.backward()
            opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema, params, 1 - 0.9999)

        for name, fn, b, iters in (("forward", forward, args.batch, args.iters),
                                   ("train", train, args.train_batch, args.train_iters)):
            try:
                sec, first = cuda_seconds(fn, args.warmup, iters)
            except Exception as e:  # noqa: BLE001: torch.compile fails at the first call, not before
                if mode == "eager":
                    raise
                print("bench_torch: compiled %s failed: %s" % (name, e), file=sys.stderr)
                continue
            line = {"pass": name, "mode": mode, "batch": b, "ips": round(b / sec, 2)}
            if mode == "compile":
                line["compile_s"] = round(first, 1)
            emit(line)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="U-ViT config JSON")
    ap.add_argument("--model", help="weights (.safetensors) instead of random ones")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--train-batch", type=int, default=128, help="cuda: the training step's batch")
    ap.add_argument("--train-iters", type=int, default=10, help="cuda: timed training steps")
    args = ap.parse_args()
    if args.batch < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0 or args.train_batch < 1 \
            or args.train_iters < 1:
        ap.error("--batch, --threads, --iters, --train-batch, --train-iters must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("deediff: --device cuda: this PyTorch (%s) sees no CUDA device" % torch.__version__, file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    state = None
    cfg = json.loads(args.config) if args.config else None
    if args.model:
        try:
            state, meta = safetensors_io.load_file(args.model)
        except (OSError, safetensors_io.SafetensorsError) as e:
            print("deediff: %s" % e, file=sys.stderr)
            return 2
        if cfg is None:
            if "config" not in meta:
                print("deediff: %s: __metadata__: no 'config'" % args.model, file=sys.stderr)
                return 2
            cfg = json.loads(meta["config"])
    if cfg is None:
        ap.error("--config or --model is required")
    try:
        model = uvit_ref.UViT(**cfg).float()
    except (ValueError, TypeError) as e:
        print("deediff: --config: %s" % e, file=sys.stderr)
        return 2
    if state is not None:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    else:
        uvit_ref.randomize_(model, torch.Generator().manual_seed(args.seed))

    if args.device == "cuda":
        return run_cuda(model, args)

    c, b = model.cfg, args.batch
    x = torch.randn(b, c["in_chans"], c["img_size"], c["img_size"])
    t = torch.rand(b) * 999
    y = torch.randint(0, c["num_classes"], (b,)) if c["num_classes"] > 0 else None
    target = torch.randn_like(x)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.03, betas=(0.99, 0.999))

    def forward():
        with torch.no_grad():
            model(x, t, y)

    def fwdbwd():
        model.zero_grad(set_to_none=False)
        loss = (model(x, t, y) - target).pow(2).mean()
        loss.backward()

    def train():
        opt.zero_grad(set_to_none=False)
        loss = (model(x, t, y) - target).pow(2).mean()
        loss.backward()
        opt.step()

    result = {}
    for name, fn in (("forward", forward), ("fwdbwd", fwdbwd), ("train", train)):
        result[name + "_ips"] = round(b / median_seconds(fn, args.warmup, args.iters), 3)
    result.update({"torch": torch.__version__, "threads": args.threads, "batch": b,
                   "iters": args.iters, "params": sum(p.numel() for p in model.parameters())})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
