#!/usr/bin/env bash
# Remote workers through the dispatcher (proto/dispatch.md), over tcp on 127.0.0.1:
#   a: 1 worker;  b: 3 workers, one killed with kill -9 mid-epoch (the other two
#   frozen meanwhile), a 4th joining later.
# The ids reaching the trainer cover the first epoch exactly once and are the
# same batches in the same order in both runs; the weights at step 45 are
# bit-identical.  The dead worker's split is re-leased (one line) and the
# newcomer receives leases.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
common=(--data_dir data --model nielsennet --batch_size 16 --num_preprocess_threads 0 --seed 5
        --initial_learning_rate 0.05 --log_every 5 --threads 1 --device cpu --max_steps 45 --worker_timeout 1)
A="$DEEPER_BIN/deeper-augment"

# a: one worker
port=$(free_port)
DEEPER_DUMP_IDS=a.ids "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir a --listen "tcp://127.0.0.1:$port" --insecure 2> a.log &
ta=$!; PIDS+=($ta)
"$A" --data_dir data --dispatcher "tcp://127.0.0.1:$port" --name w0 2> a-w0.log & w0=$!; PIDS+=($w0)
check_exit $ta 0 "trainer a"
stop_and_check $w0 "worker w0"
once_per_epoch a.ids 600

# b: three workers, one killed mid-epoch, one more joins afterwards
port=$(free_port)
DEEPER_DUMP_IDS=b.ids "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --listen "tcp://127.0.0.1:$port" --insecure 2> b.log &
tb=$!; PIDS+=($tb)
declare -A wp
for i in 1 2 3; do
  "$A" --data_dir data --dispatcher "tcp://127.0.0.1:$port" --name w$i 2> b-w$i.log & wp[$i]=$!; PIDS+=($!)
done
victim=${wp[2]}
wait_lines b.ids 8
# freeze all three (the victim holds its lease when it dies; the other two stay
# frozen until the newcomer has joined, so the run cannot end without it)
kill -STOP ${wp[1]} ${wp[3]} $victim
kill -9 $victim
wait_grep "worker w2 .* timed out" b.log 30
"$A" --data_dir data --dispatcher "tcp://127.0.0.1:$port" --name w4 2> b-w4.log & w4=$!; PIDS+=($w4)
wait_grep "worker w4 .* joined" b.log 30
kill -CONT ${wp[1]} ${wp[3]}
check_exit $tb 0 "trainer b"
check_exit $victim 137 "worker w2 (kill -9)"
stop_and_check ${wp[1]} "worker w1"
stop_and_check ${wp[3]} "worker w3"
stop_and_check $w4 "worker w4"
cat b.log | grep -E "timed out|re-leased|joined" || true
once_per_epoch b.ids 600
cmp a.ids b.ids
grep -q "worker w4 .* joined" b.log
grep -Eq "split \[[0-9]+, [0-9]+\) re-leased to" b.log
sent=$(sed -n 's/.*stopping after \([0-9]*\) batches.*/\1/p' b-w4.log)
echo "the worker that joined late sent $sent batches"
test "${sent:-0}" -gt 0
same_weights a/model.ckpt-45.safetensors b/model.ckpt-45.safetensors
echo ok
