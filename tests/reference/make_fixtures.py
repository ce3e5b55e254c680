"""make_fixtures.py: writes the golden U-ViT fixtures that tests/test_uvit_golden.c checks.

    /usr/bin/python3 tests/reference/make_fixtures.py tests/fixtures     (or: make fixtures)

For each configuration below it writes
  uvit_<name>.model.safetensors  every parameter (official names, F32) and
                                 __metadata__ {"config": <constructor JSON>}
  uvit_<name>.io.safetensors     x [B,C,H,W], t [B], y [B] (I64, conditional only),
                                 context [B,L,clip_dim] (text-to-image only),
                                 r [B,C,H,W], out [B,C,H,W], hidden.<i> [B,T,D]
                                 (after block i), grad.<param> for every parameter
where L = sum(out * r), so grad.<param> = dL/dparam and dL/dout = r.

The weights are drawn in float32 and the network then runs in float64, so the
C side (float32) and this reference see identical weights and inputs while
the expected values carry float64 accuracy. Everything is seeded: running the
script twice gives the same bytes.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import uvit_ref  # noqa: E402

BATCH = 3
TIMESTEPS = [13.7, 517.33, 986.05]   # fractional, spread over 0..999

CONFIGS = {
    # unconditional, final conv, no qkv bias, no time MLP; structurally pruned:
    # in_blocks.1 keeps 2 of 4 heads, mid_block 50 of 128 hidden units,
    # out_blocks.1 keeps 1 head and 96 hidden units
    "uncond_conv": dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=4,
                        num_heads=4, mlp_ratio=4.0, qkv_bias=False, mlp_time_embed=False,
                        num_classes=-1, conv=True,
                        block_num_heads=[4, 2, 4, 4, 1],
                        block_mlp_hidden=[128, 128, 50, 128, 96]),
    # class-conditional (label token first), time MLP, qkv bias, no final conv
    "cond_mlp": dict(img_size=8, patch_size=4, in_chans=2, embed_dim=24, depth=2,
                     num_heads=3, mlp_ratio=4.0, qkv_bias=True, mlp_time_embed=True,
                     num_classes=5, conv=False),
    # text-to-image (libs/uvit_t2i.py): [time, 77 context tokens, patches], context_embed
    # Linear(16, D) over U-ViT's 77 CLIP tokens (clip_dim 16 instead of 768), final conv
    "t2i": dict(img_size=8, patch_size=2, in_chans=2, embed_dim=16, depth=2,
                num_heads=2, mlp_ratio=4.0, qkv_bias=False, mlp_time_embed=False,
                conv=True, clip_dim=16, num_clip_token=77),
}


def rel_l2(a, b):
    return ((a - b).norm() / b.norm()).item()


def make(name, cfg, outdir, seed):
    gen = torch.Generator().manual_seed(seed)
    model = uvit_ref.UViT(**cfg)                 # float32 weights ...
    uvit_ref.randomize_(model, gen)
    model64 = uvit_ref.UViT(**cfg).double()      # ... run in float64
    model64.load_state_dict(model.state_dict())

    c = model.cfg
    x = torch.randn(BATCH, c["in_chans"], c["img_size"], c["img_size"], generator=gen)
    t = torch.tensor(TIMESTEPS, dtype=torch.float32)
    y = context = None
    if c["num_classes"] > 0:
        # the last class, the first, one between: edge rows of label_emb
        y = torch.tensor([c["num_classes"] - 1, 0, 2], dtype=torch.int64)
    if c["clip_dim"] > 0:
        context = torch.randn(BATCH, c["num_clip_token"], c["clip_dim"], generator=gen)
    r = torch.randn(x.shape, generator=gen)     # out has x's shape

    hiddens = []
    out = model64(x.double(), t, y, hiddens, None if context is None else context.double())
    (out * r.double()).sum().backward()

    params = {n: p.detach().float() for n, p in model.named_parameters()}
    io = {"x": x, "t": t, "r": r, "out": out.detach().float()}
    if y is not None:
        io["y"] = y
    if context is not None:
        io["context"] = context
    for i, h in enumerate(hiddens):
        io["hidden.%d" % i] = h.detach().float()
    for n, p in model64.named_parameters():
        io["grad." + n] = p.grad.float()
    meta = {"config": uvit_ref.config_json(cfg)}
    base = os.path.join(outdir, "uvit_%s" % name)
    safetensors_io.save_file(params, base + ".model.safetensors", meta)
    safetensors_io.save_file(io, base + ".io.safetensors",
                             dict(meta, loss="L = sum(out * r)", made_by="tests/reference/make_fixtures.py"))

    # what a float32 implementation can reach: this same network in float32
    model.zero_grad()
    out32 = model(x, t, y, None, context)
    (out32 * r).sum().backward()
    worst = max(rel_l2(p.grad.double(), model64.get_parameter(n).grad) for n, p in model.named_parameters())
    sizes = [os.path.getsize(base + s) for s in (".model.safetensors", ".io.safetensors")]
    print("%s: %d parameters, |out| rms %.3f, float32 vs float64: out %.1e, worst grad %.1e; "
          "files %d + %d bytes" % (name, sum(p.numel() for p in params.values()),
                                   out.pow(2).mean().sqrt().item(), rel_l2(out32.double(), out.detach()),
                                   worst, sizes[0], sizes[1]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)   # same reduction order every run
    for seed, (name, cfg) in enumerate(CONFIGS.items()):
        make(name, cfg, outdir, 1000 + seed)


if __name__ == "__main__":
    main()
