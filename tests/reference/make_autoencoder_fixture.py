"""make_autoencoder_fixture.py: the golden KL-autoencoder fixture that tests/test_autoencoder_golden.c checks.

    /usr/bin/python3 tests/reference/make_autoencoder_fixture.py tests/fixtures     (or: make fixtures)

Writes, for a small configuration of autoencoder_ref.py (two levels with
attention in the second, GroupNorm of 4 groups, embed_dim 3 != z_channels 4,
out_ch 2 != in_channels 3, so no two sizes are confused):
  autoencoder_small.model.safetensors  every parameter (official names, F32),
                                       __metadata__ {"config": <JSON>}
  autoencoder_small.io.safetensors     x [2,3,16,16] in [-1,1), moments [2,6,8,8],
                                       z [2,3,8,8] (a latent times scale_factor),
                                       images [2,2,16,16]; r_moments, r_images (the
                                       weights of the losses below), grad.x, grad.z
                                       and grad.<param> for every parameter
where L_enc = sum(moments * r_moments) gives the encoder's (and quant_conv's)
gradients and grad.x, and L_dec = sum(images * r_images) the decoder's (and
post_quant_conv's) and grad.z.

Weights are random everywhere (GroupNorms too), drawn in float32; the network
then runs in float64, so both sides see the same weights while the expected
values carry float64 accuracy. Seeded: rerunning gives the same bytes.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import autoencoder_ref  # noqa: E402
import safetensors_io  # noqa: E402

CONFIG = dict(z_channels=4, resolution=16, in_channels=3, out_ch=2, ch=8, ch_mult=[1, 2], num_res_blocks=1,
              attn_resolutions=[8], embed_dim=3, num_groups=4)
BATCH = 2


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(2024)
    model = autoencoder_ref.AutoencoderKL(CONFIG)
    autoencoder_ref.randomize_(model, gen)
    model64 = autoencoder_ref.AutoencoderKL(CONFIG).double()
    model64.load_state_dict(model.state_dict())
    c = model.cfg
    f = 2 ** (len(c["ch_mult"]) - 1)
    side = c["resolution"]

    x = torch.rand(BATCH, c["in_channels"], side, side, generator=gen) * 2 - 1
    z = torch.randn(BATCH, c["embed_dim"], side // f, side // f, generator=gen) * c["scale_factor"]
    r_moments = torch.randn(BATCH, 2 * c["embed_dim"], side // f, side // f, generator=gen)
    r_images = torch.randn(BATCH, c["out_ch"], side, side, generator=gen)

    x64 = x.double().requires_grad_(True)
    z64 = z.double().requires_grad_(True)
    moments = model64.encode_moments(x64)
    images = model64.decode(z64)
    ((moments * r_moments.double()).sum() + (images * r_images.double()).sum()).backward()

    params = {n: p.detach().float() for n, p in model.named_parameters()}
    io = {"x": x, "z": z, "moments": moments.detach().float(), "images": images.detach().float(),
          "r_moments": r_moments, "r_images": r_images, "grad.x": x64.grad.float(), "grad.z": z64.grad.float()}
    for n, p in model64.named_parameters():
        io["grad." + n] = p.grad.float()
    base = os.path.join(outdir, "autoencoder_small")
    safetensors_io.save_file(params, base + ".model.safetensors", {"config": autoencoder_ref.config_json(CONFIG)})
    safetensors_io.save_file(io, base + ".io.safetensors")
    for suffix in (".model.safetensors", ".io.safetensors"):
        print("%s%s: %d bytes" % (base, suffix, os.path.getsize(base + suffix)))


if __name__ == "__main__":
    main()
