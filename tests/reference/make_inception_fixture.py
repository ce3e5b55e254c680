"""make_inception_fixture.py: the FID Inception-v3 fixture for tests/test_inception.c.

An independent PyTorch implementation of pytorch-fid's FID Inception
(REFERENCE.md section 4): torchvision's Inception-v3 (num_classes 1008,
aux_logits False) with the Mixed blocks replaced by pytorch-fid's patched
ones, written here:
  Mixed_5b/5c/5d  FIDInceptionA    avg_pool(3, 1, 1, count_include_pad=False)
  Mixed_6b..6e    FIDInceptionC    same pool
  Mixed_7b        FIDInceptionE_1  same pool
  Mixed_7c        FIDInceptionE_2  max_pool(3, 1, 1)
and pytorch-fid's input path: bilinear resize to 299x299 (align_corners
False), 2x - 1, the stem with its two max pools, the blocks, then the
adaptive average pool (pool3, 2048 values per image).

The full weights are ~87 MB in F32, too big to commit, so they are not random
draws but a formula that model/inception.c (inception_write_synthetic)
computes identically in C: for element i of tensor `name`,
  u = fmix32(i * 0x9E3779B1 + fnv1a32(name)) / 2^32    (32-bit arithmetic)
  conv.weight     (u - 0.5) * 2 * sqrt(6 / fan_in)
  bn.weight       0.5 + u          bn.running_var   0.5 + u
  bn.bias         0.2 * (u - 0.5)  bn.running_mean  0.2 * (u - 0.5)
in float64, rounded once to float32. The C test writes the weights file with
that formula, loads it, and compares pool3 with the values stored here.

Writes OUT_DIR/inception_io.safetensors (~40 KB):
  images_32     F32 [2,3,32,32]   uniform [0,1) (torch seed 0)
  pool3_32      F32 [2,2048]
  images_64x48  F32 [1,3,64,48]   a non-square size: resize both ways
  pool3_64x48   F32 [1,2048]
and, with --weights, the synthetic weights as OUT_DIR/inception_random.safetensors
(not committed; the C test regenerates them).

Usage: /usr/bin/python3 tests/reference/make_inception_fixture.py tests/fixtures [--weights]
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

M32 = 0xFFFFFFFF


class FIDInceptionA(torchvision.models.inception.InceptionA):
    """InceptionA whose pool branch ignores the zero padding in its average."""

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(torchvision.models.inception.InceptionC):
    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, d, bp], 1)


class FIDInceptionE(torchvision.models.inception.InceptionE):
    """E_1 (average pool without padding counts) or E_2 (max pool)."""

    def __init__(self, in_channels, max_pool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x):
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        if self.max_pool:
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([b1, b3, bd, self.branch_pool(p)], 1)


def fid_inception():
    """pytorch-fid's network, eval mode, weights uninitialised"""
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                          num_classes=1008)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, max_pool=False)
    net.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    return net.eval()


def pool3(net, images):
    """pytorch-fid's InceptionV3 forward up to the final average pool: [N,2048]"""
    x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
        x = getattr(net, name)(x)
    x = F.max_pool2d(x, 3, stride=2)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, stride=2)
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                 "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
        x = getattr(net, name)(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def fnv1a32(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & M32
    return h


def fmix32(h):
    """murmur3's finaliser on a uint64 array holding 32-bit values"""
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    return h ^ (h >> np.uint64(16))


def synthetic_tensor(name, shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    h = fmix32((i * np.uint64(0x9E3779B1) + np.uint64(fnv1a32(name))) & np.uint64(M32))
    u = h.astype(np.float64) / 4294967296.0
    field = ".".join(name.split(".")[-2:])
    if field == "conv.weight":
        fan_in = int(np.prod(shape[1:]))
        v = (u - 0.5) * 2.0 * np.sqrt(6.0 / fan_in)
    elif field in ("bn.weight", "bn.running_var"):
        v = 0.5 + u
    else:
        v = 0.2 * (u - 0.5)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def synthetic_state_dict(net):
    """every conv/BN tensor by the formula; fc and num_batches_tracked left out"""
    sd = {}
    for name, t in net.state_dict().items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        sd[name] = synthetic_tensor(name, tuple(t.shape))
    return sd


def load_weights(net, sd):
    missing, unexpected = net.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.startswith("fc.") and not m.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    torch.set_num_threads(2)
    net = fid_inception()
    sd = synthetic_state_dict(net)
    load_weights(net, sd)
    g = torch.Generator().manual_seed(0)
    images_32 = torch.rand(2, 3, 32, 32, generator=g)
    images_64x48 = torch.rand(1, 3, 64, 48, generator=g)
    with torch.no_grad():
        io = {
            "images_32": images_32,
            "pool3_32": pool3(net, images_32),
            "images_64x48": images_64x48,
            "pool3_64x48": pool3(net, images_64x48),
        }
    save_file(io, os.path.join(out_dir, "inception_io.safetensors"),
              metadata={"weights": "synthetic formula, see make_inception_fixture.py"})
    if "--weights" in sys.argv:
        save_file(sd, os.path.join(out_dir, "inception_random.safetensors"))
    p = io["pool3_32"]
    print(f"pool3_32 mean {p.mean():.4f} std {p.std():.4f} zero fraction {(p == 0).float().mean():.3f}")


if __name__ == "__main__":
    main()
