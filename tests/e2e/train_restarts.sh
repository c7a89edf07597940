#!/usr/bin/env bash
# Worker restarts and what crashed runs leave behind:
#  - a dataset whose manifest lists one record too few makes every worker fail at start with
#    exit status 3; the trainer stops at once with one line (no restarts, no checkpoint);
#  - `kill -9` of a trainer leaves its ipc socket files; the next run removes them (their pid
#    is dead) and says so, and leaves a live run's files alone.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 300 50

# ---- a permanent error is not retried
cp -r data bad
"$PY" - <<'PYEOF'
import json
m = json.load(open("bad/manifest.json"))
t = m["subsets"]["train"]
t["count"] -= 1; t["shards"][0]["records"] -= 1; t["shards"][0]["last_id"] -= 1
json.dump(m, open("bad/manifest.json", "w"))
PYEOF
rc=0
timeout 60 "$DEEPER_BIN/deeper" train --data_dir bad --train_dir badrun --max_steps 50 --batch_size 8 \
  --num_preprocess_threads 2 2> bad.log || rc=$?
tail -n 3 bad.log
test $rc -eq 1
grep -q "manifest lists 149" bad.log
grep -q "deeper train: error: augment worker [01] cannot start (exit status 3: the dataset is missing or inconsistent" bad.log
check_not "a worker that cannot start (exit status 3) was restarted" grep -q "restarted" bad.log
test "$(grep -c "error:" bad.log | tr -d ' ')" -le 3   # each worker's own line and the trainer's
if ls badrun/model.ckpt-* 2>/dev/null; then fail "a run whose workers cannot start wrote a checkpoint"; fi

# ---- stale sockets of a killed run; a live trainer's files must survive the sweep
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run2 --max_steps 1000000 --batch_size 8 \
  --num_preprocess_threads 1 --log_every 1 2> live.log &
live=$!
trap 'kill -9 $live 2>/dev/null || true' EXIT
for i in $(seq 1 600); do grep -q "step 2, loss" live.log && break; sleep 0.1; done
check "the live run did not reach step 2" grep -q "step 2, loss" live.log
ls -d "$TMPDIR"/deeper-train-$live-*/workers
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 1000000 --batch_size 8 \
  --num_preprocess_threads 2 --log_every 1 2> killed.log &
pid=$!
for i in $(seq 1 600); do grep -q "step 2, loss" killed.log && break; sleep 0.1; done
grep -q "step 2, loss" killed.log
kill -9 $pid
check_exit $pid 137 "trainer killed with kill -9"
for i in $(seq 1 100); do pgrep -P $pid >/dev/null || break; sleep 0.1; done   # workers go with PDEATHSIG
ls -d "$TMPDIR"/deeper-train-$pid-*/workers
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run3 --max_steps 2 --batch_size 8 \
  --num_preprocess_threads 1 2> next.log
grep -q "removed 1 stale endpoint folder(s) of killed runs from $TMPDIR" next.log
if ls -d "$TMPDIR"/deeper-train-$pid-* 2>/dev/null; then fail "the stale socket folder of the killed run is still there"; fi
ls -d "$TMPDIR"/deeper-train-$live-*/workers
kill -INT $live
check_exit $live 0 "the live trainer stopped by SIGINT"
echo ok
