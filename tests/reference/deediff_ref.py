"""deediff_ref.py: an independent PyTorch DeeDiff on top of uvit_ref.py's U-ViT,
the reference our C method (model/deediff.c, model/exit_head.c) is tested against.

Written from the definitions (model/exit_head.h, the paper's section 3), not
from the C code. For a U-ViT with num_blocks = depth + 1 blocks, DeeDiff adds
an exit after every block but the last, i = 0 .. num_blocks - 2, reading the
hidden state L_i [B, T, D] after block i:

  exit head g_i (a copy of U-ViT's tail):
    ln  = LayerNorm(L_i[:, extras:, :])           eps 1e-5           [B, N, D]
    g_i = final_layer(unpatchify(decoder_pred(ln)))   3x3 conv, or none   [B, C, H, W]
  UEM (paper eq. 8, u = sigmoid(w_t^T [L_i, timesteps] + b_t)), K timestep buckets,
    bucket k = min(K - 1, floor(t K)) of the image's continuous time t in [0, 1]:
    z   = ln @ proj_w[k]^T + temb @ time_w[k]^T + bias[k]           [N, P]
    u_i = unpatchify(sigmoid(z))                                     [C, H, W]
    temb = the sinusoidal embedding of the network's time input (t * 999),
    the one U-ViT feeds its time MLP (not that MLP's output).
  joint loss (eq. 13), means over a batch's elements:
    L_all    = L_simple + lambda L_u + beta L_layers
    L_simple = mean (eps - net(x_t))^2
    L_u      = sum_i mean (u_i - sg[tanh|g_i - eps|])^2              (eqs. 9, 10)
    L_layers = sum_i mean (1 - u'_i) (g_i - eps)^2                   (eq. 12)
               u'_i = sg[u_i] when ual_detach_u (default), else u_i
               layer_loss=plain: sum_i mean (g_i - eps)^2            (eq. 11)
  (sg = stop gradient.)

Options (the C method's keys and defaults): heads=per_layer|shared,
uem=per_layer|shared, uem_buckets=4, uem_time_input=true, ual_detach_u=true,
layer_loss=uncertainty|plain, lambda=1, beta=1.

Parameter names (all under "method." in a model file):
  heads.<i>.norm.{weight,bias}, heads.<i>.decoder_pred.{weight,bias},
  heads.<i>.final_layer.{weight,bias}     (shared heads: head.*; conv only)
  uem.<i>.proj.weight [K,P,D], uem.<i>.time.weight [K,P,D] (time input only),
  uem.<i>.bias [K,P]                      (shared UEM: uem.*)

Works in any float dtype (fixtures are made in float64).
"""
import json
import math

import torch
import torch.nn as nn

import uvit_ref

OPTION_DEFAULTS = {
    "heads": "per_layer", "uem": "per_layer", "uem_buckets": 4, "uem_time_input": True,
    "ual_detach_u": True, "layer_loss": "uncertainty", "lambda": 1.0, "beta": 1.0,
}
CHOICES = {"heads": ("per_layer", "shared"), "uem": ("per_layer", "shared"),
           "layer_loss": ("uncertainty", "plain")}


def finish_options(opts):
    """a full options dict from a partial one, validated"""
    full = dict(OPTION_DEFAULTS)
    for k, v in (opts or {}).items():
        if k not in OPTION_DEFAULTS:
            raise ValueError("method.%s: not an option of deediff" % k)
        full[k] = v
    for k, allowed in CHOICES.items():
        if full[k] not in allowed:
            raise ValueError("method.%s: %r is not one of %s" % (k, full[k], allowed))
    if int(full["uem_buckets"]) != full["uem_buckets"] or not 1 <= full["uem_buckets"] <= 1000:
        raise ValueError("method.uem_buckets: needs a whole number in [1, 1000]")
    full["uem_buckets"] = int(full["uem_buckets"])
    for k in ("uem_time_input", "ual_detach_u"):
        full[k] = bool(full[k])
    for k in ("lambda", "beta"):
        full[k] = float(full[k])
    return full


