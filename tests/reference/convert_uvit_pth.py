"""convert_uvit_pth.py: official U-ViT checkpoints (.pth) <-> our .safetensors.

    convert_uvit_pth.py IN.pth OUT.safetensors --config '{"img_size":32,"patch_size":2,...}'
    convert_uvit_pth.py IN.safetensors OUT.pth [--config JSON]
    convert_uvit_pth.py --selftest

.pth -> .safetensors: the state dict of baofff/U-ViT (nnet.pth, nnet_ema.pth;
libs/uvit.py's networks and libs/uvit_t2i.py's, whose config names clip_dim and
num_clip_token, e.g. MS-COCO's {"img_size":32,"patch_size":2,"in_chans":4,
"embed_dim":512,"depth":12,"num_heads":8,"clip_dim":768,"num_clip_token":77};
a leading 'module.' from DataParallel is stripped; a {"state_dict": ...} or
{"model": ...} wrapper is opened) is written unchanged in value as F32 with
__metadata__ {"config": JSON}. The config (U-ViT's constructor arguments, see
uvit_ref.py) is required, since a .pth does not carry one.
.safetensors -> .pth: a plain state dict that the official UViT(**config)
loads with load_state_dict(strict=True); the config comes from the file's
metadata unless --config is given, and is printed.

Either way every name and shape is checked against the config first. Bad
input prints one line "deediff: <file>: <field>: <what>" and exits 2; the
output is written atomically (temporary file, fsync, rename) or not at all.
"""
import argparse
import collections
import io
import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import uvit_ref  # noqa: E402


class BadInput(Exception):
    pass


def parse_config(text, source):
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    try:
        cfg = json.loads(text)
        uvit_ref.finish_config(cfg)
    except ValueError as e:
        raise BadInput("%s: %s" % (source, e))
    return cfg


def check_against_config(state, cfg, path):
    """every tensor the config needs is there with the right shape, and no other"""
    return check_state(state, expected_shapes(cfg), path)


def check_state(state, expected, path):
    """state holds exactly the tensors of expected (name -> shape); returns their names in its order"""
    for name, shape in expected.items():
        if name not in state:
            raise BadInput("%s: tensor '%s': missing" % (path, name))
        if tuple(state[name].shape) != shape:
            raise BadInput("%s: tensor '%s': shape %s expected %s" % (
                path, name, list(state[name].shape), list(shape)))
    for name in state:
        if name not in expected:
            raise BadInput("%s: tensor '%s': not a parameter of this config" % (path, name))
    return list(expected)   # module order


def load_pth(path):
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:   # torch without weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as e:   # pickle errors come in many types
        raise BadInput("%s: file: not a PyTorch checkpoint (%s)" % (path, str(e).splitlines()[0]))
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise BadInput("%s: file: not a state dict" % path)
    state = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise BadInput("%s: tensor '%s': not a floating-point tensor" % (path, name))
        state[name[len("module."):] if name.startswith("module.") else name] = value
    return state


def pth_to_safetensors(src, dst, cfg):
    state = load_pth(src)
    check_against_config(state, cfg, src)
    tensors = {n: v.detach().to(torch.float32).contiguous() for n, v in state.items()}
    safetensors_io.save_file(tensors, dst, {"config": uvit_ref.config_json(cfg)})
    return cfg


def safetensors_to_pth(src, dst, cfg=None):
    return safetensors_to_pth_of(src, dst, cfg, parse_config, expected_shapes)


def expected_shapes(cfg):
    """every tensor of this config's U-ViT and its shape"""
    return {n: tuple(p.shape) for n, p in uvit_ref.UViT(**cfg).state_dict().items()}


def safetensors_to_pth_of(src, dst, cfg, parse, expected):
    """a safetensors file of any converted network back to a .pth state dict
    (F32, in the expected order): parse(text, source) reads a config from
    the file's metadata when cfg is None, expected(cfg) gives its tensors'
    shapes; returns the config"""
    try:
        tensors, meta = safetensors_io.load_file(src)
    except safetensors_io.SafetensorsError as e:
        raise BadInput(str(e))
    if cfg is None:
        if "config" not in meta:
            raise BadInput("%s: __metadata__: no 'config' (pass --config)" % src)
        cfg = parse(meta["config"], src + ": __metadata__ config")
    order = check_state(tensors, expected(cfg), src)
    for name in order:
        if not tensors[name].is_floating_point():
            raise BadInput("%s: tensor '%s': not a floating-point tensor" % (src, name))
    state = collections.OrderedDict((n, tensors[n].to(torch.float32)) for n in order)
    buf = io.BytesIO()
    torch.save(state, buf)
    safetensors_io.write_atomic(dst, buf.getvalue())
    return cfg


# ---- self-test -----------------------------------------------------------------

