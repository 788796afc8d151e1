"""safetensors_io.py — a small safetensors reader/writer on numpy (no `safetensors` package).

Format: 8-byte little-endian header length, a JSON header
{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the data buffer. Dtypes F32 / F16 / BF16 are read into float32 arrays;
writing supports the same three (BF16 rounds to nearest even).
"""
import json
import struct

import numpy as np

_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def _to_bf16_bits(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    nan = np.isnan(a)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def _from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: dict name -> array-like (float). Written in name order."""
    if dtype not in _SIZES:
        raise ValueError(f"safetensors: cannot write dtype {dtype}")
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        else:
            raw = _to_bf16_bits(a).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path, with_metadata=False):
    """Returns dict name -> float32 numpy array (and the metadata dict when asked)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header runs past the end of the file")
    header = json.loads(data[8 : 8 + n])
    buf = memoryview(data)[8 + n :]
    out = {}
    meta = header.pop("__metadata__", {})
    for name, e in header.items():
        dt = e["dtype"]
        if dt not in _SIZES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        b, end = e["data_offsets"]
        if end > len(buf) or b > end:
            raise ValueError(f"{path}: tensor {name}: data_offsets out of bounds")
        shape = tuple(e["shape"])
        raw = bytes(buf[b:end])
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            a = _from_bf16_bits(np.frombuffer(raw, dtype="<u2"))
        if a.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name}: size does not match shape")
        out[name] = a.astype(np.float32).reshape(shape)
    return (out, meta) if with_metadata else out
