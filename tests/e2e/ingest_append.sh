#!/usr/bin/env bash
# ingest_append.sh — `deeper ingest --append` adds new images as new shards
# with new ids: the existing shard files are not touched (same bytes, same
# inode and mtime), the manifest lists old and new shards with
# dataset_version 2 (then 3) and an `appended` entry per append, ids do not
# overlap, the dataset verifies; an unknown class or a directory without a
# dataset is refused and leaves the dataset as it was.
set -euo pipefail
D="$DEEPER_BIN"
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
cd "$TMPDIR"

/usr/bin/python3 - <<'EOF2'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(5)
for root, n, classes in (("a", 10, "xyz"), ("b", 7, "xz"), ("c", 3, "y"), ("bad", 2, "xq")):
    for cl in classes:
        os.makedirs("%s/%s" % (root, cl), exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (9 + i, 11, 3), dtype=np.uint8)).save("%s/%s/%s%d.png" % (root, cl, root, i))
EOF2

"$D/deeper" ingest --train_directory a --validation_directory c --output_directory ds --train_shards 3 \
  --validation_shards 1 --quiet > /dev/null 2>&1
stamp() { for f in ds/*.mdb; do stat -c '%n %i %Y %s' "$f"; sha256sum "$f"; done; }
stamp > before.txt
cp ds/manifest.json v1.json

"$D/deeper" ingest --append --train_directory b --output_directory ds --train_shards 2 --quiet > /dev/null 2>&1
ls ds/train-v2-00000-of-00002.mdb ds/train-v2-00001-of-00002.mdb > /dev/null
stamp | grep -v -- "-v2-" | diff before.txt -
"$D/deeper" info --verify ds > /dev/null
/usr/bin/python3 - "$CHECK" <<'EOF2'
import json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ingest_check
m = json.load(open("ds/manifest.json"))
old = json.load(open("v1.json"))
assert m["dataset_version"] == 2 and len(m["appended"]) == 1 and m["appended"][0]["version"] == 2, m.get("appended")
assert "--append" in m["appended"][0]["command"]
assert m["made"] == old["made"] and m["classes"] == old["classes"]
tr = m["subsets"]["train"]
assert tr["shards"][:3] == old["subsets"]["train"]["shards"], "old shards changed in the manifest"
assert tr["count"] == 30 + 14, tr["count"]
oldmax = max(s["last_id"] for s in old["subsets"]["train"]["shards"])
assert all(s["first_id"] > oldmax for s in tr["shards"][3:]), tr["shards"]
m2, recs = ingest_check.read_dataset("ds")
names = {n for (sub, n) in recs if sub == "train"}
assert len(names) == 44 and sum(1 for n in names if "/b" in n) == 14, len(names)
for (sub, n), r in recs.items():
    assert ["x", "y", "z"][r["label"]] == n.split("/")[0], n
EOF2

# a second append, to validation this time: version 3
"$D/deeper" ingest --append --validation_directory b --output_directory ds --validation_shards 1 --quiet > /dev/null 2>&1
/usr/bin/python3 -c '
import json
m = json.load(open("ds/manifest.json"))
assert m["dataset_version"] == 3 and [a["version"] for a in m["appended"]] == [2, 3]
assert m["subsets"]["validation"]["count"] == 3 + 14
assert [s["file"] for s in m["subsets"]["validation"]["shards"]] == ["validation-00000-of-00001.mdb", "validation-v3-00000-of-00001.mdb"]'
"$D/deeper" info --verify ds > /dev/null
stamp | grep -v -- "-v[23]-" | diff before.txt -

# refused: a class the dataset does not have; no dataset at all
cp ds/manifest.json v3.json
if "$D/deeper" ingest --append --train_directory bad --output_directory ds --quiet > bad.log 2>&1; then
  echo "append with a new class accepted"; exit 1
fi
grep -q "class folder 'q' is not a class of the dataset" bad.log
cmp v3.json ds/manifest.json
mkdir -p none
if "$D/deeper" ingest --append --train_directory b --output_directory none > none.log 2>&1; then
  echo "append without a dataset accepted"; exit 1
fi
grep -q "holds no dataset" none.log
# a plain ingest into the directory starts over: the appended shards go too
"$D/deeper" ingest --train_directory a --output_directory ds --train_shards 3 --quiet > /dev/null 2>&1
if ls ds/*-v2-* 2>/dev/null; then echo "FAIL: a plain ingest into the directory left the appended shards"; exit 1; fi
echo ok
