#!/usr/bin/env bash
# ingest_roundtrip.sh — a generated class-per-folder tree and a Fashion-MNIST
# subset go through `deeper ingest` with 1 and 2 worker processes; an
# independent reader (ingest_check.py: json + mdb_dump) checks that every
# pixel and label round-trips exactly (raw storage), that counts match, that
# the shuffle does not depend on the number of processes, and `deeper info
# --verify` agrees.  Also --store jpeg, --resize_short and --background_class.
set -euo pipefail
D="$DEEPER_BIN"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f $FM/train-images-idx3-ubyte.gz ]; then
  echo "skip: Debian's dataset-fashion-mnist is not installed (its round trip is half of this test)"; exit 77
fi
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
cd "$TMPDIR"

/usr/bin/python3 - <<'EOF'
import hashlib, json, os
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
exp = {}
classes = ["cat", "dog", "zebra crossing"]          # sorted: labels 0, 1, 2
for label, cls in enumerate(classes):
    os.makedirs("tree/" + cls, exist_ok=True)
    for i in range(7):
        h, w = int(rng.integers(5, 40)), int(rng.integers(5, 40))
        kind = i % 4
        name = "%s/img_%d%s" % (cls, i, [".png", ".png", ".jpg", ".JPEG"][kind])
        yy, xx = np.mgrid[0:h, 0:w]
        rgb = np.stack([(xx * 7 + i) % 256, (yy * 5 + label * 40) % 256, (xx + yy) * 3 % 256], -1).astype(np.uint8)
        if kind == 0:
            im = Image.fromarray(rgb)
            im.save("tree/" + name)
        elif kind == 1:
            im = Image.fromarray(rgb[..., 0])             # gray PNG -> stored as RGB
            im.save("tree/" + name)
        else:
            im = Image.fromarray(rgb)
            im.save("tree/" + name, format="JPEG", quality=92)
        dec = np.asarray(Image.open("tree/" + name).convert("RGB"))
        exp[name] = [label, h, w, 3, hashlib.sha256(dec.tobytes()).hexdigest()]
# an odd name and a nested folder
im = Image.fromarray(np.full((6, 9, 3), 77, np.uint8))
odd = "dog/sub dir/ünïcödé -x.png"
os.makedirs("tree/dog/sub dir", exist_ok=True)
im.save("tree/" + odd)
exp[odd] = [1, 6, 9, 3, hashlib.sha256(np.asarray(im).tobytes()).hexdigest()]
json.dump(exp, open("expected.json", "w"))
EOF

for n in 1 2; do
  "$D/deeper" ingest --train_directory tree --output_directory out$n --train_shards 3 --num_threads $n --quiet
  /usr/bin/python3 "$CHECK" out$n --tree expected.json
  "$D/deeper" info --verify out$n > info$n.txt
  grep -q "verify: OK, 22 records" info$n.txt
  grep -q "zebra crossing" out$n/labels.txt
done
# same seed and shard count: identical shards whatever the number of processes
diff <(grep checksum out1/manifest.json) <(grep checksum out2/manifest.json)
# a different seed changes the order
"$D/deeper" ingest --train_directory tree --output_directory out3 --train_shards 3 --seed 99 --quiet
if diff -q <(grep checksum out1/manifest.json) <(grep checksum out3/manifest.json) >/dev/null; then
  echo "FAIL: --seed 99 gave the same shards as the default seed"; exit 1
fi

# --store jpeg keeps JPEG bytes, re-encodes PNGs; --background_class shifts labels
"$D/deeper" ingest --train_directory tree --validation_directory tree --output_directory outj --store jpeg \
  --background_class --quiet --profile photo --no_flip
CHECKDIR=$(dirname "$CHECK") /usr/bin/python3 - <<'EOF'
import io, json, os, sys
sys.path.insert(0, os.environ["CHECKDIR"])
import ingest_check
import numpy as np
from PIL import Image
m, recs = ingest_check.read_dataset("outj")
assert m["storage"] == "jpeg" and m["label_offset"] == 1 and m["num_labels"] == 4
assert m["augment"] == {"profile": "photo", "flip": False, "color": True}, m["augment"]
assert set(m["subsets"]) == {"train", "validation"}
exp = json.load(open("expected.json"))
for (sub, name), r in recs.items():
    assert r["payload"][:3] == b"\xff\xd8\xff"
    assert r["label"] == exp[name][0] + 1
    if name.lower().endswith((".jpg", ".jpeg")):
        assert r["payload"] == open("tree/" + name, "rb").read(), "JPEG kept as is: " + name
    im = np.asarray(Image.open(io.BytesIO(r["payload"])).convert("RGB"))
    assert im.shape == (r["h"], r["w"], 3)
print("ok jpeg storage", len(recs))
EOF

# --resize_short bounds the short side, keeps the aspect ratio
"$D/deeper" ingest --train_directory tree --output_directory outr --resize_short 8 --quiet
CHECKDIR=$(dirname "$CHECK") /usr/bin/python3 - <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["CHECKDIR"])
import ingest_check
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import assert_close
m, recs = ingest_check.read_dataset("outr")
exp = json.load(open("expected.json"))
for (_, name), r in recs.items():
    h, w = exp[name][1], exp[name][2]
    if min(h, w) <= 8:
        assert (r["h"], r["w"]) == (h, w)
    else:
        assert min(r["h"], r["w"]) == 8, (name, r["h"], r["w"])
        assert_close("aspect ratio of " + name, r["h"] / r["w"], h / w, 0.2)
assert m["image"]["max_height"] <= 40
print("ok resize", len(recs))
EOF

# Fashion-MNIST subset, 1 and 2 processes, every pixel and label
for n in 1 2; do
  "$D/deeper" ingest --train_images $FM/train-images-idx3-ubyte.gz --train_labels $FM/train-labels-idx1-ubyte.gz \
    --validation_images $FM/t10k-images-idx3-ubyte.gz --validation_labels $FM/t10k-labels-idx1-ubyte.gz \
    --max_examples 1500 --train_shards 4 --validation_shards 2 --num_threads $n --output_directory fm$n --quiet
  /usr/bin/python3 "$CHECK" fm$n --mnist $FM/train-images-idx3-ubyte.gz $FM/train-labels-idx1-ubyte.gz --limit 1500 \
    | grep -q "ok 1500 records"
  /usr/bin/python3 "$CHECK" fm$n --mnist $FM/t10k-images-idx3-ubyte.gz $FM/t10k-labels-idx1-ubyte.gz --limit 1500 \
    | grep -q "ok 1500 records"
  "$D/deeper" info --verify fm$n | grep -q "verify: OK, 3000 records"
  grep -q '"profile":	"digits"' fm$n/manifest.json
done
diff <(grep checksum fm1/manifest.json) <(grep checksum fm2/manifest.json)
echo ok
