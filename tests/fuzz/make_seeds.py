"""make_seeds.py: writes the fuzzers' seed corpora (small valid inputs).

    /usr/bin/python3 tests/fuzz/make_seeds.py      # from the repository root

seeds/fuzz_safetensors/: safetensors files covering every dtype we read,
metadata, 0-d and zero-size tensors, an unpadded (odd-length) header.
seeds/fuzz_uvit_config/: the paper's U-ViT configs (MS-COCO's text-to-image one too) and per-block arrays.
seeds/fuzz_pickle/: np.save'd (moments, label) object arrays, as U-ViT's
feature extraction writes them (numpy and numpy scalar labels).
seeds/fuzz_npy/: .npy of every supported dtype, versions 1.0 and 2.0, and
.npz stored (np.savez) and deflated (np.savez_compressed).
seeds/fuzz_cifar10/: CIFAR-10 binary batches of one and two records.
seeds/fuzz_images/: PNG (RGB, gray, palette, 16-bit, alpha) and JPEG (RGB,
gray, progressive) files, some of them CelebA's aligned 178 x 218.
seeds/fuzz_train_config/: training configurations (U-ViT, DeeDiff method
section), some followed by a NUL byte and overrides, one per line.
Needs numpy and Pillow (/usr/bin/python3 has both).
"""
import io
import json
import os
import struct

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes); written in name order"""
    header, offset, chunks = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in sorted(tensors):
        n = 1
        for d in shape:
            n *= d
        assert len(raw) == n * SIZES[dtype], name
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def write(folder, name, data):
    os.makedirs(os.path.join(HERE, "seeds", folder), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, "seeds", folder, name), mode) as f:
        f.write(data)


def main():
    st = "fuzz_safetensors"
    write(st, "empty.safetensors", safetensors([]))
    write(st, "one_f32.safetensors", safetensors([("w", "F32", [2, 3], f32(1, -2, 0.5, 0, 3e38, -1e-40))]))
    write(st, "all_dtypes.safetensors", safetensors([
        ("half", "F16", [4], struct.pack("<4H", 0x3c00, 0x0001, 0x7c00, 0xfe00)),
        ("brain", "BF16", [2, 1], struct.pack("<2H", 0x3f80, 0xff81)),
        ("steps", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
        ("labels", "I32", [3], struct.pack("<3i", 0, 7, -9)),
        ("scalar", "F32", [], f32(42)),
        ("none", "F32", [0, 4], b""),
    ], metadata={"config": '{"depth":2}', "format": "pt"}))
    write(st, "unpadded.safetensors", safetensors([("a.b", "F32", [1], f32(7))], pad=False))
    write(st, "blocks.safetensors", safetensors(
        [("in_blocks.%d.norm1.weight" % i, "F32", [2], f32(1, 1)) for i in range(3)]
        + [("pos_embed", "F32", [1, 2, 2], f32(0.1, 0.2, 0.3, 0.4))],
        metadata={"config": '{"img_size":4,"patch_size":2,"embed_dim":2,"depth":2,"num_heads":1}'}))

    cf = "fuzz_uvit_config"
    write(cf, "empty.json", "{}")
    write(cf, "cifar10_uvit_small.json", json.dumps({
        "img_size": 32, "patch_size": 2, "in_chans": 3, "embed_dim": 512, "depth": 12,
        "num_heads": 8, "mlp_ratio": 4, "qkv_bias": False, "mlp_time_embed": False,
        "num_classes": -1, "conv": True}, indent=1))
    write(cf, "imagenet256_uvit_large.json", json.dumps({
        "img_size": 32, "patch_size": 2, "in_chans": 4, "embed_dim": 1024, "depth": 20,
        "num_heads": 16, "mlp_ratio": 4.0, "qkv_bias": False, "mlp_time_embed": False,
        "num_classes": 1001, "qk_scale": None, "use_checkpoint": True, "skip": True}))
    write(cf, "mscoco_uvit_t2i.json", json.dumps({
        "img_size": 32, "patch_size": 2, "in_chans": 4, "embed_dim": 512, "depth": 12,
        "num_heads": 8, "mlp_ratio": 4, "qkv_bias": False, "mlp_time_embed": False,
        "clip_dim": 768, "num_clip_token": 77}))
    write(cf, "pruned.json", json.dumps({
        "img_size": 64, "patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 3,
        "mlp_ratio": 2.6666666666666665, "conv": False,
        "block_mlp_hidden": [256, 128, 64, 1, 256], "block_num_heads": [3, 2, 1, 3, 6]}))

    pickle_seeds()
    npy_seeds()
    cifar10_seeds()
    image_seeds()
    train_config_seeds()
    store_seeds()


def npy_bytes(array, **kw):
    buf = io.BytesIO()
    np.save(buf, array, **kw)
    return buf.getvalue()


def pickle_seeds():
    rng = np.random.default_rng(0)
    item = np.empty(2, dtype=object)   # what np.save((moments, label)) stores
    item[0], item[1] = rng.standard_normal((2, 2, 2)).astype(np.float32), np.int64(7)
    write("fuzz_pickle", "moments_label.npy", npy_bytes(item, allow_pickle=True))
    item[0], item[1] = np.arange(6, dtype=np.float16).reshape(3, 2), 3
    write("fuzz_pickle", "f16_int.npy", npy_bytes(item, allow_pickle=True))
    write("fuzz_pickle", "tuple.npy", npy_bytes(np.array((np.zeros(3, np.uint8), np.int32(-1)),
                                                         dtype=object), allow_pickle=True))


def npz_bytes(save, arrays):
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


def npy_seeds():
    d = "fuzz_npy"
    for descr in ["<f4", "<f8", "<f2", "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8"]:
        a = np.arange(6).reshape(2, 3).astype(np.dtype(descr))
        write(d, "a_%s.npy" % descr.strip("<|"), npy_bytes(a))
    write(d, "scalar.npy", npy_bytes(np.float32(1.5)))
    write(d, "empty.npy", npy_bytes(np.zeros((0, 4), np.float32)))
    v2 = npy_bytes(np.ones(2, np.float32))
    v2 = b"\x93NUMPY\x02\x00" + struct.pack("<I", v2[8] | v2[9] << 8) + v2[10:]
    write(d, "version2.npy", v2)
    arrays = {"mu": np.linspace(0, 1, 4).astype(np.float64), "sigma": np.eye(2)}
    write(d, "stored.npz", npz_bytes(np.savez, arrays))
    write(d, "deflated.npz", npz_bytes(np.savez_compressed, arrays))


def cifar10_seeds():
    rng = np.random.default_rng(1)
    for n in (1, 2):
        recs = [bytes([k % 10]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for k in range(n)]
        write("fuzz_cifar10", "batch_%d.bin" % n, b"".join(recs))


def image_bytes(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def image_seeds():
    d = "fuzz_images"
    y, x = np.mgrid[0:218, 0:178]
    face = np.stack([x * 255 // 177, y * 255 // 217, (x + y) % 256], -1).astype(np.uint8)
    celeba = Image.fromarray(face)
    write(d, "celeba.jpg", image_bytes(celeba, "JPEG", quality=10))
    write(d, "celeba_gray.jpg", image_bytes(celeba.convert("L"), "JPEG", quality=10))
    write(d, "celeba.png", image_bytes(celeba.quantize(4), "PNG", optimize=True))
    small = Image.fromarray(face[:8, :8])
    write(d, "rgb8.png", image_bytes(small, "PNG"))
    write(d, "rgba8.png", image_bytes(small.convert("RGBA"), "PNG"))
    write(d, "gray8.png", image_bytes(small.convert("L"), "PNG"))
    write(d, "gray16.png", image_bytes(Image.fromarray(face[:8, :8, 0].astype(np.uint16) * 257), "PNG"))
    write(d, "progressive.jpg", image_bytes(small, "JPEG", progressive=True))


def train_config_seeds():
    d = "fuzz_train_config"
    model = {"img_size": 8, "patch_size": 4, "in_chans": 1, "embed_dim": 8, "depth": 2,
             "num_heads": 1, "num_classes": -1, "conv": True}
    full = {"model": model, "data": {"dataset": "celeba", "path": "x", "flip": True, "max_items": 4},
            "train": {"steps": 10, "batch": 2, "seed": 1, "noise": "discrete", "p_uncond": 0,
                      "log_every": 1, "ckpt_every": 5, "freeze_backbone": False},
            "optim": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.03,
                      "warmup_steps": 2, "ema_decay": 0.999, "max_grad_norm": 1},
            "output": {"dir": "runs/x", "db": "x.db", "export": "x.safetensors"}}
    write(d, "plain.json", json.dumps(full))
    write(d, "deediff.json", json.dumps({"model": model, "method": {
        "name": "deediff", "heads": "shared", "uem": "per_layer", "uem_buckets": 4,
        "uem_time_input": True, "ual_detach_u": False, "layer_loss": "plain", "lambda": 1, "beta": 0.5}}))
    write(d, "method_none.json", json.dumps({"model": model, "method": {"name": "none"}}))
    write(d, "overrides.bin", json.dumps({"model": model}).encode() + b"\0" + b"\n".join([
        b"train.steps=200", b"optim.lr=1e-4", b"method.name=deediff", b"method.uem_buckets=8",
        b"data.dataset=cifar10", b"output.dir=runs/y"]))


def store_seeds():
    """results databases: empty, at schema version 1 and at the current version
    with a run and its training curve (harness/store/schema.sql)"""
    import sqlite3
    import tempfile
    schema = open(os.path.join(HERE, "..", "..", "harness", "store", "schema.sql")).read()
    steps = schema.split("\n-- version ")[1:]
    d = "fuzz_store"
    write(d, "empty.db", b"")
    for upto in (1, len(steps)):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.db")
            db = sqlite3.connect(path)
            db.execute("PRAGMA page_size = 512")   # small seeds: the fuzzer mutates every page
            for v, step in enumerate(steps[:upto], 1):
                db.executescript(step.split("\n", 1)[1])
                db.execute("PRAGMA user_version = %d" % v)
            db.execute("INSERT INTO runs (uuid, kind, name, config, git_commit, machine, cpu, backend, pid) "
                       "VALUES ('u1', 'train', 'runs/x', '{}', 'unknown', 'm', 'c', 'cpu', 1)")
            db.execute("INSERT INTO train_log VALUES (1, 10, 0.5, 0.001, NULL, 100, 1.5)")
            db.commit()
            db.close()
            with open(path, "rb") as f:
                write(d, "version%d.db" % upto, f.read())


if __name__ == "__main__":
    main()
