"""autoencoder_ref.py: the KL autoencoder of U-ViT's latent models (Stable Diffusion's KL-f8), in PyTorch.

Written for this project from the facts of baofff/U-ViT libs/autoencoder.py
(FrozenAutoencoderKL with Encoder, Decoder, ResnetBlock, AttnBlock,
Downsample, Upsample; read, not copied), so that the C model
(model/autoencoder.h) can be checked against an independent implementation:
  - GroupNorm(num_groups, C, eps 1e-6, affine), SiLU = x * sigmoid(x);
  - ResnetBlock: norm1, SiLU, conv1 (3x3), norm2, SiLU, conv2 (3x3), and
    x through nin_shortcut (1x1) when the channel count changes, then summed;
  - AttnBlock: norm; q, k, v, proj_out are 1x1 convs; one head over the H*W
    positions, weights softmax(q.k / sqrt(C)); x + proj_out(attended v);
  - Downsample: zero pad (left 0, right 1, top 0, bottom 1), 3x3 conv stride 2;
  - Upsample: nearest 2x, 3x3 conv;
  - encoder: conv_in; per level num_res_blocks blocks (an AttnBlock after each
    when the level's side is in attn_resolutions), downsample but at the last;
    mid block_1, attn_1, block_2; norm_out, SiLU, conv_out -> 2 z_channels;
    quant_conv (1x1) -> 2 embed_dim moments;
  - decoder: z / scale_factor, post_quant_conv (1x1) -> z_channels; conv_in;
    mid; levels from the last to 0 with num_res_blocks + 1 blocks each and an
    upsample but at level 0 (held as decoder.up.<level>); norm_out, SiLU,
    conv_out -> out_ch.
State-dict names are the official ones. `num_groups` (32 in the official
code) is this project's extension, so that test models stay small.

    cfg = finish_config({...})          # validated, defaults filled
    model = AutoencoderKL(cfg)
    moments = model.encode_moments(x)   # x [B,in,H,W] in [-1,1]
    images = model.decode(z)            # z [B,embed_dim,h,w], already times scale_factor
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

REQUIRED = ("z_channels", "resolution", "in_channels", "out_ch", "ch", "ch_mult", "num_res_blocks",
            "embed_dim")
DEFAULTS = {"double_z": True, "attn_resolutions": [], "dropout": 0.0, "scale_factor": 0.18215,
            "num_groups": 32}
SD_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
             "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
             "dropout": 0.0, "embed_dim": 4, "scale_factor": 0.18215, "num_groups": 32}


def finish_config(cfg):
    """a copy of cfg with defaults filled in; ValueError naming the key when invalid"""
    for key in cfg:
        if key not in REQUIRED and key not in DEFAULTS:
            raise ValueError("config: unknown key '%s'" % key)
    for key in REQUIRED:
        if key not in cfg:
            raise ValueError("config: missing key '%s'" % key)
    out = dict(DEFAULTS)
    out.update(cfg)
    for key in ("z_channels", "resolution", "in_channels", "out_ch", "ch", "num_res_blocks", "embed_dim",
                "num_groups"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise ValueError("config: '%s' must be a positive integer" % key)
    for key in ("ch_mult", "attn_resolutions"):
        v = out[key]
        if not isinstance(v, (list, tuple)) or not all(isinstance(e, int) and e >= 1 for e in v):
            raise ValueError("config: '%s' must be a list of positive integers" % key)
        out[key] = list(v)
    if not 1 <= len(out["ch_mult"]) <= 8:
        raise ValueError("config: 'ch_mult' must have 1..8 entries")
    if out["double_z"] is not True:
        raise ValueError("config: 'double_z' must be true")
    if out["dropout"] != 0:
        raise ValueError("config: 'dropout' must be 0")
    if out["ch"] % out["num_groups"]:
        raise ValueError("config: 'ch' %d is not a multiple of num_groups %d" % (out["ch"], out["num_groups"]))
    if out["resolution"] % 2 ** (len(out["ch_mult"]) - 1):
        raise ValueError("config: 'resolution' is not a multiple of the downsampling factor")
    if not out["scale_factor"] > 0:
        raise ValueError("config: 'scale_factor' must be positive")
    return out


def config_json(cfg):
    return json.dumps(finish_config(cfg), separators=(",", ":"))


def _norm(cfg, c):
    return nn.GroupNorm(cfg["num_groups"], c, eps=1e-6, affine=True)


def _conv(cin, cout, k):
    return nn.Conv2d(cin, cout, k, stride=1, padding=k // 2)


class ResnetBlock(nn.Module):
    def __init__(self, cfg, cin, cout):
        super().__init__()
        self.norm1 = _norm(cfg, cin)
        self.conv1 = _conv(cin, cout, 3)
        self.norm2 = _norm(cfg, cout)
        self.conv2 = _conv(cout, cout, 3)
        if cin != cout:
            self.nin_shortcut = _conv(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    def __init__(self, cfg, c):
        super().__init__()
        self.norm = _norm(cfg, c)
        self.q, self.k, self.v, self.proj_out = (_conv(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        # tokens [B, N, C]
        q, k, v = (f(n).flatten(2).transpose(1, 2) for f in (self.q, self.k, self.v))
        weights = torch.softmax(q @ k.transpose(1, 2) / c ** 0.5, dim=-1)   # [B, N(query), N(key)]
        out = (weights @ v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = _conv(c, c, 3)

    def forward(self, x):
        return self.conv(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


class Level(nn.Module):
    """one resolution: `block` (ResnetBlocks), `attn` (possibly empty), and a resampler"""

    def __init__(self, cfg, cin, cout, nblocks, with_attn):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(nblocks):
            self.block.append(ResnetBlock(cfg, cin, cout))
            cin = cout
            if with_attn:
                self.attn.append(AttnBlock(cfg, cout))

    def run_blocks(self, h):
        for j, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[j](h)
        return h


class Mid(nn.Module):
    def __init__(self, cfg, c):
        super().__init__()
        self.block_1 = ResnetBlock(cfg, c, c)
        self.attn_1 = AttnBlock(cfg, c)
        self.block_2 = ResnetBlock(cfg, c, c)

    def forward(self, h):
        return self.block_2(self.attn_1(self.block_1(h)))


def _has_attn(cfg, level):
    return cfg["resolution"] // 2 ** level in cfg["attn_resolutions"]


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, mult, levels = cfg["ch"], cfg["ch_mult"], len(cfg["ch_mult"])
        self.conv_in = _conv(cfg["in_channels"], ch, 3)
        self.down = nn.ModuleList()
        cin = ch
        for i in range(levels):
            level = Level(cfg, cin, ch * mult[i], cfg["num_res_blocks"], _has_attn(cfg, i))
            cin = ch * mult[i]
            if i != levels - 1:
                level.downsample = Downsample(cin)
            self.down.append(level)
        self.mid = Mid(cfg, cin)
        self.norm_out = _norm(cfg, cin)
        self.conv_out = _conv(cin, 2 * cfg["z_channels"], 3)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level.run_blocks(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, mult, levels = cfg["ch"], cfg["ch_mult"], len(cfg["ch_mult"])
        cin = ch * mult[-1]
        self.conv_in = _conv(cfg["z_channels"], cin, 3)
        self.mid = Mid(cfg, cin)
        built = {}
        for i in reversed(range(levels)):
            level = Level(cfg, cin, ch * mult[i], cfg["num_res_blocks"] + 1, _has_attn(cfg, i))
            cin = ch * mult[i]
            if i != 0:
                level.upsample = Upsample(cin)
            built[i] = level
        self.up = nn.ModuleList([built[i] for i in range(levels)])   # up.<level>
        self.norm_out = _norm(cfg, cin)
        self.conv_out = _conv(cin, cfg["out_ch"], 3)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = self.up[i].run_blocks(h)
            if hasattr(self.up[i], "upsample"):
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = finish_config(cfg)
        c = self.cfg
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.quant_conv = nn.Conv2d(2 * c["z_channels"], 2 * c["embed_dim"], 1)
        self.post_quant_conv = nn.Conv2d(c["embed_dim"], c["z_channels"], 1)

    def encode_moments(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z / self.cfg["scale_factor"]))


def randomize_(model, gen):
    """every parameter random (GroupNorm weights around 1), float32 draws from gen"""
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = torch.rand(p.shape, generator=gen, dtype=torch.float32) * 2 - 1
            if ".norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.5 * u)
            elif p.dim() == 4:
                p.copy_(u / (p[0].numel() ** 0.5))
            else:
                p.copy_(0.3 * u)
