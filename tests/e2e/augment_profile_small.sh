#!/usr/bin/env bash
# The `small` augmentation profile end to end (augment/profile.h): MNIST idx
# input ingested with --profile small records flips allowed and no colour;
# its workers crop mildly and flip; ingest --no_flip turns the flips off; and
# MNIST idx input without --profile still gets `digits` (no flips).
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
cd "$TMPDIR"
src=/usr/share/datasets/fashion-mnist
[ -f $src/train-images-idx3-ubyte.gz ] || { echo "dataset-fashion-mnist is not installed"; exit 77; }
ingest() {   # ingest DIR FLAGS...
  local dir=$1; shift
  "$DEEPER_BIN/deeper-ingest" --train_images $src/train-images-idx3-ubyte.gz --train_labels $src/train-labels-idx1-ubyte.gz \
    --validation_images $src/t10k-images-idx3-ubyte.gz --validation_labels $src/t10k-labels-idx1-ubyte.gz \
    --output_directory "$dir" --train_shards 1 --validation_shards 1 --num_threads 1 --max_examples 64 --quiet "$@" >/dev/null
}
ingest small --profile small
ingest small_noflip --profile small --no_flip
ingest default
$PY - <<'PYEOF'
import json
for d, want in (("small", ("small", True, False)), ("small_noflip", ("small", False, False)),
                ("default", ("digits", False, False))):
    a = json.load(open(d + "/manifest.json"))["augment"]
    got = (a["profile"], a["flip"], a["color"])
    assert got == want, (d, got, want)
PYEOF
grep -q "augment profile: small (flip yes, color no)" <<<"$("$DEEPER_BIN/deeper-info" small)" || { "$DEEPER_BIN/deeper-info" small; exit 1; }
"$AUG" --data_dir small --dump 64 --dump_dir d1 --image_size 28 2>log1.txt
grep -q "small profile; crop on, flip on, colour off" log1.txt || { cat log1.txt; exit 1; }
"$AUG" --data_dir small_noflip --dump 2 --dump_dir d2 --image_size 28 2>log2.txt
grep -q "small profile; crop on, flip off, colour off" log2.txt || { cat log2.txt; exit 1; }
# the same examples with flips forced off: about half of the small-profile
# images must differ from them only by a mirror (crops are keyed identically)
"$AUG" --data_dir small --dump 64 --dump_dir d3 --image_size 28 --no_flip 2>log3.txt
$PY - <<'PYEOF'
import glob, os
import numpy as np
from PIL import Image
flipped = same = 0
for f in sorted(glob.glob("d1/*.png")):
    a = np.asarray(Image.open(f)).astype(int); b = np.asarray(Image.open("d3/" + os.path.basename(f))).astype(int)
    if np.array_equal(a, b): same += 1
    elif np.abs(a - b[:, ::-1]).max() <= 1: flipped += 1
    else: raise SystemExit("%s: neither equal nor mirrored" % f)
print("small profile: %d of %d images flipped" % (flipped, flipped + same))
assert 16 <= flipped <= 48, flipped
PYEOF
echo "small profile ok"
