#!/usr/bin/env bash
# NielsenNet at its own defaults learns the 8x8 handwritten digits that scikit-learn ships:
#  - PNG class folders (tests/ref/digits_folders.py: a fixed 80/20 split), ingested with --profile digits
#    and nothing else (so as RGB, the default for folders);
#  - `deeper train --model nielsennet --image_size 28 --max_steps 800 --batch_size 32`, nothing else
#    (2 local workers, the default):
#    the first log line names each value and where it came from (flag or model default);
#  - precision @ 1 >= 0.95 on the 360 held-out images (TF's lr 0.1 stays at loss 2.35 and chance,
#    precision @ 1 = 0.0806, here);
#  - a run that learns gives no "not learning" warning.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
need_programs ingest augment train eval
cd "$TMPDIR"
rc=0; "$PY" "$DEEPER_ROOT/tests/ref/digits_folders.py" raw > mk.log 2>&1 || rc=$?
if [ "$rc" -eq 77 ]; then tail -n 1 mk.log; exit 77; fi
[ "$rc" -eq 0 ] || { cat mk.log; exit 1; }
"$DEEPER_BIN/deeper" ingest --train_directory raw/train --validation_directory raw/validation \
  --output_directory digits --profile digits --quiet

t0=$(date +%s)
"$DEEPER_BIN/deeper" train --data_dir digits --train_dir run --model nielsennet --image_size 28 \
  --max_steps 800 --batch_size 32 --log_every 100 2> train.log
grep -E ": step (100|800)," train.log
first=$(grep -m1 -E '^[0-9-]+ [0-9:.]+: ' train.log)
echo "$first"
for want in "initial_learning_rate 0.05 (model default)" "num_epochs_per_decay 1 (model default)" \
            "learning_rate_decay_factor 0.94 (model default)" "batch_size 32 (flag)" "image_size 28 (flag)" \
            "dropout_keep_prob 0.7 (model default)" "label_smoothing 0.1 (model default)" \
            "flip from the dataset's profile"; do
  grep -qF "$want" <<<"$first" || { echo "first log line lacks '$want'"; exit 1; }
done
if grep "not learning" train.log; then echo "a learning run warned"; exit 1; fi

"$DEEPER_BIN/deeper" eval --data_dir digits --checkpoint_dir run --run_once --batch_size 100 \
  --num_preprocess_threads 1 > eval.out 2> eval.log
cat eval.out
echo "train + eval: $(( $(date +%s) - t0 )) s"
grep -q "\[360 examples\]" eval.out
p1=$(sed -E 's/.*precision @ 1 = ([0-9.]+).*/\1/' eval.out)
"$PY" -c "import sys; p=float('$p1'); sys.exit(0 if p >= 0.95 else 'precision @ 1 %.4f < 0.95' % p)"
# the default eval_dir is inside the checkpoint directory
ls run/eval/events.out.tfevents.* > /dev/null
echo ok
