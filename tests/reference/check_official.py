"""check_official.py: checks uvit_ref.UViT against the official U-ViT code.

The official code (baofff/U-ViT, libs/uvit.py and libs/timm.py) is not part of
this repository. Put a copy in a folder of your own, e.g.

    mkdir -p /tmp/uvit_official/libs && cd /tmp/uvit_official/libs
    # copy uvit.py and timm.py from baofff/U-ViT/libs/ here, touch __init__.py

and run  /usr/bin/python3 tests/reference/check_official.py /tmp/uvit_official

With libs/uvit_t2i.py there too (the text-to-image network), check 1 also
runs on text-to-image configurations: the context goes to the official
forward as `context`, to ours as `context=`.

It needs einops; when einops is missing, a small rearrange() written here
stands in for it (the official file uses only rearrange with plain patterns).

Checks, each with the weights copied by state-dict name (strict, so the names
and shapes must match exactly):
  1. forward and all parameter gradients agree bit for bit in float32 as
     shipped, and to 1e-12 in float64 (the official time embedding always
     returns float32, so ours stands in for it there), for several
     configurations (conditional or not, conv or not, qkv_bias, mlp_time_embed);
  2. structural pruning: the official model with some heads' proj columns and
     some fc2 columns zeroed equals our pruned model with those heads and
     hidden units removed.
"""
import os
import re
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uvit_ref  # noqa: E402


def _parse_side(side):
    """'B (h w) (p1 p2 C)' -> [['B'], ['h', 'w'], ['p1', 'p2', 'C']]"""
    groups = []
    for m in re.finditer(r"\(([^)]*)\)|(\S+)", side):
        groups.append(m.group(1).split() if m.group(1) is not None else [m.group(2)])
    return groups


def rearrange(x, pattern, **sizes):
    """einops.rearrange for patterns made of names and parenthesised groups"""
    left, right = (_parse_side(s) for s in pattern.split("->"))
    sizes = dict(sizes)
    for group, dim in zip(left, x.shape):
        unknown = [a for a in group if a not in sizes]
        known = 1
        for a in group:
            known *= sizes.get(a, 1)
        if len(unknown) > 1:
            raise ValueError("rearrange: cannot infer %s" % unknown)
        if unknown:
            sizes[unknown[0]] = dim // known
    axes = [a for g in left for a in g]
    x = x.reshape([sizes[a] for a in axes])
    order = [axes.index(a) for g in right for a in g]
    x = x.permute(order)
    out_shape = []
    for g in right:
        n = 1
        for a in g:
            n *= sizes[a]
        out_shape.append(n)
    return x.reshape(out_shape)


def import_official(folder):
    try:
        import einops  # noqa: F401
    except ImportError:
        sys.modules["einops"] = types.SimpleNamespace(rearrange=rearrange)
    sys.path.insert(0, folder)
    from libs import uvit as official   # noqa: E402
    return official


def run(model, x, t, y, r, context=None, official_t2i=False):
    model.zero_grad()
    if official_t2i:
        out = model(x, t, context)
    else:
        out = model(x, t, y, None, context) if context is not None else model(x, t, y)
    (out * r).sum().backward()
    return out.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def compare(official_mod, cfg, dtype, tol, gen):
    t2i = cfg.get("clip_dim", 0) > 0
    off = official_mod.UViT(**cfg).to(dtype)
    uvit_ref.randomize_(off, gen)
    ours = uvit_ref.UViT(**cfg).to(dtype)
    ours.load_state_dict(off.state_dict(), strict=True)
    b = 3
    x = torch.randn(b, cfg["in_chans"], cfg["img_size"], cfg["img_size"], generator=gen, dtype=dtype)
    t = torch.tensor([0.37, 412.9, 998.61])
    y = torch.randint(0, cfg["num_classes"], (b,), generator=gen) if cfg.get("num_classes", -1) > 0 else None
    ctx = torch.randn(b, cfg["num_clip_token"], cfg["clip_dim"], generator=gen, dtype=dtype) if t2i else None
    out_o, grads_o = run(off, x, t, y, torch.ones_like(x), ctx, t2i)
    r = torch.randn(out_o.shape, generator=gen, dtype=dtype)
    out_o, grads_o = run(off, x, t, y, r, ctx, t2i)
    out_m, grads_m = run(ours, x, t, y, r, ctx)
    assert grads_o.keys() == grads_m.keys()
    worst = max((rel(grads_m[n], grads_o[n]), n) for n in grads_o)
    err = rel(out_m, out_o)
    ok = err < tol and worst[0] < tol * 10
    print("%-5s %-62s out %.2e  worst grad %.2e (%s)  %s" % (
        str(dtype).replace("torch.", ""), uvit_ref.config_json(cfg)[:62], err, worst[0], worst[1],
        "ok" if ok else "FAIL"))
    return ok


