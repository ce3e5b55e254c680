"""bench_autoencoder.py: PyTorch's speed on the KL autoencoder, the peer of `deediff bench`'s autoencoder section.

Loads the weights file `deediff bench` wrote (Stable Diffusion's configuration
in its metadata, random weights) into autoencoder_ref.AutoencoderKL (checked
equal to U-ViT's libs/autoencoder.py to 4e-15 by check_autoencoder_official.py),
runs encode_moments on random images in [-1,1] and decode on random latents
(fp32, eval, no_grad; median of --iters after a warm-up) and prints one line:
  {"encode_images_per_s": ..., "decode_images_per_s": ..., "batch": ..., "threads": ..., "torch": "..."}

Usage: /usr/bin/python3 tests/reference/bench_autoencoder.py --weights W.safetensors
           [--batch 2] [--size 64] [--threads 2] [--iters 3]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autoencoder_ref import AutoencoderKL  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def median_seconds(fn, iters):
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sd, meta = load_file(a.weights)
    model = AutoencoderKL(json.loads(meta["config"])).eval()
    model.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()}, strict=True)
    c = model.cfg
    f = 2 ** (len(c["ch_mult"]) - 1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, c["in_channels"], a.size, a.size, generator=g) * 2 - 1
    z = torch.randn(a.batch, c["embed_dim"], a.size // f, a.size // f, generator=g)
    with torch.no_grad():
        te = median_seconds(lambda: model.encode_moments(x), a.iters)
        td = median_seconds(lambda: model.decode(z), a.iters)
    print(json.dumps({"encode_images_per_s": a.batch / te, "decode_images_per_s": a.batch / td, "batch": a.batch,
                      "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
