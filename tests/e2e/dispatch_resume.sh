#!/usr/bin/env bash
# The trainer killed with kill -9 and restarted resumes with the same remote workers: they
# notice, register again by themselves and the run continues from the checkpoint's
# position.  Weights at step 40 are bit-identical to an uninterrupted run with another
# number of workers.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
common=(--data_dir data --model nielsennet --batch_size 16 --num_preprocess_threads 0 --seed 3
        --initial_learning_rate 0.05 --log_every 5 --threads 1 --device cpu --max_steps 40 --worker_timeout 1)
A="$DEEPER_BIN/deeper-augment"

# a: uninterrupted, one local worker (same protocol over ipc)
"$DEEPER_BIN/deeper" train "${common[@]/--num_preprocess_threads 0/}" --num_preprocess_threads 1 --train_dir a 2> a.log

# b: two remote workers; the trainer is killed after its step-20 checkpoint and restarted
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --listen "$ep" --insecure --save_interval_steps 20 2> b1.log &
tb=$!; PIDS+=($tb)
"$A" --data_dir data --dispatcher "$ep" --name w1 2> w1.log & w1=$!; PIDS+=($w1)
"$A" --data_dir data --dispatcher "$ep" --name w2 2> w2.log & w2=$!; PIDS+=($w2)
wait_grep "saved checkpoint b/model.ckpt-20" b1.log 120
kill -9 $tb
check_exit $tb 137 "trainer b (kill -9)"
rm -f b/model.ckpt-40.safetensors
"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --listen "$ep" --insecure 2> b2.log
stop_and_check $w1 "worker w1 (served both trainers)"
stop_and_check $w2 "worker w2 (served both trainers)"
grep -q "resuming from .*model.ckpt-20.safetensors at step 20" b2.log
grep -q "worker w1 .* joined" b2.log
grep -q "worker w2 .* joined" b2.log
grep -Eq "registering again|asks for a new registration" w1.log
same_weights a/model.ckpt-40.safetensors b/model.ckpt-40.safetensors
echo ok
