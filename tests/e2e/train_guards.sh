#!/usr/bin/env bash
# Guard rails of `deeper train`:
#  - divergence: a run resumed with an absurd learning rate stops at the first non-finite loss with ONE
#    line naming the step and the checkpoint kept; that checkpoint still evaluates;
#  - not learning: a run whose loss stays at ln(classes) (learning rate 1e-9) warns once at
#    --stall_check_steps with one line suggesting a lower --initial_learning_rate.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 640 200

"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 20 --batch_size 16 \
  --num_preprocess_threads 1 --log_every 10 2> ok.log
rc=0
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 1000 --batch_size 16 \
  --num_preprocess_threads 1 --initial_learning_rate 1e30 --log_every 1 2> nan.log || rc=$?
tail -n 3 nan.log
[ "$rc" -eq 1 ] || { echo "diverged run: exit $rc, want 1"; exit 1; }
[ "$(grep -c "diverged" nan.log)" -eq 1 ] || { echo "want exactly one divergence line"; exit 1; }
grep -Eq "Model diverged with loss = (NaN|inf) at step 2[1-9]; the last good checkpoint, run/model\.ckpt-20\.safetensors, is kept" nan.log
grep -q 'model_checkpoint_path: "model.ckpt-20.safetensors"' run/checkpoint
"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --run_once --batch_size 50 \
  --num_preprocess_threads 1 > eval.out 2> eval.log
grep -Eq "precision @ 1 = 0\.[0-9]{4} .*\[200 examples\]" eval.out

# not learning: exactly one warning at step 60 naming ln(10) and suggesting a lower learning rate
"$DEEPER_BIN/deeper" train --data_dir data --train_dir stuck --max_steps 80 --batch_size 16 \
  --num_preprocess_threads 1 --initial_learning_rate 1e-9 --stall_check_steps 60 --log_every 20 2> stuck.log
grep "not learning" stuck.log
[ "$(grep -c "not learning" stuck.log)" -eq 1 ]
grep -Eq "warning: not learning: mean loss 2\.[0-9]+ over steps 11-60 is within 5% of ln\(10 classes\) = 2\.303.*lower --initial_learning_rate" stuck.log
echo ok
