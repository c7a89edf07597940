#!/usr/bin/env bash
# GPU (make test-gpu / scripts/gpu-run only): a checkpoint written on the GPU
# resumes on the CPU and back: 20 steps on cuda, resume to 30 on cpu, resume to
# 40 on cuda.  Each run says where it resumed; the final checkpoint's tensors are
# finite; and the step-20 checkpoint evaluated on GPU and on CPU gives the same
# precision @ 1 (same weights, two backends; 1/500 = one example of slack).
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_gpu
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 2000 500
common=(--data_dir data --train_dir run --model nielsennet --batch_size 32 --num_preprocess_threads 2
        --seed 11 --initial_learning_rate 0.05 --log_every 5 --save_interval_steps 10)

"$DEEPER_BIN/deeper" train "${common[@]}" --device cuda --max_steps 20 2> a.log
test -f run/model.ckpt-20.safetensors
cp run/model.ckpt-20.safetensors step20.safetensors
"$DEEPER_BIN/deeper" train "${common[@]}" --device cpu --max_steps 30 2> b.log
grep -q "resuming from .*model.ckpt-20.safetensors at step 20" b.log
"$DEEPER_BIN/deeper" train "${common[@]}" --device cuda --max_steps 40 2> c.log
grep -q "resuming from .*model.ckpt-30.safetensors at step 30" c.log
test -f run/model.ckpt-40.safetensors

"$PY" - run/model.ckpt-40.safetensors <<'PYEOF'
import sys, os
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from safetensors_np import load
t, meta = load(sys.argv[1])
from numcheck import assert_finite
assert meta["step"] == "40", meta
for k, v in t.items():
    assert_finite(k, v)
print("step-40 checkpoint: %d tensors, all finite" % len(t))
PYEOF

mkdir -p c20; cp step20.safetensors c20/model.ckpt-20.safetensors
printf 'model_checkpoint_path: "model.ckpt-20.safetensors"\n' > c20/checkpoint
for dev in cuda cpu; do
  "$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir c20 --eval_dir ev_$dev --run_once --device $dev \
    --batch_size 100 --num_preprocess_threads 2 > eval_$dev.out 2> eval_$dev.log
  cat eval_$dev.out
done
"$PY" - eval_cuda.out eval_cpu.out <<'PYEOF'
import os, re, sys
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import assert_close
p = [float(re.search(r"precision @ 1 = ([0-9.]+|nan)", open(f).read()).group(1)) for f in sys.argv[1:]]
print("precision @ 1: cuda %.4f cpu %.4f" % tuple(p))
assert_close("precision @ 1, cuda vs cpu", p[0], p[1], 0.0021)
PYEOF
