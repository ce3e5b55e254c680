"""uvit_ref.py: an independent PyTorch U-ViT, the reference our C model is tested against.

Written from REFERENCE.md section 1 (facts of baofff/U-ViT libs/uvit.py and, for
text-to-image, libs/uvit_t2i.py), with the official state-dict names so
checkpoints move between the two unchanged:

  patch_embed.proj            Conv2d(C, D, p, stride p)          -> tokens [B, N, D]
  time_embed.0 / .2           Linear(D,4D), SiLU, Linear(4D,D)    (only if mlp_time_embed)
  label_emb                   Embedding(num_classes, D)           (only if num_classes > 0)
  context_embed               Linear(clip_dim, D)                 (only if clip_dim > 0: text-to-image)
  pos_embed                   [1, extras + N, D]
  in_blocks.i, mid_block, out_blocks.i (+ .skip_linear Linear(2D, D))
  norm, decoder_pred          LayerNorm(D), Linear(D, p*p*C)
  final_layer                 Conv2d(C, C, 3, pad 1)              (only if conv)

Config keys are U-ViT's constructor arguments plus our structural-pruning
extensions block_mlp_hidden and block_num_heads (one entry per block, in the
order in_blocks, mid_block, out_blocks). The text-to-image network takes
clip_dim and num_clip_token (uvit_t2i's names; absent or 0: not text-to-image;
num_clip_token defaults to uvit_t2i's 77 when only clip_dim is given) and no
num_classes. The sequence is [time, patches], [label, time, patches] when
class-conditional, [time, num_clip_token context tokens, patches] for
text-to-image; the extras are dropped before unpatchifying. A pruned block keeps the head size
hd = embed_dim // num_heads, so its qkv is Linear(D, 3*heads*hd) and its proj
Linear(heads*hd, D).

The module works in any float dtype (fixtures are made in float64).
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# U-ViT's constructor defaults (libs/uvit.py)
DEFAULTS = {
    "img_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12,
    "num_heads": 12, "mlp_ratio": 4.0, "qkv_bias": False, "mlp_time_embed": False,
    "num_classes": -1, "conv": True,
}
PRUNING_KEYS = ("block_mlp_hidden", "block_num_heads")
TEXT_KEYS = ("clip_dim", "num_clip_token")
T2I_DEFAULT_TOKENS = 77   # uvit_t2i's default num_clip_token


def finish_config(cfg):
    """a full config dict from a partial one (U-ViT's defaults), validated"""
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    cfg = dict(cfg)
    if cfg.pop("qk_scale", None) is not None:
        raise ValueError("qk_scale: only null is supported")
    cfg.pop("use_checkpoint", None)
    if not cfg.pop("skip", True):
        raise ValueError("skip: only true is supported")
    unknown = set(cfg) - set(DEFAULTS) - set(PRUNING_KEYS) - set(TEXT_KEYS)
    if unknown:
        raise ValueError("%s: unknown key" % sorted(unknown)[0])
    full = dict(DEFAULTS, clip_dim=0, num_clip_token=0)
    if cfg.get("clip_dim", 0) > 0 and "num_clip_token" not in cfg:
        full["num_clip_token"] = T2I_DEFAULT_TOKENS
    full.update(cfg)
    if (full["clip_dim"] > 0) != (full["num_clip_token"] > 0):
        raise ValueError("clip_dim, num_clip_token: a text-to-image model needs both, any other neither")
    if full["clip_dim"] > 0 and full["num_classes"] != -1:
        raise ValueError("num_classes: the text-to-image U-ViT has no class labels")
    d, heads, depth = full["embed_dim"], full["num_heads"], full["depth"]
    if d % heads or depth % 2 or full["img_size"] % full["patch_size"]:
        raise ValueError("embed_dim, depth, img_size: need num_heads | embed_dim, 2 | depth, patch_size | img_size")
    nblocks = depth + 1
    defaults = {"block_mlp_hidden": int(d * full["mlp_ratio"]), "block_num_heads": heads}
    for key in PRUNING_KEYS:
        if key not in full:
            full[key] = [defaults[key]] * nblocks
        if len(full[key]) != nblocks or any(int(v) < 1 for v in full[key]):
            raise ValueError("%s: needs %d positive entries" % (key, nblocks))
        full[key] = [int(v) for v in full[key]]
    return full


def config_json(cfg):
    """the JSON that travels in __metadata__["config"]: constructor keys, plus
    the per-block arrays only when they differ from the defaults"""
    full = finish_config(cfg)
    out = {k: full[k] for k in DEFAULTS}
    out["mlp_ratio"] = float(out["mlp_ratio"])
    if full["clip_dim"] > 0:
        out.update({k: full[k] for k in TEXT_KEYS})
    nblocks = full["depth"] + 1
    if full["block_mlp_hidden"] != [int(full["embed_dim"] * full["mlp_ratio"])] * nblocks:
        out["block_mlp_hidden"] = full["block_mlp_hidden"]
    if full["block_num_heads"] != [full["num_heads"]] * nblocks:
        out["block_num_heads"] = full["block_num_heads"]
    return json.dumps(out, separators=(",", ":"))


def timestep_embedding(t, dim, dtype):
    """[B] (fractional) timesteps -> [B, dim]: [cos(t*f), sin(t*f)] (cos first),
    f_i = exp(-ln(10000) * i / half). As in U-ViT, f and the products t*f are
    float32 (rounded); cos and sin are then taken in `dtype`."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float()[:, None] * freqs[None, :]).to(dtype)    # [B, half]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def unpatchify(tokens, channels, patch):
    """[B, N, p*p*C] with per-token layout (p1 p2 C) -> [B, C, H, W]"""
    b, n, _ = tokens.shape
    g = int(round(math.sqrt(n)))
    x = tokens.reshape(b, g, g, patch, patch, channels)   # B h w p1 p2 C
    x = x.permute(0, 5, 1, 3, 2, 4)                        # B C h p1 w p2
    return x.reshape(b, channels, g * patch, g * patch)


class Attention(nn.Module):
    """multi-head self-attention; qkv columns are laid out (K=3, H, hd).
    With Attention.fused set (the GPU peer of deediff bench, torch >= 2), the
    core is F.scaled_dot_product_attention, as the official code's "flash"
    mode; otherwise the explicit softmax (fixtures: float64, any torch)."""

    fused = False

    def __init__(self, dim, heads, head_dim, qkv_bias):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x):
        b, n, _ = x.shape                                             # x is (B, T, D)
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                          # each (B, H, T, hd)
        if Attention.fused:
            mixed = F.scaled_dot_product_attention(q, k, v)           # (B, H, T, hd)
        else:
            scores = (q @ k.transpose(-1, -2)) * self.head_dim ** -0.5    # (B, H, T, T)
            mixed = scores.softmax(dim=-1) @ v                            # (B, H, T, hd)
        return self.proj(mixed.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))   # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, dim, heads, head_dim, mlp_hidden, qkv_bias, skip):
        super().__init__()
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads, head_dim, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x, skip=None):
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class UViT(nn.Module):
    def __init__(self, **cfg):
        super().__init__()
        c = finish_config(cfg)
        self.cfg = c
        d, p, ch = c["embed_dim"], c["patch_size"], c["in_chans"]
        self.embed_dim, self.patch, self.in_chans = d, p, ch
        self.num_classes = c["num_classes"]
        self.clip_dim, self.num_clip_token = c["clip_dim"], c["num_clip_token"]
        if self.clip_dim > 0:
            self.extras = 1 + self.num_clip_token
        else:
            self.extras = 2 if self.num_classes > 0 else 1
        num_patches = (c["img_size"] // p) ** 2
        head_dim = d // c["num_heads"]
        half = c["depth"] // 2

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(ch, d, kernel_size=p, stride=p)
        if c["mlp_time_embed"]:
            self.time_embed = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))
        else:
            self.time_embed = nn.Identity()
        if self.num_classes > 0:
            self.label_emb = nn.Embedding(self.num_classes, d)
        if self.clip_dim > 0:
            self.context_embed = nn.Linear(self.clip_dim, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + num_patches, d))

        def block(i, skip):
            return Block(d, c["block_num_heads"][i], head_dim, c["block_mlp_hidden"][i],
                         c["qkv_bias"], skip)
        self.in_blocks = nn.ModuleList([block(i, False) for i in range(half)])
        self.mid_block = block(half, False)
        self.out_blocks = nn.ModuleList([block(half + 1 + i, True) for i in range(half)])
        self.norm = nn.LayerNorm(d, eps=1e-5)
        self.decoder_pred = nn.Linear(d, p * p * ch)
        self.final_layer = nn.Conv2d(ch, ch, 3, padding=1) if c["conv"] else nn.Identity()

    def blocks(self):
        """all blocks in execution order: in, mid, out"""
        return list(self.in_blocks) + [self.mid_block] + list(self.out_blocks)

    def forward(self, x, t, y=None, hiddens=None, context=None):
        """x [B,C,H,W], t [B] (what the network sees, e.g. t*999), y [B] or None,
        context [B, num_clip_token, clip_dim] (text-to-image) or None; when
        hiddens is a list, the hidden state (B, T, D) after every block is
        appended to it"""
        dtype = self.pos_embed.dtype
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)        # (B, N, D)
        time = self.time_embed(timestep_embedding(t, self.embed_dim, dtype))  # (B, D)
        extras = [time[:, None, :]]
        if self.num_classes > 0:
            extras.insert(0, self.label_emb(y)[:, None, :])                  # label first
        if self.clip_dim > 0:
            extras.append(self.context_embed(context))                       # (B, L, D) after time
        h = torch.cat(extras + [tokens], dim=1) + self.pos_embed             # (B, T, D)
        skips = []
        for blk in self.in_blocks:
            h = blk(h)
            skips.append(h)
            if hiddens is not None:
                hiddens.append(h)
        h = self.mid_block(h)
        if hiddens is not None:
            hiddens.append(h)
        for blk in self.out_blocks:
            h = blk(h, skips.pop())
            if hiddens is not None:
                hiddens.append(h)
        h = self.decoder_pred(self.norm(h))[:, self.extras:, :]              # (B, N, p*p*C)
        return self.final_layer(unpatchify(h, self.in_chans, self.patch))


def randomize_(model, gen):
    """test weights: every parameter random, biases and LayerNorm included,
    scaled so activations stay O(1): Linear/Conv weights N(0, 1/fan_in),
    LayerNorm weights 1 + N(0, 0.2^2), label embeddings N(0, 1), the rest
    (biases, pos_embed) N(0, 0.3^2)"""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
            leaf = name.rsplit(".", 1)[0]
            if isinstance(model.get_submodule(leaf) if "." in name else None, nn.LayerNorm):
                p.copy_(1 + 0.2 * noise if name.endswith("weight") else 0.3 * noise)
            elif name == "label_emb.weight":
                p.copy_(noise)
            elif p.dim() >= 2 and name != "pos_embed":
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                p.copy_(0.3 * noise)


def from_config(cfg):
    """a UViT from a config dict or JSON string"""
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    return UViT(**cfg)
