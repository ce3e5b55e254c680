"""bench_inception.py: PyTorch's speed on the FID Inception, the peer of `deediff bench-inception`.

Runs the network of make_inception_fixture.py (torchvision Inception-v3 with
pytorch-fid's blocks, fp32, eval, no_grad) on batches of 32x32 images resized
to 299x299, and prints one JSON line:
  {"images_per_s": ..., "seconds_per_batch": ..., "batch": ..., "threads": ..., "torch": "..."}

Usage: /usr/bin/python3 tests/reference/bench_inception.py --weights W.safetensors
           [--batch 32] [--threads 2] [--iters 3] [--device cuda --tf32 0|1]

On --device cuda (the peer of `deediff bench --backend cuda`) the network and the
images live on the GPU and each batch ends with a synchronize; --tf32 sets
torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32 (1: cuDNN's
default for convolutions, as pytorch-fid runs; 0: exact F32 products), and
torch.backends.cudnn.benchmark is on, which pytorch-fid leaves off: the peer
is a little faster than pytorch-fid would be, so ours/PyTorch errs low.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_inception_fixture import fid_inception, load_weights, pool3  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--tf32", type=int, choices=(0, 1), default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cuda = a.device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            print("deediff: --device cuda: this PyTorch sees no CUDA device", file=sys.stderr)
            return 2
        torch.backends.cudnn.allow_tf32 = bool(a.tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
        torch.backends.cudnn.benchmark = True
    net = fid_inception()
    sd, _ = load_file(a.weights)
    load_weights(net, {k: v for k, v in sd.items()
                       if not k.startswith("fc.") and not k.endswith("num_batches_tracked")})
    x = torch.rand(a.batch, 3, a.size, a.size, generator=torch.Generator().manual_seed(0))
    net, x = net.to(a.device), x.to(a.device)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    times = []
    with torch.no_grad():
        pool3(net, x)  # warm-up (cuDNN's algorithm search on the GPU)
        for _ in range(a.iters):
            sync()
            t0 = time.perf_counter()
            pool3(net, x)
            sync()
            times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    print(json.dumps({"images_per_s": a.batch / t, "seconds_per_batch": t, "batch": a.batch,
                      "threads": a.threads, "torch": torch.__version__, "device": a.device}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