def _json_number(x):
    """a number as cJSON prints it: whole values without a fraction, others
    with the shortest of %1.15g / %1.17g that reads back exactly"""
    x = float(x)
    if x == int(x) and abs(x) < 2 ** 31:
        return str(int(x))
    s = "%1.15g" % x
    return s if float(s) == x else "%1.17g" % x


def options_json(opts):
    """the JSON the C method writes to __metadata__["method_options"]
    (cJSON_PrintUnformatted: no spaces, its key order, cJSON numbers)"""
    o = finish_options(opts)
    parts = []
    for k in ("heads", "uem", "uem_buckets", "uem_time_input", "ual_detach_u", "layer_loss",
              "lambda", "beta"):
        v = o[k]
        if isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, str):
            text = json.dumps(v)
        else:
            text = _json_number(v)
        parts.append("%s:%s" % (json.dumps(k), text))
    return "{" + ",".join(parts) + "}"


def bucket_of(t, k):
    """[B] continuous times in [0, 1] -> [B] int64 buckets min(K-1, floor(t K))"""
    b = torch.floor(t.double() * k).long()
    return b.clamp(0, k - 1)


class ExitHead(nn.Module):
    """U-ViT's tail on an intermediate hidden state: norm, decoder_pred, unpatchify, final_layer"""

    def __init__(self, dim, patch, channels, conv):
        super().__init__()
        self.patch, self.channels = patch, channels
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.decoder_pred = nn.Linear(dim, patch * patch * channels)
        self.final_layer = nn.Conv2d(channels, channels, 3, padding=1) if conv else nn.Identity()

    def normalize(self, hidden, extras):
        """hidden (B, T, D) -> ln (B, N, D), the patch tokens normalised"""
        return self.norm(hidden[:, extras:, :])

    def decode(self, ln):
        """ln (B, N, D) -> the noise prediction (B, C, H, W)"""
        return self.final_layer(uvit_ref.unpatchify(self.decoder_pred(ln), self.channels, self.patch))


class _Weight(nn.Module):
    """holds one parameter named 'weight' (so names read proj.weight, time.weight)"""

    def __init__(self, *shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(*shape))


class Uem(nn.Module):
    """timestep-aware uncertainty estimation: per bucket k a linear map of the
    normalised tokens (proj) and of the time embedding (time) plus a bias, sigmoid"""

    def __init__(self, dim, patch, channels, buckets, time_input):
        super().__init__()
        p = patch * patch * channels
        self.patch, self.channels, self.buckets = patch, channels, buckets
        self.proj = _Weight(buckets, p, dim)
        self.time = _Weight(buckets, p, dim) if time_input else None
        self.bias = nn.Parameter(torch.zeros(buckets, p))

    def forward(self, ln, temb, bucket):
        """ln (B, N, D), temb (B, D) or None, bucket (B) -> u (B, C, H, W) in (0, 1)"""
        z = torch.einsum("bnd,bpd->bnp", ln, self.proj.weight[bucket])        # (B, N, P)
        per_image = self.bias[bucket]                                         # (B, P)
        if self.time is not None:
            per_image = per_image + torch.einsum("bd,bpd->bp", temb, self.time.weight[bucket])
        return uvit_ref.unpatchify(torch.sigmoid(z + per_image[:, None, :]), self.channels, self.patch)