def compare_pruned(official_mod, gen):
    """zeroed heads / hidden units in the official model == removed in ours"""
    cfg = dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=4, num_heads=4,
               mlp_ratio=4, qkv_bias=True, mlp_time_embed=False, num_classes=-1, conv=True)
    dtype = torch.float64
    off = official_mod.UViT(**cfg).to(dtype)
    uvit_ref.randomize_(off, gen)
    keep_heads = {1: [0, 3], 3: [2, 1, 0]}    # block index -> heads kept (any order)
    keep_hidden = {2: list(range(0, 128, 3)), 3: list(range(50))}
    hd = 32 // 4
    full = uvit_ref.finish_config(cfg)
    heads = list(full["block_num_heads"])
    hidden = list(full["block_mlp_hidden"])
    for i, k in keep_heads.items():
        heads[i] = len(k)
    for i, k in keep_hidden.items():
        hidden[i] = len(k)
    pcfg = dict(cfg, block_num_heads=heads, block_mlp_hidden=hidden)
    ours = uvit_ref.UViT(**pcfg).to(dtype)
    state = off.state_dict()
    off_blocks = list(off.in_blocks) + [off.mid_block] + list(off.out_blocks)
    names = ["in_blocks.%d" % i for i in range(2)] + ["mid_block"] + ["out_blocks.%d" % i for i in range(2)]
    with torch.no_grad():
        for i, kept in keep_heads.items():
            blk, pre = off_blocks[i], names[i]
            dropped = [h for h in range(4) if h not in kept]
            for h in dropped:   # the official block ignores these heads' outputs
                blk.attn.proj.weight[:, h * hd:(h + 1) * hd] = 0
            rows = [k * 32 + h * hd + j for k in range(3) for h in kept for j in range(hd)]
            cols = [h * hd + j for h in kept for j in range(hd)]
            state[pre + ".attn.qkv.weight"] = blk.attn.qkv.weight[rows].clone()
            state[pre + ".attn.qkv.bias"] = blk.attn.qkv.bias[rows].clone()
            state[pre + ".attn.proj.weight"] = blk.attn.proj.weight[:, cols].clone()
        for i, kept in keep_hidden.items():
            blk, pre = off_blocks[i], names[i]
            mask = torch.zeros(128, dtype=torch.bool)
            mask[kept] = True
            blk.mlp.fc2.weight[:, ~mask] = 0
            state[pre + ".mlp.fc1.weight"] = blk.mlp.fc1.weight[kept].clone()
            state[pre + ".mlp.fc1.bias"] = blk.mlp.fc1.bias[kept].clone()
            state[pre + ".mlp.fc2.weight"] = blk.mlp.fc2.weight[:, kept].clone()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 8, 8, generator=gen, dtype=dtype)
    t = torch.tensor([5.5, 700.25])
    with torch.no_grad():
        err = rel(ours(x, t), off(x, t))
    ok = err < 1e-12
    print("pruned heads %s, hidden %s: out %.2e  %s" % (heads, hidden, err, "ok" if ok else "FAIL"))
    return ok


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_official.py FOLDER_HOLDING_libs/uvit.py")
    official = import_official(sys.argv[1])
    if official.ATTENTION_MODE != "math":
        print("note: official attention mode is %s" % official.ATTENTION_MODE)
    orig_embedding = official.timestep_embedding
    gen = torch.Generator().manual_seed(1234)
    configs = [
        dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=4, num_heads=4, mlp_ratio=4,
             qkv_bias=False, mlp_time_embed=False, num_classes=-1, conv=True),
        dict(img_size=8, patch_size=4, in_chans=2, embed_dim=24, depth=2, num_heads=3, mlp_ratio=4,
             qkv_bias=True, mlp_time_embed=True, num_classes=5, conv=False),
        dict(img_size=12, patch_size=3, in_chans=4, embed_dim=30, depth=6, num_heads=5, mlp_ratio=2.5,
             qkv_bias=True, mlp_time_embed=True, num_classes=11, conv=True),
        dict(img_size=8, patch_size=2, in_chans=3, embed_dim=21, depth=2, num_heads=3, mlp_ratio=4,
             qkv_bias=False, mlp_time_embed=False, num_classes=-1, conv=False),  # odd D: zero pad
    ]
    ok = True
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        if dtype == torch.float64:
            # the official embedding returns float32 whatever the model's dtype; the
            # float32 run shows ours equals it bit for bit, so lend ours to the float64 run
            official.timestep_embedding = lambda t, dim: uvit_ref.timestep_embedding(t, dim, torch.float64)
        for cfg in configs:
            ok &= compare(official, cfg, dtype, tol, gen)
    ok &= compare_pruned(official, gen)
    official.timestep_embedding = orig_embedding
    if os.path.exists(os.path.join(sys.argv[1], "libs", "uvit_t2i.py")):
        from libs import uvit_t2i   # noqa: E402
        t2i_configs = [
            dict(img_size=8, patch_size=2, in_chans=2, embed_dim=16, depth=2, num_heads=2, mlp_ratio=4,
                 qkv_bias=False, mlp_time_embed=False, conv=True, clip_dim=16, num_clip_token=77),
            dict(img_size=8, patch_size=4, in_chans=4, embed_dim=24, depth=4, num_heads=3, mlp_ratio=2,
                 qkv_bias=True, mlp_time_embed=True, conv=False, clip_dim=10, num_clip_token=5),
        ]
        orig_t2i = uvit_t2i.timestep_embedding
        for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
            if dtype == torch.float64:
                uvit_t2i.timestep_embedding = lambda t, dim: uvit_ref.timestep_embedding(t, dim, torch.float64)
            for cfg in t2i_configs:
                ok &= compare(uvit_t2i, cfg, dtype, tol, gen)
        uvit_t2i.timestep_embedding = orig_t2i
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
