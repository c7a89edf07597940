#!/usr/bin/env bash
# inception_finetune.sh — the fine-tuning recipe end to end, on CPU, small:
#   a torchvision inception_v3 state_dict with 11 classes (safetensors) ->
#   deeper train --model inception_v3 --image_size 75 on a Fashion-MNIST subset
#   (gray -> RGB) with --pretrained_model_checkpoint_path and --fine_tune for
#   a few steps -> deeper eval -> deeper export -> torchvision loads the
#   export with strict=True.  Without --fine_tune the class-count mismatch is
#   one error line naming the tensor and both shapes.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist export
need_py_modules "$PY" torch torchvision
cd "$TMPDIR"
fmnist_dataset data 64 24
"$PY" "$DEEPER_ROOT/scripts/ref/inception_ref.py" weights --out pre.safetensors --num_classes 11

common=(--data_dir data --model inception_v3 --image_size 75 --batch_size 4 --num_preprocess_threads 1
        --threads 2 --initial_learning_rate 0.001 --log_every 1 --seed 3)

# without --fine_tune: one clear error
if "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir bad --max_steps 1 \
     --pretrained_model_checkpoint_path pre.safetensors 2> bad.log; then
  echo "a class-count mismatch was accepted"; exit 1
fi
tail -n 1 bad.log
grep -q "AuxLogits.fc.weight has shape \[11, 768\] in the file but \[.*, 768\] in the model" bad.log

"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir run --max_steps 3 --save_interval_steps 3 \
  --pretrained_model_checkpoint_path pre.safetensors --fine_tune 2> train.log
grep -E "restored|step" train.log | tail -n 5
grep -q "restored 480 tensors from pre.safetensors for fine-tuning (4 re-initialised" train.log
test -f run/model.ckpt-3.safetensors

"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --eval_dir ev --run_once \
  --batch_size 8 --num_preprocess_threads 1 2> eval.log | tee eval.out
grep -q "precision @ 1 = " eval.out

"$DEEPER_BIN/deeper" export --checkpoint_dir run --output model.safetensors
"$PY" "$DEEPER_ROOT/scripts/ref/inception_ref.py" check_export model.safetensors \
  --ckpt run/model.ckpt-3.safetensors
echo "inception_finetune: ok"
