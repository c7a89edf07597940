#!/usr/bin/env python3
"""ckpt_edit.py SRC DST OP ARGS... : write a changed copy of a safetensors checkpoint
(for tests of what a damaged or hostile checkpoint does; standard library only).

  set-meta KEY VALUE        set __metadata__[KEY] (the header is rewritten)
  del-meta KEY              remove __metadata__[KEY]
  strip-crc                 remove every crc32c/* key and say format_version 1 (an old checkpoint)
  rename OLD NEW            rename tensor OLD (its crc32c key stays as it was)
  drop TENSOR               remove a tensor's header entry and its bytes
  poke TENSOR INDEX VALUE   set float32 element INDEX of TENSOR to VALUE (header untouched)
  add-sparse NAME NUMEL     append an F32 tensor of NUMEL zeros as a hole (sparse file),
                            with a crc32c key that does not match
"""
import json, struct, sys

def load(path):
    b = open(path, "rb").read()
    n, = struct.unpack("<Q", b[:8])
    return json.loads(b[8:8 + n]), b[8 + n:]

def save(path, header, data, extra_hole=0):
    j = json.dumps(header, separators=(",", ":")).encode()
    j += b" " * (-len(j) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(j)) + j + data)
        if extra_hole:
            f.truncate(8 + len(j) + len(data) + extra_hole)

def main():
    src, dst, op, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    h, data = load(src)
    meta = h.setdefault("__metadata__", {})
    hole = 0
    if op == "set-meta":
        meta[args[0]] = args[1]
    elif op == "del-meta":
        del meta[args[0]]
    elif op == "strip-crc":
        for k in [k for k in meta if k.startswith("crc32c/")]:
            del meta[k]
        meta["format_version"] = "1"
    elif op == "rename":
        h[args[1]] = h.pop(args[0])
    elif op == "drop":
        t = h.pop(args[0])
        b, e = t["data_offsets"]
        data = data[:b] + data[e:]
        for k, v in h.items():
            if k != "__metadata__" and v["data_offsets"][0] >= e:
                v["data_offsets"] = [v["data_offsets"][0] - (e - b), v["data_offsets"][1] - (e - b)]
    elif op == "poke":
        t = h[args[0]]
        off = t["data_offsets"][0] + 4 * int(args[1])
        data = data[:off] + struct.pack("<f", float(args[2])) + data[off + 4:]
    elif op == "add-sparse":
        numel = int(args[1])
        end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
        h[args[0]] = {"dtype": "F32", "shape": [numel], "data_offsets": [end, end + 4 * numel]}
        meta["crc32c/" + args[0]] = "00000000"
        hole = 4 * numel
    else:
        sys.exit("unknown op " + op)
    save(dst, h, data, hole)

main()
