#!/usr/bin/env bash
# ingest_boxes.sh — `--bounding_box_file` (TF's process_bounding_boxes.py
# CSV: file name,xmin,ymin,xmax,ymax) puts each image's boxes into its record
# (version 2, ymin,xmin,ymax,xmax, clipped to [0,1]) for raw and JPEG storage
# and through tasks; images without a line get none; a malformed line is
# refused with its line number; `deeper augment` reads the dataset and its
# crops cover at least 0.1 of a box.
set -euo pipefail
D="$DEEPER_BIN"
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
cd "$TMPDIR"

/usr/bin/python3 - <<'EOF2'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(9)
lines = []
for c in ("n01", "n02"):
    os.makedirs("tree/" + c, exist_ok=True)
    for i in range(6):
        name = "%s_%d.JPEG" % (c, i)
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save("tree/%s/%s" % (c, name), quality=90)
        if i % 3 == 0:
            continue                       # no box
        lines.append("%s,%.4f,%.4f,%.4f,%.4f" % (name, 0.1 * i / 6, 0.2, 0.5 + 0.05 * i, 0.9))
        if i == 5:
            lines.append("%s,-0.2,0.0,1.3,0.25" % name)   # clipped to [0,1]
open("boxes.csv", "w").write("\n".join(lines) + "\n")
EOF2

for store in raw jpeg; do
  "$D/deeper" ingest --train_directory tree --output_directory $store --store $store --train_shards 2 \
    --bounding_box_file boxes.csv --quiet > /dev/null 2>&1
  "$D/deeper" info --verify $store > /dev/null
done
for i in 0 1; do
  "$D/deeper" ingest --train_directory tree --output_directory tasks --train_shards 2 --bounding_box_file boxes.csv \
    --quiet --num_tasks 2 --task_index $i > /dev/null 2>&1
done
"$D/deeper" ingest --finalize tasks > /dev/null
cmp raw/train-00000-of-00002.mdb tasks/train-00000-of-00002.mdb
cmp raw/train-00001-of-00002.mdb tasks/train-00001-of-00002.mdb
/usr/bin/python3 - "$CHECK" <<'EOF2'
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ingest_check
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import assert_close
exp = {}
for line in open("boxes.csv"):
    n, x0, y0, x1, y1 = line.strip().split(",")
    c = lambda v: min(1.0, max(0.0, float(v)))
    exp.setdefault(n, []).append((c(y0), c(x0), c(y1), c(x1)))
for d in ("raw", "jpeg"):
    m, recs = ingest_check.read_dataset(d)
    assert len(recs) == 12
    allg, allw = [], []
    for (sub, name), r in recs.items():
        want = exp.get(os.path.basename(name), [])
        got = r["boxes"]
        assert len(got) == len(want), (d, name, got, want)
        allg += [list(g) for g in got]
        allw += [list(w) for w in want]
    assert_close("%s: %d boxes" % (d, len(allg)), allg, allw, 1e-6)
print("boxes round-trip")
EOF2
# a malformed line is refused with its number
printf 'a.JPEG,0.1,0.2,0.3,0.4\nb.JPEG,0.1,zero,0.3,0.4\n' > bad.csv
if "$D/deeper" ingest --train_directory tree --output_directory bad --bounding_box_file bad.csv > bad.log 2>&1; then
  echo "malformed box file accepted"; exit 1
fi
grep -q "bad.csv:2: expected file name,xmin,ymin,xmax,ymax" bad.log
# the augment workers crop with the boxes: images blue but for a small red box in a corner; every
# distorted image of them must show red (a crop covers >= 0.1 of the box), while crops made without
# the boxes often miss it
/usr/bin/python3 - <<'EOF2'
import os
import numpy as np
from PIL import Image
os.makedirs("corner/c", exist_ok=True)
lines = []
for i in range(40):
    a = np.zeros((200, 200, 3), np.uint8); a[..., 2] = 255
    a[0:24, 0:24] = (255, 0, 0)
    Image.fromarray(a).save("corner/c/%02d.png" % i)
    lines.append("%02d.png,0,0,0.12,0.12" % i)
open("corner.csv", "w").write("\n".join(lines) + "\n")
EOF2
"$D/deeper" ingest --train_directory corner --output_directory cb --bounding_box_file corner.csv --quiet > /dev/null 2>&1
"$D/deeper" ingest --train_directory corner --output_directory cn --quiet > /dev/null 2>&1
for d in cb cn; do
  "$D/deeper" augment --data_dir $d --dump 200 --dump_dir dump_$d --image_size 64 --nocolor --noflip --quiet > /dev/null
done
/usr/bin/python3 - <<'EOF2'
import glob
import numpy as np
from PIL import Image
def red(d):
    n = 0
    files = sorted(glob.glob(d + "/*.png"))
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB")).astype(int)
        n += bool(((a[..., 0] > 128) & (a[..., 2] < 128)).any())
    return n, len(files)
rb, nb = red("dump_cb"); rn, nn = red("dump_cn")
print("crops showing the box: %d/%d with boxes, %d/%d without" % (rb, nb, rn, nn))
assert nb == 200 and rb == nb, (rb, nb)
assert rn < 0.8 * nn, (rn, nn)
EOF2
echo ok
