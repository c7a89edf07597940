#!/usr/bin/env bash
# CUDA-area flags on any machine (runs in `make test`): `deeper train
# --precision` takes fp32, refuses bf16 (not implemented yet) with one line
# and exit 1 before touching anything, and rejects other values as bad usage
# (exit 2); `--device cuda` on a machine without a GPU (or a build without
# CUDA) stops with one line naming the reason.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
cd "$TMPDIR"

rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision bf16 2> bf16.err || rc=$?
cat bf16.err
[ "$rc" -eq 1 ] && [ "$(wc -l < bf16.err)" -eq 1 ] && grep -q 'precision bf16 is not implemented' bf16.err
test ! -e run

rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision fp16 2> fp16.err || rc=$?
cat fp16.err
[ "$rc" -eq 2 ] && grep -q -- '--precision fp16: expected fp32 or bf16' fp16.err

# fp32 passes the check: the next complaint is the missing dataset
rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision fp32 2> fp32.err || rc=$?
cat fp32.err
[ "$rc" -ne 0 ] && ! grep -q precision fp32.err

if nvidia-smi -L >/dev/null 2>&1; then
  echo "GPU present: the no-GPU refusal is not checked here"
  exit 0
fi
skip_unless_fmnist
fmnist_dataset data 200 50
rc=0; "$DEEPER_BIN/deeper" train --data_dir data --train_dir run2 --device cuda --max_steps 1 \
  --batch_size 8 --num_preprocess_threads 1 2> cuda.err || rc=$?
cat cuda.err
[ "$rc" -eq 1 ] && grep -Eq 'error: .*(no CUDA device|without CUDA|CUDA)' cuda.err
[ "$(grep -c 'error:' cuda.err)" -eq 1 ]
