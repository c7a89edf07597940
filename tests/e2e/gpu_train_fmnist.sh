#!/usr/bin/env bash
# GPU (make test-gpu / scripts/gpu-run only): 200 NielsenNet training steps on a
# Fashion-MNIST subset with --device cuda; the loss falls (TensorBoard scalars),
# the checkpoint is written, and eval on the GPU reaches a sane precision @ 1.
# Then a short Inception v3 run at 75x75 on the GPU (when the model is built in).
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_gpu
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 6000 1000

"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --model nielsennet --device cuda \
  --max_steps 200 --batch_size 64 --num_preprocess_threads 4 --initial_learning_rate 0.05 \
  --log_every 10 --save_interval_steps 100 --seed 3 2> train.log
tail -n 3 train.log
grep -Eq 'step 200, loss = [0-9.]+ \([0-9.]+ examples/sec' train.log
grep -Eq 'step 200, .*input wait [0-9]+%' train.log      # the GPU input-wait fraction is reported
"$PY" "$DEEPER_ROOT/scripts/tb_read.py" --scalars input_wait_fraction run > wait.txt
"$PY" -c "import sys; v = [float(l.split()[1]) for l in open(sys.argv[1])]; print('GPU input wait fractions', v[-3:]); assert v and all(0 <= x <= 1 for x in v)" wait.txt
test -f run/model.ckpt-200.safetensors
"$PY" "$DEEPER_ROOT/scripts/tb_read.py" --scalars loss run > loss.txt
"$PY" - loss.txt <<'PYEOF'
import sys
v = [float(l.split()[1]) for l in open(sys.argv[1])]
first, last = sum(v[:3]) / 3, sum(v[-3:]) / 3
print("GPU loss first %.3f last %.3f (%d points)" % (first, last, len(v)))
assert len(v) == 20 and last < 0.8 * first, v
PYEOF

"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --eval_dir ev --run_once --device cuda \
  --batch_size 100 --num_preprocess_threads 2 > eval.out 2> eval.log
cat eval.out
p1=$(sed -E 's/.*precision @ 1 = ([0-9.]+).*/\1/' eval.out)
"$PY" -c "import sys; p=float('$p1'); assert p > 0.6, p"

if grep -q inception_v3 <<<"$("$DEEPER_BIN/deeper" train --help 2>&1)"; then
  "$DEEPER_BIN/deeper" train --data_dir data --train_dir inc --model inception_v3 --device cuda \
    --image_size 75 --max_steps 30 --batch_size 32 --num_preprocess_threads 4 --log_every 10 \
    --initial_learning_rate 0.01 --seed 5 2> inc.log
  tail -n 2 inc.log
  grep -Eq 'step 30, loss = [0-9.]+' inc.log
else
  echo "inception_v3 not registered in this build: its GPU run is left out"
fi
