#!/usr/bin/python3
"""safetensors_np.py - an independent safetensors reader/writer in numpy + json.

There is no `safetensors` Python package on these machines, so the tests use
this few-line implementation of the format (8-byte LE header length, JSON
header, data buffer) to check deeper's C writer and reader against each other.

  safetensors_np.py dump FILE      print {"meta": {...}, "tensors": {name: {dtype, shape, sum, first}}}
  safetensors_np.py write FILE     write a fixed test file (F32, I64, U8, F64 tensors + metadata)
The reader applies the reference checks: offsets contiguous, sizes match, exact file size.
"""
import json
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
      "I8": np.int8, "U16": np.uint16, "I16": np.int16, "F16": np.float16, "U32": np.uint32,
      "U64": np.uint64, "BOOL": np.bool_}


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = buf[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for b, e, k in spans:
        assert b == pos, "offsets not contiguous at %s" % k
        pos = e
    assert pos == len(data), "file size mismatch: buffer %d, header says %d" % (len(data), pos)
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        dt = np.dtype(DT[v["dtype"]]).newbyteorder("<")
        shape = v["shape"]
        assert e - b == int(np.prod(shape, dtype=np.int64)) * dt.itemsize, "size mismatch for %s" % k
        out[k] = np.frombuffer(data[b:e], dtype=dt).reshape(shape)
    return meta, out


def write(path, tensors, meta):
    header = {"__metadata__": meta} if meta else {}
    off = 0
    blobs = []
    inv = {v: k for k, v in DT.items()}
    for k in sorted(tensors):
        a = np.array(tensors[k], order="C")  # keeps 0-d shapes (ascontiguousarray would not)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": inv[a.dtype.type], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "dump":
        meta, t = read(path)
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
        write(path, t, {"step": "42", "model": "test"})
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
