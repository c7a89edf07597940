#!/usr/bin/python3
"""ingest_check.py — independent reader for ingest end-to-end tests.

Reads a dataset directory with nothing from deeper: manifest.json with json,
shards with `mdb_dump -n` (lmdb-utils), records parsed from proto/record.md,
and checks them against what the test expects:

  ingest_check.py DATA --tree expected.json
      expected.json maps source name ("class/file") -> [label, h, w, c, sha256 of
      the HWC pixels]; every expected image must appear exactly once, nothing else.
  ingest_check.py DATA --mnist IMAGES.gz LABELS.gz [--limit N]
      every record named "<IMAGES basename>:i" must hold image i and label i;
      the ids must cover the first N images (all if no limit) exactly once.

Also checks: counts in the manifest equal the records, keys ascend and lie in
each shard's id range, the record CRC-32C, the shard content checksum.
Prints "ok N records" or raises.
"""
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys

# CRC-32C from the TensorBoard reader (Python, also independent of deeper's C)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from tb_read import crc32c  # noqa: E402


def dump(path):
    out = subprocess.run(["mdb_dump", "-n", path], check=True, capture_output=True, text=True).stdout
    lines = out.split("\n")
    i = lines.index("HEADER=END") + 1
    pairs = []
    while i + 1 < len(lines) and lines[i].startswith(" "):
        pairs.append((bytes.fromhex(lines[i].strip()), bytes.fromhex(lines[i + 1].strip())))
        i += 2
    return pairs


def parse_record(v, check_crc=True):
    """Version 2 (CRC over the value but its CRC field; boxes) or 1 (payload CRC)."""
    assert v[:4] == b"DRC1", "magic"
    version, storage, channels, label, h, w, crc, plen, nlen, nbox = struct.unpack_from("<HBBiIIIIHH", v, 4)
    assert version in (1, 2)
    if version == 1:
        assert nbox == 0
    pad = (nlen + 7) & ~7
    assert len(v) == 32 + pad + 16 * nbox + plen, "value size"
    assert v[32 + nlen:32 + pad] == bytes(pad - nlen), "name padding"
    name = v[32:32 + nlen].decode("utf-8", "surrogateescape")
    boxes = [struct.unpack_from("<4f", v, 32 + pad + 16 * i) for i in range(nbox)]
    for b in boxes:
        assert all(0.0 <= c <= 1.0 for c in b) and b[0] <= b[2] and b[1] <= b[3], b
    payload = v[32 + pad + 16 * nbox:]
    if check_crc:
        if version == 1:
            assert crc32c(payload) == crc, "payload crc"
        else:
            assert crc32c(v[24:], crc32c(v[:20])) == crc, "record crc"
    if storage == 0:
        assert plen == h * w * channels
    return dict(label=label, h=h, w=w, c=channels, storage=storage, name=name, payload=payload, boxes=boxes,
                version=version)


def read_dataset(d, fast_crc=False):
    m = json.load(open(os.path.join(d, "manifest.json")))
    recs = {}
    for sname, sub in m["subsets"].items():
        total = 0
        for sh in sub["shards"]:
            pairs = dump(os.path.join(d, sh["file"]))
            assert len(pairs) == sh["records"], (sh["file"], len(pairs), sh["records"])
            total += len(pairs)
            content = 0
            last = -1
            for k, v in pairs:
                key = struct.unpack(">Q", k)[0]
                assert key > last
                last = key
                assert sh["first_id"] <= key <= sh["last_id"], (key, sh)
                if not fast_crc:
                    content = crc32c(k + v, content)
                r = parse_record(v) if not fast_crc else parse_record_nocrc(v)
                r["key"] = key
                r["subset"] = sname
                assert (sname, r["name"]) not in recs, "duplicate " + r["name"]
                recs[(sname, r["name"])] = r
            if not fast_crc:
                assert "%08x" % content == sh["checksum"], (sh["file"], "%08x" % content, sh["checksum"])
        assert total == sub["count"]
    return m, recs


def parse_record_nocrc(v):
    return parse_record(v, check_crc=False)


def main():
    d = sys.argv[1]
    mode = sys.argv[2]
    if mode == "--tree":
        exp = json.load(open(sys.argv[3]))
        m, recs = read_dataset(d)
        got = {name: r for (_, name), r in recs.items()}
        assert set(got) == set(exp), ("missing", sorted(set(exp) - set(got)), "extra", sorted(set(got) - set(exp)))
        for name, (label, h, w, c, sha) in exp.items():
            r = got[name]
            assert (r["label"], r["h"], r["w"], r["c"]) == (label, h, w, c), (name, r["label"], r["h"], r["w"], r["c"],
                                                                           label, h, w, c)
            assert hashlib.sha256(r["payload"]).hexdigest() == sha, "pixels differ: " + name
        print("ok %d records" % len(recs))
    elif mode == "--mnist":
        limit = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--limit" else None
        imgs = gzip.open(sys.argv[3]).read()
        labs = gzip.open(sys.argv[4]).read()
        n, rows, cols = struct.unpack(">III", imgs[4:16])
        if limit:
            n = min(n, limit)
        m, recs = read_dataset(d, fast_crc=True)
        seen = set()
        base = os.path.basename(sys.argv[3]) + ":"
        mine = [(name, r) for (_, name), r in recs.items() if name.startswith(base)]
        for name, r in mine:
            i = int(name.rsplit(":", 1)[1])
            assert i < n and i not in seen
            seen.add(i)
            px = imgs[16 + i * rows * cols: 16 + (i + 1) * rows * cols]
            assert r["payload"] == px, "pixels of image %d" % i
            assert r["label"] == labs[8 + i] + m["label_offset"], "label of image %d" % i
        assert len(seen) == n, (len(seen), n)
        print("ok %d records" % len(mine))
    else:
        raise SystemExit("usage")


if __name__ == "__main__":
    main()
