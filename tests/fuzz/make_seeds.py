"""make_seeds.py: writes the fuzzers' seed corpora (small valid inputs).

    /usr/bin/python3 tests/fuzz/make_seeds.py      # from the repository root

seeds/fuzz_safetensors/: safetensors files covering every dtype we read,
metadata, 0-d and zero-size tensors, an unpadded (odd-length) header.
seeds/fuzz_uvit_config/: the paper's U-ViT configs and per-block arrays.
Standard library only, so it runs anywhere.
"""
import json
import os
import struct

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
    write(cf, "pruned.json", json.dumps({
        "img_size": 64, "patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 3,
        "mlp_ratio": 2.6666666666666665, "conv": False,
        "block_mlp_hidden": [256, 128, 64, 1, 256], "block_num_heads": [3, 2, 1, 3, 6]}))


if __name__ == "__main__":
    main()
