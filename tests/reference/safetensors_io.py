"""safetensors_io.py: a minimal safetensors reader and writer (no safetensors package).

Format (REFERENCE.md section 5): an 8-byte little-endian u64 N, N bytes of JSON,
then the data. The JSON maps each tensor name to {"dtype", "shape",
"data_offsets": [begin, end]} (byte offsets relative to the data start) and may
hold "__metadata__": {str: str}. We write tensors in name order, pad the header
with spaces to a multiple of 8 (so the data starts 8-byte aligned), and write
atomically (temporary file, fsync, rename). Dtypes: F32, F16, BF16, I64, I32.

    save_file({"w": tensor_or_array}, "m.safetensors", metadata={"config": "{...}"})
    tensors, metadata = load_file("m.safetensors")   # dict of torch tensors, dict of str

Errors in a file raise SafetensorsError("<path>: <field>: <what>").
"""
import json
import os
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, bytes per element)
DTYPES = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
}
TORCH_TO_NAME = {td: name for name, (td, _) in DTYPES.items()}
# numpy cannot hold bf16: such tensors travel as their raw 16-bit patterns
RAW_VIEW = {torch.bfloat16: torch.int16}

MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def _as_torch(value):
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError("expected a torch tensor or numpy array, got %r" % type(value))
    return value.detach().cpu().contiguous()


def _tensor_bytes(t):
    view = RAW_VIEW.get(t.dtype)
    arr = (t.view(view) if view is not None else t).numpy()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def serialize(tensors, metadata=None):
    """bytes of a safetensors file holding `tensors` (name -> tensor/array)"""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be strings")
        header["__metadata__"] = dict(sorted(metadata.items()))
    chunks, offset = [], 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a tensor name")
        t = _as_torch(tensors[name])
        if t.dtype not in TORCH_TO_NAME:
            raise TypeError("tensor '%s': dtype %s not supported" % (name, t.dtype))
        data = _tensor_bytes(t)
        header[name] = {"dtype": TORCH_TO_NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_atomic(path, data):
    """writes bytes to path via path.tmp-<pid>, fsync, rename"""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_file(tensors, path, metadata=None):
    write_atomic(path, serialize(tensors, metadata))


def parse(data, path="<bytes>"):
    """(tensors, metadata) from the bytes of a safetensors file, validated"""
    def bad(field, what):
        return SafetensorsError("%s: %s: %s" % (path, field, what))

    if len(data) < 8:
        raise bad("header", "file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise bad("header", "length %d does not fit the file (%d bytes)" % (n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad("header", "invalid JSON (%s)" % e)
    if not isinstance(header, dict):
        raise bad("header", "not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise bad("__metadata__", "must map strings to strings")
    body = memoryview(data)[8 + n:]
    entries = []
    for name, info in header.items():
        field = "tensor '%s'" % name
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(field, "needs exactly dtype, shape, data_offsets")
        if info["dtype"] not in DTYPES:
            raise bad(field, "dtype %r not supported" % (info["dtype"],))
        shape, offs = info["shape"], info["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise bad(field, "bad shape %r" % (shape,))
        if not (isinstance(offs, list) and len(offs) == 2
                and all(isinstance(o, int) for o in offs) and 0 <= offs[0] <= offs[1]):
            raise bad(field, "bad data_offsets %r" % (offs,))
        tdtype, size = DTYPES[info["dtype"]]
        if offs[1] - offs[0] != int(np.prod(shape, dtype=np.int64)) * size:
            raise bad(field, "data_offsets %r do not match shape %r" % (offs, shape))
        entries.append((offs[0], offs[1], name, tdtype, shape))
    entries.sort()
    pos = 0
    for begin, end, name, _, _ in entries:
        if begin != pos:
            raise bad("tensor '%s'" % name, "data_offsets leave a gap or overlap")
        pos = end
    if pos != len(body):
        raise bad("data", "tensors cover %d bytes, data holds %d" % (pos, len(body)))
    tensors = {}
    for begin, end, name, tdtype, shape in entries:
        view = RAW_VIEW.get(tdtype, tdtype)
        np_dtype = torch.empty(0, dtype=view).numpy().dtype.newbyteorder("<")
        arr = np.frombuffer(body[begin:end], dtype=np_dtype).astype(np_dtype.newbyteorder("="))
        t = torch.from_numpy(arr.copy()).reshape(shape)
        tensors[name] = t.view(tdtype) if view is not tdtype else t
    return tensors, metadata


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    return parse(data, path)
