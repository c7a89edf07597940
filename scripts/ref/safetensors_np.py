"""safetensors_np.py -- read and write safetensors files with numpy and json.

Debian has no `safetensors` Python package, and the format is small: an
8-byte little-endian header length N, N bytes of JSON mapping each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
the data buffer, end exclusive) plus an optional "__metadata__" map of
strings, then the raw little-endian row-major data.  The writer pads the
header with spaces to a multiple of 8 and stores tensors by descending dtype
size, then name, as the reference writer does, so readers that map the file
get aligned data.

Used by the Inception v3 reference generator (inception_ref.py) and by the
tests that load deeper's exports into torchvision.
"""
import json
import struct

import numpy as np

_DT = {
    "F32": np.float32, "F64": np.float64, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
    "BOOL": np.bool_,
}
_NAME = {np.dtype(v).str: k for k, v in _DT.items()}


def save(path, tensors, metadata=None):
    """Write {name: numpy array} (and an optional {str: str} metadata map)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    # descending dtype size, then name (the reference writer's order): every
    # tensor then starts at a multiple of its own alignment in the file
    order = sorted(tensors, key=lambda k: (-np.asarray(tensors[k]).dtype.itemsize, k))
    for name in order:
        a = np.ascontiguousarray(tensors[name])
        key = a.dtype.newbyteorder("<").str if a.dtype.byteorder == ">" else a.dtype.str
        if key not in _NAME:
            raise ValueError("%s: unsupported dtype %s" % (name, a.dtype))
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAME[key], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Return ({name: numpy array}, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode())
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        dt = np.dtype(_DT[d["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(d["shape"]).copy()
    return out, meta