def selftest():
    tmp = tempfile.mkdtemp(prefix="convert_uvit_selftest-")
    gen = torch.Generator().manual_seed(7)

    # 1. safetensors round trip: every dtype, odd shapes, metadata, alignment
    tensors = {
        "b_f32": torch.randn(3, 5, generator=gen),
        "a_f16": torch.randn(7, generator=gen).half(),
        "c_bf16": torch.randn(2, 3, generator=gen).bfloat16(),
        "d_i64": torch.tensor([-5, 2 ** 40, 0]),
        "e_i32": torch.tensor([[1, -2]], dtype=torch.int32),
        "f_scalar": torch.tensor(1.5),
        "g_empty": torch.zeros(0, 4),
    }
    raw = safetensors_io.serialize(tensors, {"k": "v", "config": "{}"})
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0, "header not padded to 8"
    header = json.loads(raw[8:8 + n])
    names = [k for k in header if k != "__metadata__"]
    assert names == sorted(names), "names not sorted"
    assert [header[k]["data_offsets"][0] for k in names] == sorted(header[k]["data_offsets"][0] for k in names)
    back, meta = safetensors_io.parse(raw)
    assert meta == {"k": "v", "config": "{}"}
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), k
    for bad in (raw[:7], raw[:-1], raw[:8] + b"[" + raw[9:], b"\xff" * 8 + raw[8:]):
        try:
            safetensors_io.parse(bad, "bad.safetensors")
            raise AssertionError("corrupt file accepted")
        except safetensors_io.SafetensorsError as e:
            assert str(e).startswith("bad.safetensors: "), e

    # 2. .pth -> .safetensors -> .pth on a random, pruned, conditional model
    cfg = dict(img_size=8, patch_size=2, in_chans=3, embed_dim=16, depth=2, num_heads=2,
               mlp_ratio=4, qkv_bias=True, mlp_time_embed=True, num_classes=3, conv=True,
               block_num_heads=[2, 1, 2], block_mlp_hidden=[64, 64, 20])
    model = uvit_ref.UViT(**cfg)
    uvit_ref.randomize_(model, gen)
    official = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    pth, st, pth2 = (os.path.join(tmp, f) for f in ("in.pth", "m.safetensors", "out.pth"))
    torch.save(official, pth)
    pth_to_safetensors(pth, st, cfg)
    tensors, meta = safetensors_io.load_file(st)
    assert json.loads(meta["config"])["block_mlp_hidden"] == [64, 64, 20]
    for k, v in model.state_dict().items():
        assert tensors[k].dtype == torch.float32 and torch.equal(tensors[k], v), k
    safetensors_to_pth(st, pth2)
    reloaded = uvit_ref.from_config(meta["config"])
    reloaded.load_state_dict(torch.load(pth2), strict=True)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    t = torch.tensor([1.5, 900.0])
    y = torch.tensor([0, 2])
    with torch.no_grad():
        assert torch.equal(model(x, t, y), reloaded(x, t, y))

    # a text-to-image model (libs/uvit_t2i.py's names: context_embed, 1 + 77 extras in pos_embed)
    tcfg = dict(img_size=8, patch_size=2, in_chans=4, embed_dim=16, depth=2, num_heads=2, clip_dim=12)
    tmodel = uvit_ref.UViT(**tcfg)
    uvit_ref.randomize_(tmodel, gen)
    assert tuple(tmodel.state_dict()["pos_embed"].shape) == (1, 1 + 77 + 16, 16)
    assert tuple(tmodel.state_dict()["context_embed.weight"].shape) == (16, 12)
    torch.save(collections.OrderedDict(("module." + k, v) for k, v in tmodel.state_dict().items()), pth)
    pth_to_safetensors(pth, st, tcfg)
    tensors, meta = safetensors_io.load_file(st)
    tc = json.loads(meta["config"])
    assert tc["clip_dim"] == 12 and tc["num_clip_token"] == 77 and tc["num_classes"] == -1, tc
    safetensors_to_pth(st, pth2)
    treloaded = uvit_ref.from_config(meta["config"])
    treloaded.load_state_dict(torch.load(pth2), strict=True)
    xc = torch.randn(2, 4, 8, 8, generator=gen)
    context = torch.randn(2, 77, 12, generator=gen)
    with torch.no_grad():
        assert torch.equal(tmodel(xc, t, context=context), treloaded(xc, t, context=context))

    # a half-precision checkpoint becomes F32 with the same values
    torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}}, pth)
    pth_to_safetensors(pth, st, cfg)
    tensors, _ = safetensors_io.load_file(st)
    assert all(torch.equal(tensors[k], v.half().float()) for k, v in model.state_dict().items())

    # 3. bad input names the file and the tensor; nothing is written
    bad_cases = [
        ({k: v for k, v in model.state_dict().items() if k != "pos_embed"}, "tensor 'pos_embed': missing"),
        (dict(model.state_dict(), **{"norm.weight": torch.zeros(3)}), "tensor 'norm.weight': shape [3] expected [16]"),
        (dict(model.state_dict(), extra=torch.zeros(1)), "tensor 'extra': not a parameter"),
    ]
    for state, want in bad_cases:
        torch.save(state, pth)
        out = os.path.join(tmp, "never.safetensors")
        try:
            pth_to_safetensors(pth, out, cfg)
            raise AssertionError("bad checkpoint accepted")
        except BadInput as e:
            assert str(e) == "%s: %s" % (pth, want) or str(e).startswith("%s: %s" % (pth, want)), e
        assert not os.path.exists(out)
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)
    print("convert_uvit_pth selftest: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--config", help="U-ViT config JSON (or @file)")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        selftest()
        return 0
    if not args.input or not args.output:
        ap.error("IN and OUT are required")
    try:
        if args.input.endswith(".safetensors"):
            cfg = parse_config(args.config, "--config") if args.config else None
            cfg = safetensors_to_pth(args.input, args.output, cfg)
        else:
            if not args.config:
                ap.error("--config is required for a .pth input")
            cfg = pth_to_safetensors(args.input, args.output, parse_config(args.config, "--config"))
    except (BadInput, OSError) as e:
        msg = str(e) if isinstance(e, BadInput) else "%s: file: %s" % (e.filename, e.strerror)
        print("deediff: %s" % msg, file=sys.stderr)
        return 2
    print("wrote %s (config %s)" % (args.output, uvit_ref.config_json(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
