"""convert_inception.py: pytorch-fid's FID Inception weights (.pth) -> safetensors for deediff.

pytorch-fid downloads pt_inception-2015-12-05-6726825d.pth (a state dict with
torchvision names: Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_var,
..., fc.weight, fc.bias). This writes every tensor unchanged (same names, same
values, F32; num_batches_tracked as I64) to a safetensors file that
`deediff features --inception` reads; deediff ignores fc.* and
num_batches_tracked.

Usage:
  wget https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  /usr/bin/python3 tests/reference/convert_inception.py pt_inception-2015-12-05-6726825d.pth pt_inception.safetensors
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    sd = torch.load(src, map_location="cpu")
    if not isinstance(sd, dict) or "Conv2d_1a_3x3.conv.weight" not in sd:
        sys.exit(f"{src}: not pytorch-fid's Inception state dict (no 'Conv2d_1a_3x3.conv.weight')")
    tensors = {}
    for name, t in sd.items():
        if not torch.is_tensor(t):
            sys.exit(f"{src}: entry '{name}' is not a tensor")
        t = t.detach().contiguous()
        tensors[name] = t if t.dtype in (torch.int64, torch.int32) else t.to(torch.float32)
    save_file(tensors, dst, metadata={"source": os.path.basename(src)})
    print(f"{dst}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
