#!/usr/bin/python3
"""safetensors_np.py -- read and write safetensors files with numpy and json.

Debian has no `safetensors` Python package, and the format is small: an
8-byte little-endian header length N, N bytes of JSON mapping each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
the data buffer, end exclusive) plus an optional "__metadata__" map of
strings, then the raw little-endian row-major data.

The one numpy implementation in the tree, independent of deeper's C reader
and writer (shared/safetensors.c) so each checks the other:
  - save() pads the header with spaces to a multiple of 8 and stores tensors
    by descending dtype size, then name, as the reference writer does, so
    readers that map the file get aligned data;
  - load() applies the reference checks: offsets contiguous from 0, each
    tensor's byte size matching its dtype and shape, no bytes after the last.

Imported by scripts/ref/inception_ref.py, scripts/ref/nielsennet_ref.py and
the end-to-end tests (sys.path gets scripts/ref); run as a program by the
format tests:
  safetensors_np.py dump FILE    print {"meta": {...}, "tensors": {name: {dtype, shape, sum, first}}}
  safetensors_np.py write FILE   write a fixed test file (F32, I64, U8, F64 tensors + metadata)
"""
import json
import struct
import sys

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
    # asarray keeps 0-d shapes (ascontiguousarray would make them [1])
    arrays = {k: np.asarray(v, order="C") for k, v in tensors.items()}
    # descending dtype size, then name (the reference writer's order): every
    # tensor then starts at a multiple of its own alignment in the file
    for name in sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k)):
        a = arrays[name]
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
    """Return ({name: numpy array}, metadata dict); raises ValueError on a
    malformed file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    pos = 0
    for b, e, name in sorted((d["data_offsets"][0], d["data_offsets"][1], k) for k, d in header.items()):
        if b != pos:
            raise ValueError("%s: offsets not contiguous at %s" % (path, name))
        pos = e
    if pos != len(data):
        raise ValueError("%s: data buffer %d bytes, header says %d" % (path, len(data), pos))
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        dt = np.dtype(_DT[d["dtype"]]).newbyteorder("<")
        if e - b != int(np.prod(d["shape"], dtype=np.int64)) * dt.itemsize:
            raise ValueError("%s: %s has %d bytes for shape %s" % (path, name, e - b, d["shape"]))
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(d["shape"]).copy()
    return out, meta


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "dump":
        t, meta = load(path)
        res = {"meta": meta, "tensors": {}}
        for k, a in t.items():
            res["tensors"][k] = {"dtype": str(a.dtype), "shape": list(a.shape),
                                 "sum": float(a.astype(np.float64).sum()),
                                 "first": float(a.reshape(-1)[0]) if a.size else None}
        print(json.dumps(res, sort_keys=True))
    elif cmd == "write":
        t = {
            "conv.weight": (np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5) * 0.25 - 10),
            "bn.num_batches_tracked": np.array(7, dtype=np.int64),
            "labels": np.arange(10, dtype=np.uint8),
            "fc.bias": np.linspace(-1, 1, 7).astype(np.float64),
        }
        save(path, t, {"step": "42", "model": "test"})
    else:
        sys.exit("safetensors_np.py: unknown command %s (dump or write)" % cmd)


if __name__ == "__main__":
    main()
