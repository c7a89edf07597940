# scripts/faults/lib.bash — helpers sourced by the fault scripts (not a script itself).
#
#   fault_init NAME          work folder $W (FAULT_DIR, default a fresh mktemp -d),
#                            programs from $DEEPER_BIN (default bin/), removed at exit
#                            unless FAULT_KEEP=1
#   fmnist_ingest OUT N [ARGS...]   the first N Fashion-MNIST training images (and
#                            N/5 test images) ingested into OUT
#   rand_float SEED LO HI    a reproducible random number
#   tensors_equal A B        exit 0 when two safetensors files hold bit-identical
#                            tensors and the same step/position/seed metadata
#   result LINE              print a result line (also appended to $FAULT_RESULTS if set)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEEPER_BIN=${DEEPER_BIN:-$ROOT/bin}
PY=/usr/bin/python3
FMNIST=/usr/share/datasets/fashion-mnist

fault_init() {
  FAULT_NAME=$1
  for p in deeper deeper-ingest deeper-augment deeper-train; do
    [ -x "$DEEPER_BIN/$p" ] || { echo "$FAULT_NAME: $DEEPER_BIN/$p is not built (make NO_CUDA=1 all)" >&2; exit 2; }
  done
  [ -f $FMNIST/train-images-idx3-ubyte.gz ] || { echo "$FAULT_NAME: skip: dataset-fashion-mnist is not installed" >&2; exit 77; }
  W=${FAULT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/deeper-fault-XXXXXX")}
  mkdir -p "$W"
  [ "${FAULT_KEEP:-0}" = 1 ] || trap 'fault_cleanup; rm -rf "$W"' EXIT
  cd "$W"
}
fault_cleanup() { :; }

fmnist_ingest() {
  local out=$1 n=$2; shift 2
  "$DEEPER_BIN/deeper-ingest" --train_images $FMNIST/train-images-idx3-ubyte.gz \
    --train_labels $FMNIST/train-labels-idx1-ubyte.gz --validation_images $FMNIST/t10k-images-idx3-ubyte.gz \
    --validation_labels $FMNIST/t10k-labels-idx1-ubyte.gz --max_examples "$n" --output_directory "$out" --quiet "$@" >/dev/null
}

rand_float() { $PY -c "import random; random.seed('$1'); print(round(random.uniform($2, $3), 3))"; }

tensors_equal() {
  $PY - "$1" "$2" <<'PYEOF'
import sys, os
sys.path.insert(0, os.path.join(os.environ["ROOT"], "scripts/ref"))
from safetensors_np import load
a, ma = load(sys.argv[1]); b, mb = load(sys.argv[2])
if sorted(a) != sorted(b): sys.exit("tensor names differ")
for k in a:
    if a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes(): sys.exit("tensor %s differs" % k)
for k in ("step", "position", "seed", "epoch"):
    if ma.get(k) != mb.get(k): sys.exit("metadata %s: %s vs %s" % (k, ma.get(k), mb.get(k)))
PYEOF
}
export ROOT

result() { echo "$*"; [ -n "${FAULT_RESULTS:-}" ] && echo "$*" >>"$FAULT_RESULTS"; return 0; }
