#!/usr/bin/env bash
# inception_export.sh — `deeper export` writes a state_dict that torchvision's
# inception_v3 loads with strict=True.
#
# A seeded torchvision model is written as a deeper checkpoint (plain names,
# EMA shadows that differ from the raw values, RMSProp slots, no
# num_batches_tracked) by scripts/ref/inception_ref.py fake_ckpt; deeper
# export must keep only the model tensors, take the EMA values, add every
# num_batches_tracked (= the step), and torchvision must load the result with
# strict=True.  Bad usage and an empty directory must fail with one line.
set -euo pipefail
ROOT=${DEEPER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${DEEPER_BIN:-$ROOT/bin}
PY=/usr/bin/python3
source "$ROOT/tests/e2e/check_lib.bash"
need_py_modules $PY torch torchvision
T=${TMPDIR:-/tmp}/inception_export.$$
mkdir -p "$T/train"
trap 'rm -rf "$T"' EXIT

$PY "$ROOT/scripts/ref/inception_ref.py" fake_ckpt --out "$T/train" --num_classes 7 --step 7
"$BIN/deeper" export --checkpoint_dir "$T/train" --output "$T/model.safetensors"
$PY "$ROOT/scripts/ref/inception_ref.py" check_export "$T/model.safetensors" --num_classes 7 \
    --ckpt "$T/train/model.ckpt-7.safetensors"

# the raw weights on request
"$BIN/deeper" export --checkpoint_dir "$T/train" --output "$T/raw.safetensors" --noema
$PY - "$T/raw.safetensors" "$T/train/model.ckpt-7.safetensors" "$ROOT/scripts/ref" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[3])
import safetensors_np as st
raw, meta = st.load(sys.argv[1]); ck, _ = st.load(sys.argv[2])
assert meta["weights"] == "raw" and meta["format"] == "pt", meta
bad = [k for k, v in raw.items() if not k.endswith("num_batches_tracked") and ck[k].tobytes() != v.tobytes()]
assert not bad, bad[:3]
print("raw export: %d tensors equal the raw weights" % len(raw))
PYEOF

# usage errors: one line, non-zero exit
if "$BIN/deeper" export --checkpoint_dir "$T/train" 2>"$T/err"; then echo "missing --output accepted"; exit 1; fi
grep -q -- "--output" "$T/err"
mkdir -p "$T/empty"
if "$BIN/deeper" export --checkpoint_dir "$T/empty" --output "$T/x.safetensors" 2>"$T/err"; then
  echo "empty checkpoint dir accepted"; exit 1
fi
cat "$T/err"
[ "$(wc -l <"$T/err")" -le 2 ]
[ ! -e "$T/x.safetensors" ]
echo "inception_export: ok"
