"""bench_inception.py: PyTorch's speed on the FID Inception, the peer of `deediff bench-inception`.

Runs the network of make_inception_fixture.py (torchvision Inception-v3 with
pytorch-fid's blocks, fp32, eval, no_grad) on batches of 32x32 images resized
to 299x299, and prints one JSON line:
  {"images_per_s": ..., "seconds_per_batch": ..., "batch": ..., "threads": ..., "torch": "..."}

Usage: /usr/bin/python3 tests/reference/bench_inception.py --weights W.safetensors
           [--batch 32] [--threads 2] [--iters 3]
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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net = fid_inception()
    sd, _ = load_file(a.weights)
    load_weights(net, {k: v for k, v in sd.items()
                       if not k.startswith("fc.") and not k.endswith("num_batches_tracked")})
    x = torch.rand(a.batch, 3, a.size, a.size, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.no_grad():
        pool3(net, x)  # warm-up
        for _ in range(a.iters):
            t0 = time.perf_counter()
            pool3(net, x)
            times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    print(json.dumps({"images_per_s": a.batch / t, "seconds_per_batch": t, "batch": a.batch,
                      "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
