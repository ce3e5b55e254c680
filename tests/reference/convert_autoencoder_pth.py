"""convert_autoencoder_pth.py: U-ViT's KL autoencoder checkpoint (.pth) <-> our .safetensors.

    convert_autoencoder_pth.py autoencoder_kl.pth autoencoder_kl.safetensors [--config JSON]
    convert_autoencoder_pth.py IN.safetensors OUT.pth [--config JSON]
    convert_autoencoder_pth.py --write-random OUT.pth --config JSON [--seed N] [--io IO.safetensors]

.pth -> .safetensors: U-ViT's assets/stable-diffusion/autoencoder_kl.pth is a
plain state dict of FrozenAutoencoderKL (encoder.*, decoder.*, quant_conv.*,
post_quant_conv.*); a leading 'module.' is stripped and a {"state_dict": ...}
wrapper opened. Every tensor is written as F32 with __metadata__ {"config":
JSON}, the configuration being Stable Diffusion's (libs/autoencoder.py's
get_model: ch 128, ch_mult [1,2,4,4], num_res_blocks 2, z_channels 4,
embed_dim 4, resolution 256, double_z, attn_resolutions [], scale_factor
0.18215) unless --config gives another (keys: autoencoder_ref.py).
.safetensors -> .pth: a plain state dict that FrozenAutoencoderKL loads
strictly; the configuration comes from the file's metadata unless --config.
Either way every name and shape is checked against the configuration first.

--write-random: a .pth of autoencoder_ref.py's model with random weights
(randomize_, seeded), as a test checkpoint; with --io, also x, moments, z
and images of it (float64 run, stored F32) for the C model to match.

Bad input prints one line "deediff: <file>: <field>: <what>" and exits 2;
outputs are written atomically (temporary file, fsync, rename) or not at all.
"""
import argparse
import collections
import io
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import autoencoder_ref  # noqa: E402
import safetensors_io  # noqa: E402
from convert_uvit_pth import BadInput, check_state, load_pth, safetensors_to_pth_of  # noqa: E402


def parse_config(text, source):
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    try:
        cfg = json.loads(text)
        if not isinstance(cfg, dict):
            raise ValueError("config: not a JSON object")
        return autoencoder_ref.finish_config(cfg)
    except ValueError as e:
        raise BadInput("%s: %s" % (source, e))


def expected_shapes(cfg):
    return {n: tuple(p.shape) for n, p in autoencoder_ref.AutoencoderKL(cfg).state_dict().items()}


def pth_to_safetensors(src, dst, cfg):
    state = load_pth(src)
    check_state(state, expected_shapes(cfg), src)
    tensors = {n: v.detach().to(torch.float32).contiguous() for n, v in state.items()}
    safetensors_io.save_file(tensors, dst, {"config": autoencoder_ref.config_json(cfg), "source": os.path.basename(src)})


def safetensors_to_pth(src, dst, cfg=None):
    return safetensors_to_pth_of(src, dst, cfg, parse_config, expected_shapes)


def write_random(dst, cfg, seed, io_path):
    gen = torch.Generator().manual_seed(seed)
    model = autoencoder_ref.AutoencoderKL(cfg)
    autoencoder_ref.randomize_(model, gen)
    buf = io.BytesIO()
    torch.save(collections.OrderedDict(model.state_dict()), buf)
    safetensors_io.write_atomic(dst, buf.getvalue())
    if not io_path:
        return
    c = model.cfg
    side, f = c["resolution"], 2 ** (len(c["ch_mult"]) - 1)
    x = torch.rand(2, c["in_channels"], side, side, generator=gen) * 2 - 1
    z = torch.randn(2, c["embed_dim"], side // f, side // f, generator=gen) * c["scale_factor"]
    model64 = model.double()
    with torch.no_grad():
        moments, images = model64.encode_moments(x.double()), model64.decode(z.double())
    safetensors_io.save_file({"x": x, "z": z, "moments": moments.float(), "images": images.float()}, io_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--config", help="configuration JSON (or @file); default Stable Diffusion's")
    ap.add_argument("--write-random", metavar="OUT.pth", help="write a random-weight test checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--io", metavar="IO.safetensors", help="with --write-random: x, moments, z, images")
    args = ap.parse_args()
    try:
        cfg = parse_config(args.config, "--config") if args.config else None
        if args.write_random:
            write_random(args.write_random, cfg or autoencoder_ref.finish_config(autoencoder_ref.SD_CONFIG),
                         args.seed, args.io)
            print("wrote %s" % args.write_random)
            return 0
        if not args.input or not args.output:
            ap.error("IN and OUT are required")
        if args.input.endswith(".safetensors"):
            safetensors_to_pth(args.input, args.output, cfg)
        else:
            cfg = cfg or autoencoder_ref.finish_config(autoencoder_ref.SD_CONFIG)
            pth_to_safetensors(args.input, args.output, cfg)
    except (BadInput, OSError) as e:
        msg = str(e) if isinstance(e, BadInput) else "%s: file: %s" % (e.filename, e.strerror)
        print("deediff: %s" % msg, file=sys.stderr)
        return 2
    print("wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
