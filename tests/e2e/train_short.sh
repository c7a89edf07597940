#!/usr/bin/env bash
# A short real CPU training run on a Fashion-MNIST subset, then eval and classify:
#  - the loss falls (TensorBoard scalars read back by scripts/tb_read.py);
#  - the checkpoint is a valid safetensors file (independent numpy reader) with EMA and RMSProp slots;
#  - eval with 3 workers and a batch size that does not divide the subset counts every example once;
#  - classify prints 5 classes per file with probabilities summing to <= 1;
#  - out-of-range --label_smoothing / --dropout_keep_prob give one line naming the flag, exit 2.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist classify
cd "$TMPDIR"
fmnist_dataset data 3000 500

"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --model nielsennet --max_steps 120 \
  --batch_size 32 --num_preprocess_threads 2 --initial_learning_rate 0.05 --log_every 10 \
  --save_interval_steps 60 --seed 3 2> train.log
cat train.log | tail -n 5
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+: step 120, loss = [0-9.]+ \([0-9.]+ examples/sec; [0-9.]+ sec/batch\)' train.log
test -f run/model.ckpt-120.safetensors
test -f run/model.ckpt-60.safetensors
grep -q 'model_checkpoint_path: "model.ckpt-120.safetensors"' run/checkpoint

# loss falls: mean of the first 3 logged values vs the last 3
"$PY" "$DEEPER_ROOT/scripts/tb_read.py" --scalars loss run > loss.txt
"$PY" - loss.txt <<'PYEOF'
import sys
v = [float(l.split()[1]) for l in open(sys.argv[1])]
assert len(v) == 12, v
first, last = sum(v[:3]) / 3, sum(v[-3:]) / 3
print("loss first %.3f last %.3f" % (first, last))
assert last < 0.8 * first, "loss did not fall: %s" % v
PYEOF
for tag in learning_rate examples/sec input_wait_fraction queue_depth; do
  test "$("$PY" "$DEEPER_ROOT/scripts/tb_read.py" --scalars "$tag" run | wc -l)" -eq 12
done

"$PY" "$DEEPER_ROOT/scripts/ref/safetensors_np.py" dump run/model.ckpt-120.safetensors > ckpt.json
"$PY" - ckpt.json <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
t, m = d["tensors"], d["meta"]
assert m["step"] == "120" and m["model"] == "nielsennet" and m["num_classes"] == "10", m
assert len(json.loads(m["class_names"])) == 10
for k in ["conv1.weight", "fc.weight", "fc.bias", "ema/fc.weight", "rmsprop_ms/fc.weight", "rmsprop_mom/fc.weight"]:
    assert k in t, k
assert t["fc.weight"]["shape"] == [10, 1000], t["fc.weight"]
PYEOF

# eval: every validation example exactly once (500 = 7 x 64 + 52, over 3 workers)
"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --eval_dir ev --run_once \
  --batch_size 64 --num_preprocess_threads 3 > eval.out 2> eval.log
cat eval.out
grep -Eq ': precision @ 1 = 0\.[0-9]{4} recall @ 5 = [01]\.[0-9]{4} \[500 examples\]$' eval.out
p1=$(sed -E 's/.*precision @ 1 = ([0-9.]+).*/\1/' eval.out)
"$PY" -c "import sys; p=float('$p1'); assert p > 0.5, p"
grep -q "^120 " <<<"$("$PY" "$DEEPER_ROOT/scripts/tb_read.py" --scalars "Precision @ 1" ev)"

# classify three test images written as PNG
"$PY" - <<'PYEOF'
import gzip, numpy as np
from PIL import Image
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
for i in range(3):
    Image.fromarray(np.frombuffer(raw[i*784:(i+1)*784], np.uint8).reshape(28, 28)).save("img%d.png" % i)
PYEOF
"$DEEPER_BIN/deeper" classify --checkpoint_dir run img0.png img1.png img2.png > cls.out
cat cls.out
"$PY" - cls.out <<'PYEOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 18, lines
for b in range(3):
    assert lines[b * 6] == "img%d.png" % b
    probs = [float(l.split()[0]) for l in lines[b * 6 + 1: b * 6 + 6]]
    assert all(p >= 0 for p in probs) and probs == sorted(probs, reverse=True), probs
    assert sum(probs) <= 1.0 + 1e-4, probs
PYEOF

# bad option values: one error line naming the flag, usage exit status 2, nothing trained
for bad in "--label_smoothing 1.5" "--dropout_keep_prob 1.2" "--dropout_keep_prob -0.5"; do
  rc=0; "$DEEPER_BIN/deeper" train --data_dir data --train_dir bad --max_steps 1 $bad 2> bad.log || rc=$?
  [ "$rc" -eq 2 ] || { echo "$bad: exit $rc, want 2"; cat bad.log; exit 1; }
  grep -q "error: ${bad%% *} " bad.log || { echo "$bad: no error line naming the flag"; cat bad.log; exit 1; }
  [ ! -e bad/checkpoint ]
done

# train and eval bound ipc:// sockets in $TMPDIR; none of their files may be left behind
left=$(ls -d "$TMPDIR"/deeper-train-* "$TMPDIR"/deeper-eval-* 2>/dev/null || true)
[ -z "$left" ] || { echo "ipc socket files left behind: $left"; exit 1; }
echo ok
