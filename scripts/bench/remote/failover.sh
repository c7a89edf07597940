#!/usr/bin/env bash
# Failover of remote augment workers (tcp on 127.0.0.1), measured from the trainer's log:
#   re-lease  time from a worker's kill -9 to its split being leased to another worker
#   stall     the longest gap between two training steps after the kill, less the median gap
# Scenario "2 workers": one of two is killed; scenario "replaced": the only worker is killed
# and a new one started at once.  Target: both under --worker_timeout + 1 s.
# Usage: scripts/bench/remote/failover.sh [WORKER_TIMEOUT_S]   (needs bin/ built, Fashion-MNIST)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
export DEEPER_ROOT=$ROOT DEEPER_BIN=${DEEPER_BIN:-$ROOT/bin}
TO=${1:-2}
TMPDIR=$(mktemp -d); export TMPDIR
source "$ROOT/tests/e2e/dispatch_lib.bash"
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$TMPDIR"' EXIT
cd "$TMPDIR"
fmnist_dataset data 2000 50 >/dev/null 2>&1
A="$DEEPER_BIN/deeper-augment"

run() {   # $1 scenario
  local port ep tpid victim t_kill
  port=$(free_port); ep="tcp://127.0.0.1:$port"
  DEEPER_DISPATCH_TRACE=1 "$DEEPER_BIN/deeper" train --data_dir data --train_dir run-$1 --fresh --num_preprocess_threads 0 \
    --listen "$ep" --insecure --max_steps 120 --batch_size 16 --log_every 1 --threads 1 --worker_timeout "$TO" 2> $1.log &
  tpid=$!
  "$A" --data_dir data --dispatcher "$ep" --name victim --quiet 2>/dev/null & victim=$!
  [ "$1" = two ] && { "$A" --data_dir data --dispatcher "$ep" --name other --quiet 2>/dev/null & }
  wait_grep "step 40, loss" $1.log 300 >/dev/null
  t_kill=$(date +%s.%N)
  kill -9 $victim
  [ "$1" = replaced ] && { "$A" --data_dir data --dispatcher "$ep" --name new --quiet 2>/dev/null & }
  wait $tpid
  "$PY" - $1.log "$t_kill" "$1" "$TO" <<'PYEOF'
import sys, re, datetime, statistics
log, t_kill, name, to = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
def ts(line):
    return datetime.datetime.strptime(line[:26], "%Y-%m-%d %H:%M:%S.%f").timestamp()
steps, relse = [], None
for l in open(log):
    if re.search(r": step \d+, loss", l): steps.append(ts(l))
    if relse is None and "re-leased to" in l and "was victim's" in l: relse = ts(l)
gaps = [b - a for a, b in zip(steps, steps[1:])]
med = statistics.median(gaps)
after = [b - a for a, b in zip(steps, steps[1:]) if b > t_kill]
stall = max(after) - med if after else float("nan")
rl = (relse - t_kill) if relse else float("nan")
print("%-9s worker_timeout %.1f s: re-lease %.2f s after the kill, stall %.2f s (median step %.3f s)%s" %
      (name, to, rl, stall, med, "" if relse else "  [the victim held no split that was still needed]"))
PYEOF
}
run two
run replaced
