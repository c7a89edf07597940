#!/usr/bin/env bash
# TensorBoard reads what `deeper train` writes, as it reads TF's inception_train: the real
# `tensorboard` package (from PyPI, into a virtual environment made once under build/) lists
#  - the images images/0..2 (PNG, the distorted training inputs at their size) every --summary_every steps;
#  - a histogram of every trainable parameter and of its gradient (conv1.weight, conv1.weight/gradients ...);
#  - the scalars loss (mean over the log window), "loss (raw)" (the step the log line shows) and epoch.
# Skipped, with the reason, where the package cannot be installed (no network, no venv module).
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
VENV=${DEEPER_TB_VENV:-$DEEPER_ROOT/build/tensorboard-venv}
if ! "$VENV/bin/python3" -c "import tensorboard" 2>/dev/null; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  /usr/bin/python3 -m venv --system-site-packages "$VENV" > "$TMPDIR/venv.log" 2>&1 ||
    { echo "cannot make a virtual environment: $(tail -n 1 "$TMPDIR/venv.log")"; exit 77; }
  "$VENV/bin/pip" install -q tensorboard > "$TMPDIR/pip.log" 2>&1 ||
    { rm -rf "$VENV"; echo "cannot install tensorboard from PyPI: $(tail -n 1 "$TMPDIR/pip.log")"; exit 77; }
fi
cd "$TMPDIR"
fmnist_dataset data 640 100
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 20 --batch_size 16 \
  --num_preprocess_threads 1 --log_every 5 --summary_every 10 2> train.log
"$VENV/bin/python3" - run <<'PYEOF'
import io, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from PIL import Image
acc = EventAccumulator(sys.argv[1], size_guidance={"images": 0, "histograms": 0, "scalars": 0})
acc.Reload()
tags = acc.Tags()
print("images", tags["images"])
print("histograms", len(tags["histograms"]), sorted(tags["histograms"])[:4])
print("scalars", tags["scalars"])
assert sorted(tags["images"]) == ["images/0", "images/1", "images/2"], tags["images"]
for t in tags["images"]:
    ev = acc.Images(t)
    assert [e.step for e in ev] == [10, 20], [e.step for e in ev]
    img = Image.open(io.BytesIO(ev[-1].encoded_image_string))
    assert img.format == "PNG" and img.size == (28, 28) and ev[-1].width == 28, (img.format, img.size)
for name in ["conv1.weight", "conv1.bias", "conv2.weight", "fc1.weight", "fc2.weight", "fc.weight", "fc.bias"]:
    for t in (name, name + "/gradients"):
        assert t in tags["histograms"], t
        h = acc.Histograms(t)
        assert [e.step for e in h] == [10, 20], (t, [e.step for e in h])
        v = h[-1].histogram_value
        assert v.num > 0 and v.min <= v.max and len(v.bucket) == len(v.bucket_limit) and sum(v.bucket) == v.num, t
fc = acc.Histograms("fc.weight")[-1].histogram_value
assert fc.num == 10 * 1000, fc.num
for t in ["loss", "loss (raw)", "learning_rate", "epoch"]:
    assert t in tags["scalars"], t
    assert [e.step for e in acc.Scalars(t)] == [5, 10, 15, 20], t
print("ok")
PYEOF
