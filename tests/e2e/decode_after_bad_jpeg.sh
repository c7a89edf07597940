#!/usr/bin/env bash
# decode_after_bad_jpeg.sh — a broken JPEG never spoils the valid files decoded
# after it in the same process.  Three valid photographs, each beside JPEGs
# that are broken in the ways seen in the wild (cut to 400 bytes, scan removed,
# bogus Huffman table, cut before the scan, early EOI in the scan):
#  - ingest (one worker, so every file goes through one decoder; then two):
#    all three valid ones accepted with the pixels PIL gives, rejected.txt
#    lists exactly the broken ones;
#  - classify, given each broken file followed by a valid one: every valid
#    file gets the same answer as when it is classified alone.
set -euo pipefail
D="$DEEPER_BIN"
CHECK="$(cd "$(dirname "$0")" && pwd)/ingest_check.py"
PY=${DEEPER_PY:-/usr/bin/python3}
source "$(dirname "$0")/check_lib.bash"
need_programs ingest augment train classify
need_py_modules "$PY" numpy PIL
cd "$TMPDIR"

"$PY" - <<'EOF'
import hashlib, io, json, os
import numpy as np
from PIL import Image
exp = {}
bad = []
def photo(h, w, s):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 5 + yy * 3 + s) % 256, (yy * 7 + s * 3) % 256, ((xx ^ yy) * 3 + s) % 256], -1).astype(np.uint8)
for k, cls in enumerate(["cat", "dog", "owl"]):
    os.makedirs("tree/" + cls, exist_ok=True)
    buf = io.BytesIO(); Image.fromarray(photo(96, 128, 40 * k + 1)).save(buf, "JPEG", quality=90); j = buf.getvalue()
    # names sort the broken files before and after the valid one
    open("tree/%s/b_photo.jpg" % cls, "wb").write(j)
    exp["%s/b_photo.jpg" % cls] = hashlib.sha256(np.asarray(Image.open(io.BytesIO(j)).convert("RGB")).tobytes()).hexdigest()
    sos = j.index(b"\xff\xda"); dht = j.index(b"\xff\xc4")
    broken = {
        "a_cut400.jpg": j[:400],
        "a_huffman.jpg": j[:dht + 5] + b"\xff" * 16 + j[dht + 21:],
        "c_noscan.jpg": j[:sos] + b"\xff\xd9",
        "c_cut_at_scan.jpg": j[:sos],
        "d_early_eoi.jpg": j[:sos + (len(j) - sos) // 2] + b"\xff\xd9" + j[sos + (len(j) - sos) // 2 + 2:],
    }
    for name, data in broken.items():
        open("tree/%s/%s" % (cls, name), "wb").write(data)
        bad.append("%s/%s" % (cls, name))
json.dump({"good": exp, "bad": sorted(bad)}, open("expected.json", "w"))
EOF

check_ingest() {   # output dir
  "$PY" - "$CHECK" "$1" <<'EOF'
import hashlib, json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ingest_check
out = sys.argv[2]
exp = json.load(open("expected.json"))
m, recs = ingest_check.read_dataset(out)
got = {n: hashlib.sha256(r["payload"]).hexdigest() for (_, n), r in recs.items()}
assert got == exp["good"], ("accepted", sorted(got), "expected", sorted(exp["good"]))
rej = sorted(l.split("\t")[1] for l in open(os.path.join(out, "rejected.txt")).read().splitlines())
assert rej == exp["bad"], ("rejected.txt", rej, "expected", exp["bad"])
print("ok", out, len(got), "accepted,", len(rej), "rejected")
EOF
}

for threads in 1 2; do
  "$D/deeper" ingest --train_directory tree --output_directory ds$threads --train_shards $threads \
    --validation_shards 0 --num_threads $threads > ingest$threads.out 2> ingest$threads.err || {
    cat ingest$threads.err; exit 1; }
  check_ingest ds$threads
  grep -q "^rejected: 15 " ingest$threads.out || { cat ingest$threads.out; exit 1; }
done

# classify goes through the same decoder: train a few steps for a checkpoint
"$D/deeper" train --data_dir ds1 --train_dir run --model nielsennet --max_steps 2 --batch_size 2 \
  --num_preprocess_threads 1 --save_interval_steps 2 --seed 1 > train.log 2>&1 || { tail train.log; exit 1; }
args=()
for cls in cat dog owl; do
  for b in a_cut400 a_huffman c_noscan c_cut_at_scan d_early_eoi; do args+=("tree/$cls/$b.jpg" "tree/$cls/b_photo.jpg"); done
done
set +e
"$D/deeper" classify --checkpoint_dir run "${args[@]}" > mixed.out 2> mixed.err
rc=$?
set -e
[ $rc -ne 0 ] || { echo "classify of broken files exited 0"; exit 1; }
nerr=$(grep -c "error" mixed.err || true)
[ "$nerr" -eq 15 ] || { echo "expected 15 error lines, got $nerr"; cat mixed.err; exit 1; }
for cls in cat dog owl; do
  "$D/deeper" classify --checkpoint_dir run "tree/$cls/b_photo.jpg" > alone.out
  n=$(grep -c "^tree/$cls/b_photo.jpg$" mixed.out || true)
  [ "$n" -eq 5 ] || { echo "$cls: valid photo classified $n times of 5"; cat mixed.err; exit 1; }
  # every block for this photo equals its block alone
  "$PY" - mixed.out alone.out "tree/$cls/b_photo.jpg" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines(); alone = open(sys.argv[2]).read().splitlines()
blocks = [lines[i:i + len(alone)] for i, l in enumerate(lines) if l == sys.argv[3]]
assert len(blocks) == 5 and all(b == alone for b in blocks), (blocks, alone)
EOF
done
echo ok