class DeeDiffMethod(nn.Module):
    """the method's own parameters (named as under "method.") for one backbone config"""

    def __init__(self, backbone_cfg, options=None):
        super().__init__()
        c = uvit_ref.finish_config(backbone_cfg)
        o = finish_options(options)
        self.cfg, self.opts = c, o
        d, p, ch = c["embed_dim"], c["patch_size"], c["in_chans"]
        self.extras = 2 if c["num_classes"] > 0 else 1
        self.exits = c["depth"]            # num_blocks - 1
        self.embed_dim = d

        def head():
            return ExitHead(d, p, ch, c["conv"])

        def uem():
            return Uem(d, p, ch, o["uem_buckets"], o["uem_time_input"])

        if o["heads"] == "shared":
            self.head = head()
        else:
            self.heads = nn.ModuleList([head() for _ in range(self.exits)])
        self.uem = uem() if o["uem"] == "shared" else nn.ModuleList([uem() for _ in range(self.exits)])

    def exit_head(self, i):
        return self.head if self.opts["heads"] == "shared" else self.heads[i]

    def exit_uem(self, i):
        return self.uem if self.opts["uem"] == "shared" else self.uem[i]

    def exit(self, i, hidden, temb, bucket):
        """exit i on the hidden state after block i: (g_i, u_i), both (B, C, H, W)"""
        h = self.exit_head(i)
        ln = h.normalize(hidden, self.extras)
        return h.decode(ln), self.exit_uem(i)(ln, temb, bucket)

    def time_embedding(self, net_t, dtype):
        """temb (B, D) of the network's time input, or None when the UEM has no time input"""
        if not self.opts["uem_time_input"]:
            return None
        return uvit_ref.timestep_embedding(net_t, self.embed_dim, dtype)


def joint_loss(backbone, method, x_t, net_t, t, eps, y=None):
    """L_all and its parts for one batch: x_t, eps (B, C, H, W), net_t (B) what the
    network sees, t (B) the continuous time in [0, 1] (it picks the UEM bucket).
    Returns a dict: loss, loss_simple, loss_u, loss_layers (0-d tensors) and
    g, u (lists over the exits)."""
    o = method.opts
    hiddens = []
    out = backbone(x_t, net_t, y, hiddens)
    loss_simple = ((eps - out) ** 2).mean()
    temb = method.time_embedding(net_t, x_t.dtype)
    bucket = bucket_of(t, o["uem_buckets"])
    loss_u = loss_layers = x_t.new_zeros(())
    gs, us = [], []
    for i in range(method.exits):
        g, u = method.exit(i, hiddens[i], temb, bucket)
        err = g - eps
        target = torch.tanh(err.abs()).detach()          # pseudo uncertainty, eq. 9
        loss_u = loss_u + ((u - target) ** 2).mean()
        if o["layer_loss"] == "plain":
            loss_layers = loss_layers + (err ** 2).mean()
        else:
            w = u.detach() if o["ual_detach_u"] else u
            loss_layers = loss_layers + ((1 - w) * err ** 2).mean()
        gs.append(g)
        us.append(u)
    loss = loss_simple + o["lambda"] * loss_u + o["beta"] * loss_layers
    return {"loss": loss, "loss_simple": loss_simple, "loss_u": loss_u, "loss_layers": loss_layers,
            "g": gs, "u": us}


def randomize_(method, gen):
    """test weights for the method, every parameter away from trivial values:
    LayerNorm weights 1 + N(0, 0.2^2); Linear/Conv/UEM weights N(0, 1/fan_in)
    (fan_in: the last dim, or C*3*3 for the conv); biases N(0, 0.3^2)"""
    with torch.no_grad():
        for name, p in method.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
            if ".norm." in name or name.startswith("norm."):
                p.copy_(1 + 0.2 * noise if name.endswith("weight") else 0.3 * noise)
            elif name.endswith("final_layer.weight"):
                p.copy_(noise / math.sqrt(p[0].numel()))
            elif name.endswith("weight"):
                p.copy_(noise / math.sqrt(p.shape[-1]))
            else:
                p.copy_(0.3 * noise)


def method_state(method):
    """name -> tensor of the method's parameters, with the "method." prefix"""
    return {"method." + n: p for n, p in method.named_parameters()}
