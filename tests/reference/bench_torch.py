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
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="U-ViT config JSON")
    ap.add_argument("--model", help="weights (.safetensors) instead of random ones")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.batch < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--batch, --threads, --iters must be positive")

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
