#!/usr/bin/env bash
# ingest_lists.sh — inputs from lists: `--train_list` with path<TAB>label
# lines (classes: the sorted labels), and TF's form, a CSV of path,label with
# a header plus --labels_file (labels by name or by number); relative paths
# are relative to the list.  Every record carries the listed label; unknown
# labels, malformed lines and missing files are rejections naming the list
# line or the file; a list split over tasks gives the same shards.
set -euo pipefail
D="$DEEPER_BIN"
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
cd "$TMPDIR"

/usr/bin/python3 - <<'EOF2'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(3)
os.makedirs("imgs/sub", exist_ok=True)
tsv, csv = [], ["path,label"]
labels = ["zebra", "ant", "moth"]                   # labels_file order: zebra=0, ant=1, moth=2
for i in range(18):
    a = rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8)
    name = "imgs/%s%02d.png" % ("sub/" if i % 3 == 0 else "", i)
    Image.fromarray(a).save(name)
    lab = labels[i % 3]
    tsv.append("%s\t%s" % (name, lab))
    csv.append("%s,%s" % (os.path.abspath(name) if i % 2 else name, lab if i % 4 else str(labels.index(lab))))
tsv += ["imgs/missing.png\tant", "no label on this line"]
csv += ["imgs/00.png,butterfly"]
open("train.tsv", "w").write("\n".join(tsv) + "\n")
open("train.csv", "w").write("\n".join(csv) + "\n")
open("labels.txt", "w").write("\n".join(labels) + "\n")
EOF2

# path<TAB>label, classes sorted: ant=0, moth=1, zebra=2
"$D/deeper" ingest --train_list train.tsv --output_directory tsv --train_shards 2 --quiet > /dev/null 2>&1
printf 'ant\nmoth\nzebra\n' | cmp - tsv/labels.txt
grep -q "imgs/missing.png	cannot open" tsv/rejected.txt
grep -q "train.tsv:20	expected path<TAB>label or path,label" tsv/rejected.txt
# CSV + labels_file: names and numbers; an unknown label is a rejection
"$D/deeper" ingest --train_list train.csv --labels_file labels.txt --output_directory csv --train_shards 3 \
  --quiet > /dev/null 2>&1
cmp labels.txt csv/labels.txt
grep -q "train.csv:20	label 'butterfly' is not a class of --labels_file" csv/rejected.txt
/usr/bin/python3 - "$CHECK" <<'EOF2'
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ingest_check
for d, order in (("tsv", ["ant", "moth", "zebra"]), ("csv", ["zebra", "ant", "moth"])):
    m, recs = ingest_check.read_dataset(d)
    assert m["subsets"]["train"]["count"] == 18, (d, m["subsets"]["train"]["count"])
    seen = set()
    for (sub, name), r in recs.items():
        i = int(os.path.basename(name)[:2])
        assert order[r["label"]] == ["zebra", "ant", "moth"][i % 3], (d, name, r["label"])
        assert r["h"] == 10 + i and r["w"] == 12, (d, name)
        seen.add(i)
    assert seen == set(range(18)), (d, seen)
EOF2
"$D/deeper" info --verify csv > /dev/null
# the same list over two tasks
for i in 1 0; do
  "$D/deeper" ingest --train_list train.csv --labels_file labels.txt --output_directory csv2 --train_shards 3 --quiet \
    --num_tasks 2 --task_index $i > /dev/null 2>&1
done
"$D/deeper" ingest --finalize csv2 > /dev/null
for f in csv/*.mdb; do cmp "$f" "csv2/$(basename "$f")"; done
cmp csv/rejected.txt csv2/rejected.txt
# a list and a folder together is a usage error
if "$D/deeper" ingest --train_list train.tsv --train_directory imgs --output_directory bad > bad.log 2>&1; then
  echo "two kinds of input accepted"; exit 1
fi
grep -q "give one kind of input" bad.log
echo ok
