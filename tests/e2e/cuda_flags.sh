#!/usr/bin/env bash
# CUDA-area flags on any machine (runs in `make test`): `deeper train
# --precision` takes fp32, refuses bf16 (not implemented yet) with one line
# and exit 1 before touching anything, and rejects other values as bad usage
# (exit 2).  `--device cuda` without a GPU, or in a build without the CUDA
# backend, stops with exit 1 and one line naming which of the two it is; on a
# machine with a GPU a CUDA build trains two steps on it and writes the
# checkpoint.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
cd "$TMPDIR"

rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision bf16 2> bf16.err || rc=$?
cat bf16.err
[ "$rc" -eq 1 ] || fail "--precision bf16: exit $rc, expected 1"
[ "$(wc -l < bf16.err)" -eq 1 ] || fail "--precision bf16: expected one error line"
check "--precision bf16: the line says it is not implemented" grep -q 'precision bf16 is not implemented' bf16.err
check "--precision bf16 created the train_dir" test ! -e run

rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision fp16 2> fp16.err || rc=$?
cat fp16.err
[ "$rc" -eq 2 ] || fail "--precision fp16: exit $rc, expected 2 (bad usage)"
check "--precision fp16: the line names the choices" grep -q -- '--precision fp16: expected fp32 or bf16' fp16.err

# fp32 passes the check: the next complaint is the missing dataset
rc=0; "$DEEPER_BIN/deeper" train --data_dir nowhere --train_dir run --precision fp32 2> fp32.err || rc=$?
cat fp32.err
[ "$rc" -ne 0 ] || fail "--precision fp32 with a missing --data_dir succeeded"
check_not "--precision fp32 was complained about" grep -q precision fp32.err
check "fp32: the complaint is the missing dataset" grep -q nowhere fp32.err

skip_unless_fmnist
fmnist_dataset data 200 50
# Whether the build has the CUDA backend, read from the program itself: only
# the CUDA runtime, linked statically or not, brings this symbol name along.
cuda_build=0
if grep -aq cudaGetDeviceCount "$DEEPER_BIN/deeper-train"; then cuda_build=1; fi
gpu=0
# A GPU is there when the runner's device probe found one (run-tests --gpu
# sets DEEPER_REQUIRE_GPU=1 only after it did) or nvidia-smi lists one.
if [ "${DEEPER_REQUIRE_GPU:-0}" = 1 ] || nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi
echo "build with CUDA: $cuda_build, GPU present: $gpu"
rc=0; "$DEEPER_BIN/deeper" train --data_dir data --train_dir run2 --device cuda --max_steps 2 \
  --batch_size 8 --num_preprocess_threads 1 --log_every 1 2> cuda.err || rc=$?
cat cuda.err
if [ $cuda_build = 1 ] && [ $gpu = 1 ]; then
  [ "$rc" -eq 0 ] || fail "--device cuda on a GPU machine with a CUDA build: exit $rc, expected 0"
  check "no step 2 on the GPU" grep -Eq 'step 2, loss = [0-9.]+' cuda.err
  check "no step-2 checkpoint after training on the GPU" test -f run2/model.ckpt-2.safetensors
  echo "trained on the GPU"
  exit 0
fi
[ "$rc" -eq 1 ] || fail "--device cuda without a usable GPU: exit $rc, expected 1"
[ "$(grep -c 'error:' cuda.err)" -eq 1 ] || fail "--device cuda without a usable GPU: expected one error line"
if [ $cuda_build = 1 ]; then
  check "a CUDA build without a GPU must say 'no CUDA device'" \
    grep -Eq 'error: .*no CUDA device: .*\(this build has CUDA support\)' cuda.err
else
  check "a build without CUDA must say so" grep -Eq 'error: .*this build has no CUDA backend' cuda.err
fi
check_not "--device cuda that was refused created a checkpoint" test -e run2/model.ckpt-2.safetensors
echo ok
