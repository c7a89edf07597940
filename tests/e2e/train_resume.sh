#!/usr/bin/env bash
# Determinism of resume: 20 steps in one run equal 10 steps + kill -9 + resume to 20
# (CPU, same seed, same worker count): every tensor of the final checkpoints (weights,
# EMA, RMSProp slots) is bit-identical.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 1500 100
common=(--data_dir data --model nielsennet --batch_size 16 --num_preprocess_threads 2 --seed 7
        --initial_learning_rate 0.05 --log_every 5 --threads 1 --device cpu)

"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir a --max_steps 20 2> a.log

# run b: killed with SIGKILL after its step-10 checkpoint, then resumed
"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --max_steps 20 --save_interval_steps 10 2> b1.log &
pid=$!
for i in $(seq 1 600); do
  [ -f b/model.ckpt-10.safetensors ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null || true
check_exit $pid 0,137 "run b (kill -9 after its step-10 checkpoint, or done before)"
test -f b/model.ckpt-10.safetensors
rm -f b/model.ckpt-20.safetensors          # in case it got that far: resume from 10
"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --max_steps 20 2> b2.log
grep -q "resuming from .*model.ckpt-10.safetensors at step 10" b2.log
"$PY" - a/model.ckpt-20.safetensors b/model.ckpt-20.safetensors <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import compare_checkpoints
compare_checkpoints(sys.argv[1], sys.argv[2])      # bit-identical and finite, same step/position/seed
PYEOF
echo ok
