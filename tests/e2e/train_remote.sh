#!/usr/bin/env bash
# --num_preprocess_threads 0 --listen ENDPOINT: the trainer binds and trains from augment
# workers started separately (as on another machine), here over tcp loopback.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
port=$(( 20000 + RANDOM % 20000 ))
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --num_preprocess_threads 0 \
  --listen "tcp://127.0.0.1:$port" --insecure --max_steps 8 --batch_size 16 --log_every 4 2> train.log &
tpid=$!
"$DEEPER_BIN/deeper" augment --data_dir data --subset train --batch_size 16 --image_size 28 \
  --worker 0 --num_workers 1 --connect "tcp://127.0.0.1:$port" 2> worker.log &
wpid=$!
rc=0; wait $tpid || rc=$?
kill $wpid 2>/dev/null || true; wait $wpid 2>/dev/null || true
tail -n 3 train.log
test $rc -eq 0
grep -q "waiting for remote augment workers on tcp://127.0.0.1:$port" train.log
grep -q "step 8, loss = " train.log
test -f run/model.ckpt-8.safetensors
echo ok
