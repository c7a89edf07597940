#!/usr/bin/env bash
# A worker killed mid-run is reported and restarted, training goes on;
# Ctrl-C (SIGINT) saves a checkpoint, stops the augment workers and exits 0;
# a NaN loss stops with "Model diverged with loss = NaN" and keeps the last good checkpoint.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 1000 100

"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 1000000 --batch_size 16 \
  --num_preprocess_threads 2 --log_every 1 2> sig.log &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for i in $(seq 1 600); do grep -q "step 3, loss" sig.log && break; sleep 0.1; done
grep -q "step 3, loss" sig.log
kids=$(pgrep -P $pid || true)
test -n "$kids"
victim=$(echo $kids | cut -d' ' -f1)
kill -9 "$victim"
for i in $(seq 1 300); do grep -q "restarted" sig.log && break; sleep 0.1; done
grep -q "augment worker [01] (pid $victim) was killed by signal 9" sig.log
grep -q "augment worker [01] restarted" sig.log
n=$(grep -c ", loss = " sig.log)
for i in $(seq 1 600); do [ "$(grep -c ", loss = " sig.log)" -ge $((n + 3)) ] && break; sleep 0.1; done
test "$(grep -c ", loss = " sig.log)" -ge $((n + 3))
kids=$(pgrep -P $pid || true)
kill -INT $pid
rc=0; wait $pid || rc=$?
tail -n 3 sig.log
[ $rc -eq 0 ] || fail "trainer stopped by SIGINT: exit status $rc, expected 0"
grep -q "saved checkpoint" sig.log
ls run/model.ckpt-*.safetensors
for k in $kids; do if kill -0 "$k" 2>/dev/null; then echo "worker $k still running"; exit 1; fi; done
if ls -d "$TMPDIR"/deeper-train-* 2>/dev/null; then fail "the trainer stopped by SIGINT left its socket folder"; fi
step=$(sed -E 's/.*model.ckpt-([0-9]+).*/\1/' run/checkpoint | head -1)
test "$step" -ge 3

# divergence: resume with an absurd learning rate
rc=0
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 1000000 --batch_size 16 \
  --num_preprocess_threads 1 --initial_learning_rate 1e30 --log_every 1 2> nan.log || rc=$?
tail -n 2 nan.log
test $rc -ne 0
grep -Eq "Model diverged with loss = (NaN|inf)" nan.log
grep -q "model_checkpoint_path: \"model.ckpt-$step.safetensors\"" run/checkpoint
echo ok
