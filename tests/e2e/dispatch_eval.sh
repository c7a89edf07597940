#!/usr/bin/env bash
# deeper eval --listen with remote workers, one killed with kill -9 mid-pass: its split is
# re-leased and the pass still counts every validation example exactly once.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 300 400
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --num_preprocess_threads 1 --max_steps 5 \
  --batch_size 16 --threads 1 2> train.log
A="$DEEPER_BIN/deeper-augment"
port=$(free_port)
ep="tcp://127.0.0.1:$port"
DEEPER_DUMP_IDS=eval.ids "$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --eval_dir ev --run_once \
  --num_preprocess_threads 0 --listen "$ep" --insecure --batch_size 8 --worker_timeout 1 --threads 1 > eval.out 2> eval.log &
te=$!; PIDS+=($te)
"$A" --data_dir data --dispatcher "$ep" --name victim 2> victim.log & victim=$!; PIDS+=($victim)
wait_lines eval.ids 3
kill -STOP $victim; kill -9 $victim
"$A" --data_dir data --dispatcher "$ep" --name w2 2> w2.log & w2=$!; PIDS+=($w2)
"$A" --data_dir data --dispatcher "$ep" --name w3 2> w3.log & w3=$!; PIDS+=($w3)
check_exit $te 0 "deeper eval --listen"
check_exit $victim 137 "victim worker (kill -9)"
stop_and_check $w2 "worker w2"
stop_and_check $w3 "worker w3"
cat eval.out
grep -q "precision @ 1 = .* \[400 examples\]" eval.out
grep -q "worker victim .* timed out" eval.log
grep -Eq "split \[[0-9]+, [0-9]+\) re-leased to w[23] \(was victim's\)" eval.log
"$PY" - eval.ids <<'PYEOF'
import sys
ids = [int(x) for l in open(sys.argv[1]) for x in l.split()[2:]]
assert len(ids) == 400 and len(set(ids)) == 400, (len(ids), len(set(ids)))
print("400 ids, each once")
PYEOF
echo ok
