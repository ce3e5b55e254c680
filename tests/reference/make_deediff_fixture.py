"""make_deediff_fixture.py: writes the golden DeeDiff fixtures that tests/test_deediff_golden.c checks.

    /usr/bin/python3 tests/reference/make_deediff_fixture.py tests/fixtures

For each configuration below it writes
  deediff_<name>.model.safetensors  a DeeDiff model file as the C code reads it
                                    (method_load): the backbone's parameters under
                                    their U-ViT names, the method's under "method.",
                                    __metadata__ config (U-ViT JSON), method "deediff",
                                    method_options (the JSON deediff_options_json prints)
  deediff_<name>.io.safetensors     one training batch of B = 3 images and what the
                                    joint loss gives on it:
                                    x_t, eps [B,C,H,W]; t [B] continuous, one image per
                                    UEM bucket region; net_t [B] = t * 999 (float32);
                                    a, s [B] sqrt(cum_alpha), sqrt(cum_beta) of the VPSDE
                                    (x_t = a x0 + s eps); loss, loss_simple, loss_u,
                                    loss_layers [1]; g.<i>, u.<i> [B,C,H,W] of every exit;
                                    grad.<param> = dL_all/dparam for every parameter
                                    (backbone and "method.*")
(The model file must hold parameters only: U-ViT's loader rejects any other
tensor, so inputs and expected values travel in the second file.)

Weights are drawn in float32; the networks then run in float64 (see
make_fixtures.py). Everything is seeded: running the script twice gives the
same bytes.
"""
import copy
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deediff_ref  # noqa: E402
import safetensors_io  # noqa: E402
import uvit_ref  # noqa: E402

BATCH = 3
# continuous times: buckets 0, 2, 3 of K = 4 and 0, 1, 2 of K = 3 (each far
# from every bucket edge)
TIMES = [0.1372, 0.5173, 0.9386]

CONFIGS = {
    # the paper's DeeDiff with our defaults; time MLP on, so the UEM's time
    # input (the sinusoidal embedding) differs from the backbone's time token
    "default": (dict(img_size=8, patch_size=2, in_chans=2, embed_dim=8, depth=4, num_heads=2,
                     mlp_ratio=2.0, qkv_bias=False, mlp_time_embed=True, num_classes=-1, conv=True),
                {}),
    # L_UAL's gradient reaching u (ual_detach_u false with the uncertainty
    # layer loss, which the ablation's plain loss cannot show); 3 buckets
    "ual_u": (dict(img_size=8, patch_size=2, in_chans=2, embed_dim=8, depth=4, num_heads=2,
                   mlp_ratio=2.0, qkv_bias=False, mlp_time_embed=False, num_classes=-1, conv=True),
              {"uem_buckets": 3, "ual_detach_u": False, "lambda": 0.7, "beta": 1.5}),
    # every option away from its default; no final conv
    "ablation": (dict(img_size=8, patch_size=2, in_chans=2, embed_dim=8, depth=4, num_heads=2,
                      mlp_ratio=2.0, qkv_bias=True, mlp_time_embed=False, num_classes=-1, conv=False),
                 {"heads": "shared", "uem": "shared", "uem_buckets": 1, "uem_time_input": False,
                  "ual_detach_u": False, "layer_loss": "plain", "lambda": 0.5, "beta": 2.0}),
}


def rel_l2(a, b):
    return ((a - b).norm() / b.norm()).item()


def vpsde_coefs(t):
    """sqrt(cum_alpha), sqrt(cum_beta) of U-ViT's VPSDE (beta_min 0.1, beta_max 20)"""
    cum_alpha = torch.exp(-(0.1 * t + 9.95 * t * t))
    return cum_alpha.sqrt(), (1 - cum_alpha).sqrt()


def run(backbone, method, io):
    backbone.zero_grad()
    method.zero_grad()
    dt = next(backbone.parameters()).dtype
    r = deediff_ref.joint_loss(backbone, method, io["x_t"].to(dt), io["net_t"], io["t"], io["eps"].to(dt))
    r["loss"].backward()
    return r


