"""check_autoencoder_official.py: autoencoder_ref.py against U-ViT's own libs/autoencoder.py.

    /usr/bin/python3 tests/reference/check_autoencoder_official.py /path/to/autoencoder.py

Loads the official module from the given file (not part of this repository;
einops is stubbed when missing: only LinearAttention uses it), copies random
weights into it by state-dict name (strict: the same names and shapes), and
compares encode_moments and decode (and their input gradients) with ours in
float64 on three configurations: Stable Diffusion's at 64x64, and two small
ones with attention inside the levels. Prints the worst relative error and
exits 1 above 1e-12.
"""
import importlib.util
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import autoencoder_ref  # noqa: E402

CONFIGS = [
    (dict(autoencoder_ref.SD_CONFIG), 64),
    (dict(z_channels=4, resolution=16, in_channels=3, out_ch=2, ch=32, ch_mult=[1, 2], num_res_blocks=1,
          attn_resolutions=[16, 8], embed_dim=3), 16),
    (dict(z_channels=2, resolution=32, in_channels=1, out_ch=1, ch=32, ch_mult=[1, 1, 2], num_res_blocks=2,
          attn_resolutions=[8], embed_dim=2, scale_factor=0.5), 32),
]


def load_official(path):
    if "einops" not in sys.modules:
        try:
            import einops  # noqa: F401
        except ImportError:
            sys.modules["einops"] = types.SimpleNamespace(rearrange=None)
    spec = importlib.util.spec_from_file_location("official_autoencoder", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Official(torch.nn.Module):
    """FrozenAutoencoderKL's modules without its checkpoint loading"""

    def __init__(self, mod, cfg):
        super().__init__()
        dd = {k: v for k, v in cfg.items() if k not in ("embed_dim", "scale_factor", "num_groups")}
        self.encoder = mod.Encoder(**dd)
        self.decoder = mod.Decoder(**dd)
        self.quant_conv = torch.nn.Conv2d(2 * cfg["z_channels"], 2 * cfg["embed_dim"], 1)
        self.post_quant_conv = torch.nn.Conv2d(cfg["embed_dim"], cfg["z_channels"], 1)
        self.scale_factor = cfg["scale_factor"]

    def encode_moments(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder(self.post_quant_conv((1.0 / self.scale_factor) * z))


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    mod = load_official(sys.argv[1])
    gen = torch.Generator().manual_seed(3)
    worst = 0.0
    for cfg, side in CONFIGS:
        cfg = autoencoder_ref.finish_config(cfg)
        ours = autoencoder_ref.AutoencoderKL(cfg)
        autoencoder_ref.randomize_(ours, gen)
        theirs = Official(mod, cfg)
        theirs.load_state_dict(ours.state_dict(), strict=True)
        ours, theirs = ours.double(), theirs.double()
        f = 2 ** (len(cfg["ch_mult"]) - 1)
        for fn, shape in (("encode_moments", (2, cfg["in_channels"], side, side)),
                          ("decode", (2, cfg["embed_dim"], side // f, side // f))):
            x = torch.randn(shape, generator=gen, dtype=torch.float64)
            outs, grads = [], []
            for model in (ours, theirs):
                xi = x.clone().requires_grad_(True)
                y = getattr(model, fn)(xi)
                y.square().sum().backward()
                outs.append(y.detach())
                grads.append(xi.grad)
            e = max(rel(outs[0], outs[1]), rel(grads[0], grads[1]))
            print("%-16s %s side %d: relative error %.3g" % (fn, cfg["ch_mult"], side, e))
            worst = max(worst, e)
    print("worst %.3g" % worst)
    sys.exit(0 if worst < 1e-12 else 1)


if __name__ == "__main__":
    main()
