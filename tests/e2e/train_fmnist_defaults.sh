#!/usr/bin/env bash
# NielsenNet at its own defaults (no hyperparameter flags) on Fashion-MNIST: 2000 steps of the
# default batch, 64, then precision @ 1 >= 0.88 on the 10,000 test images.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
"$DEEPER_BIN/deeper" ingest --train_images "$FMNIST/train-images-idx3-ubyte.gz" \
  --train_labels "$FMNIST/train-labels-idx1-ubyte.gz" --validation_images "$FMNIST/t10k-images-idx3-ubyte.gz" \
  --validation_labels "$FMNIST/t10k-labels-idx1-ubyte.gz" --output_directory fm --quiet
t0=$(date +%s)
"$DEEPER_BIN/deeper" train --data_dir fm --train_dir run --model nielsennet --max_steps 2000 \
  --num_preprocess_threads 1 --log_every 500 2> train.log
grep -E ": step [0-9]+," train.log
grep -m1 -qF "batch_size 64 (model default)" train.log
"$DEEPER_BIN/deeper" eval --data_dir fm --checkpoint_dir run --run_once --batch_size 100 \
  --num_preprocess_threads 1 > eval.out 2> eval.log
cat eval.out
echo "train + eval: $(( $(date +%s) - t0 )) s"
grep -q "\[10000 examples\]" eval.out
p1=$(sed -E 's/.*precision @ 1 = ([0-9.]+).*/\1/' eval.out)
"$PY" -c "import sys; p=float('$p1'); sys.exit(0 if p >= 0.88 else 'precision @ 1 %.4f < 0.88' % p)"
echo ok