def make(name, cfg, opts, outdir, seed):
    gen = torch.Generator().manual_seed(seed)
    backbone = uvit_ref.UViT(**cfg)                       # float32 weights ...
    uvit_ref.randomize_(backbone, gen)
    method = deediff_ref.DeeDiffMethod(cfg, opts)
    deediff_ref.randomize_(method, gen)
    backbone64 = copy.deepcopy(backbone).double()         # ... run in float64
    method64 = copy.deepcopy(method).double()

    c = backbone.cfg
    shape = (BATCH, c["in_chans"], c["img_size"], c["img_size"])
    t = torch.tensor(TIMES, dtype=torch.float32)
    k = method.opts["uem_buckets"]
    assert all(abs(x * k - round(x * k)) > 0.05 for x in TIMES) or k == 1, "a time sits on a bucket edge"
    net_t = t * 999                                       # float32, what the network sees
    x0 = torch.rand(shape, generator=gen) * 2 - 1
    eps = torch.randn(shape, generator=gen)
    a, s = vpsde_coefs(t.double())
    x_t = (a[:, None, None, None] * x0.double() + s[:, None, None, None] * eps.double()).float()
    io = {"x_t": x_t, "eps": eps, "t": t, "net_t": net_t, "a": a.float(), "s": s.float()}

    r = run(backbone64, method64, io)
    out = dict(io)
    for key in ("loss", "loss_simple", "loss_u", "loss_layers"):
        out[key] = r[key].detach().reshape(1).float()
    for i, (g, u) in enumerate(zip(r["g"], r["u"])):
        out["g.%d" % i] = g.detach().float()
        out["u.%d" % i] = u.detach().float()
    named64 = dict(backbone64.named_parameters())
    named64.update(deediff_ref.method_state(method64))
    for n, p in named64.items():
        out["grad." + n] = p.grad.float()

    params = {n: p.detach().float() for n, p in backbone.named_parameters()}
    params.update({n: p.detach().float() for n, p in deediff_ref.method_state(method).items()})
    meta = {"config": uvit_ref.config_json(cfg), "method": "deediff",
            "method_options": deediff_ref.options_json(opts)}
    base = os.path.join(outdir, "deediff_%s" % name)
    safetensors_io.save_file(params, base + ".model.safetensors", meta)
    safetensors_io.save_file(out, base + ".io.safetensors",
                             dict(meta, made_by="tests/reference/make_deediff_fixture.py"))

    # what a float32 implementation can reach: the same networks in float32
    r32 = run(backbone, method, io)
    named32 = dict(backbone.named_parameters())
    named32.update(deediff_ref.method_state(method))
    worst = max(rel_l2(named32[n].grad.double(), p.grad) for n, p in named64.items())
    loss_err = abs(r32["loss"].item() - r["loss"].item()) / abs(r["loss"].item())
    sizes = [os.path.getsize(base + x) for x in (".model.safetensors", ".io.safetensors")]
    buckets = deediff_ref.bucket_of(t, k).tolist()
    print("%s: %s; buckets %s; loss %.6f (simple %.6f, u %.6f, layers %.6f); %d parameters; "
          "float32 vs float64: loss %.1e, worst grad %.1e; files %d + %d bytes"
          % (name, deediff_ref.options_json(opts), buckets, r["loss"].item(), r["loss_simple"].item(),
             r["loss_u"].item(), r["loss_layers"].item(), sum(p.numel() for p in params.values()),
             loss_err, worst, sizes[0], sizes[1]))
    zero = [n for n, p in named64.items() if p.grad.abs().max().item() == 0]
    if zero:
        sys.exit("%s: zero gradients for %s" % (name, ", ".join(zero)))
    if not math.isfinite(r["loss"].item()):
        sys.exit("%s: loss not finite" % name)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_deediff_fixture.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)   # same reduction order every run
    for seed, (name, (cfg, opts)) in enumerate(CONFIGS.items()):
        make(name, cfg, opts, outdir, 2000 + seed)


if __name__ == "__main__":
    main()
