# dispatch_lib.bash — helpers sourced by tests/e2e/dispatch_*.sh (not a test itself).
#   free_port                    an unused TCP port on 127.0.0.1
#   worker NAME LOG ARGS...      start `deeper augment --dispatcher` in the background (pid in $!)
#   wait_lines FILE N [SECS]     wait until FILE has at least N lines (default 120 s)
#   wait_grep PATTERN FILE [SECS]
#   same_weights A B             every tensor of two checkpoints bit-identical and finite
#   once_per_epoch IDS N         the first N ids consumed (dump lines "index epoch id...") are N distinct ids
source "$DEEPER_ROOT/tests/ref/train_common.sh"

free_port() { "$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_lines() {
  local f=$1 n=$2 t=${3:-120} i
  for i in $(seq 1 $((t * 10))); do
    [ -f "$f" ] && [ "$(wc -l < "$f")" -ge "$n" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $n lines in $f"; return 1
}

wait_grep() {
  local pat=$1 f=$2 t=${3:-120} i
  for i in $(seq 1 $((t * 10))); do
    grep -q -- "$pat" "$f" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$pat' in $f"; return 1
}

same_weights() {
  "$PY" - "$1" "$2" <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import compare_checkpoints
compare_checkpoints(sys.argv[1], sys.argv[2])      # bit-identical and finite, same step/position/seed
PYEOF
}

once_per_epoch() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
ids = []
rows = [l.split() for l in open(sys.argv[1])]
idx = [int(r[0]) for r in rows]
assert idx == list(range(idx[0], idx[0] + len(idx))), "batches not consumed in index order"
for r in rows:
    ids += [int(x) for x in r[2:]]
n = int(sys.argv[2])
assert len(ids) >= n, (len(ids), n)
first = ids[:n]
assert len(set(first)) == n, "epoch 0 repeats %d ids" % (n - len(set(first)))
print("first epoch: %d ids, each once" % n)
PYEOF
}
