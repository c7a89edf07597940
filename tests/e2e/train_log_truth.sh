#!/usr/bin/env bash
# What `deeper train` and `deeper eval` say is true, and their switches are the same as augment's:
#  - the epoch in the training line is the trainer's position in the data (step x batch / examples),
#    so it never goes back;
#  - --fresh removes the old event files too (TensorBoard starts afresh), in train_dir and its eval/;
#  - nested --train_dir and --eval_dir are created with their parents; eval's default eval_dir is
#    CHECKPOINT_DIR/eval;
#  - --num_gpus on a machine (or --device) without GPUs is refused with one error line (and the
#    usage hint), exit 2;
#  - recall @ 5 with 5 classes or fewer is labelled as trivially 1;
#  - train and eval accept every distortion switch augment has and pass them on to their workers;
#    help texts say the default comes from the dataset's profile;
#  - `deeper train --help --model M` shows M's defaults; a flag wins; a resumed run takes the
#    batch size from its checkpoint, and the first log line says so.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 640 100
T="$DEEPER_BIN/deeper train --data_dir data --num_preprocess_threads 2 --save_interval_steps 0"

# epoch = position in the data: 640 examples, batch 32 -> 20 steps an epoch
$T --train_dir a/b/run --max_steps 70 --batch_size 32 --log_every 5 2> e.log
"$PY" - e.log <<'PYEOF'
import os, re, sys
sys.path.insert(0, os.environ["DEEPER_ROOT"] + "/scripts/ref")
from numcheck import assert_close
rows = [(int(m.group(1)), float(m.group(2))) for m in
        re.finditer(r": step (\d+), loss = .* epoch ([0-9.]+|nan), workers", open(sys.argv[1]).read())]
assert len(rows) == 14, rows
assert_close("epoch in the log vs step x 32 / 640", [e for _, e in rows], [s * 32 / 640 for s, _ in rows], 0.006)
assert all(b[1] >= a[1] for a, b in zip(rows, rows[1:])), rows
print("epochs", [e for _, e in rows])
PYEOF
test -f a/b/run/model.ckpt-70.safetensors

# eval: default eval_dir inside the checkpoint dir; a nested --eval_dir is created
"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir a/b/run --run_once --num_preprocess_threads 1 \
  --batch_size 50 > ev.out 2> ev.log
ls a/b/run/eval/events.out.tfevents.* > /dev/null
"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir a/b/run --eval_dir x/y/z --run_once \
  --num_preprocess_threads 1 --batch_size 50 --no_crop --color --flip > ev2.out 2> ev2.log
ls x/y/z/events.out.tfevents.* > /dev/null
if grep -q "trivially" ev.out; then echo "10 classes labelled trivial"; exit 1; fi

# --fresh: one event file left in train_dir, none of the old run's in train_dir/eval
$T --train_dir a/b/run --max_steps 10 --batch_size 32 --log_every 5 --fresh 2> f.log
grep -q "event file(s)" f.log
[ "$(ls a/b/run/events.out.tfevents.* | wc -l)" -eq 1 ] || { ls a/b/run; echo "old event files left"; exit 1; }
if ls a/b/run/eval/events.out.tfevents.* 2>/dev/null; then echo "old eval event files left"; exit 1; fi

# --num_gpus without a GPU: one line, exit 2, nothing trained
rc=0; $T --train_dir g --max_steps 5 --batch_size 32 --num_gpus 2 --device cpu 2> g.log || rc=$?
[ "$rc" -eq 2 ] || { echo "--num_gpus on cpu: exit $rc, want 2"; cat g.log; exit 1; }
# one error line; usage errors add the one "HINT: see deeper train --help" line
[ "$(grep -c . g.log)" -eq 2 ] && [ "$(grep -c "error:" g.log)" -eq 1 ] && grep -q "^HINT: see deeper train --help$" g.log ||
  fail "--num_gpus on cpu: expected one error line and the usage hint"
check "--num_gpus on cpu: the line must point to --num_towers" grep -q "error: --num_gpus 2: .*CPU.*--num_towers" g.log
check "--num_gpus on cpu wrote a checkpoint" test ! -e g/checkpoint

# switches: the same names as augment's, passed on to the workers (their distortion line shows them)
# (every worker, local or remote, gets them from the dispatcher when it registers: check a remote one's line)
$T --train_dir sw --max_steps 2 --batch_size 32 --log_every 1 --no_crop --color --no_flip \
   --num_preprocess_threads 0 --listen "ipc://$PWD/sw.ipc" 2> sw.log &
tr=$!
timeout 60 "$DEEPER_BIN/deeper" augment --data_dir data --dispatcher "ipc://$PWD/sw.ipc" 2> swa.log &
wk=$!
check_exit $tr 0 "trainer with a remote worker"
kill $wk 2>/dev/null || true
check_exit $wk 0,143 "remote worker after its trainer finished"
grep -m1 -qF "flip off (flag), color on (flag), crop off (flag)" sw.log
grep -qF "distortions for this run: crop off, flip off, colour on" swa.log || { cat swa.log; exit 1; }
rc=0; $T --train_dir sw2 --max_steps 2 --flip --no_flip 2> c.log || rc=$?
[ "$rc" -eq 2 ] || fail "--flip --no_flip: exit $rc, expected 2"
check "--flip --no_flip: one line naming the contradiction" grep -q "error: --flip contradicts --no_flip" c.log
for p in train eval augment; do
  "$DEEPER_BIN/deeper" $p --help > h.txt
  for sw in flip no_flip color no_color crop no_crop; do
    grep -Eq "^  --$sw +.*\(default: from the dataset's profile\)$" h.txt || { echo "$p --help: --$sw"; exit 1; }
  done
done

# per-model defaults in --help; a flag wins; the checkpoint's batch size on resume
"$DEEPER_BIN/deeper" train --help --model inception_v3 > hi.txt
grep -Eq "^  --initial_learning_rate .*\(default: 0.1, inception_v3's" hi.txt
grep -Eq "^  --batch_size .*\(default: 32, inception_v3's" hi.txt
"$DEEPER_BIN/deeper" train --help --model nielsennet > hn.txt
grep -Eq "^  --initial_learning_rate .*\(default: 0.05, nielsennet's" hn.txt
grep -Eq "^  --image_size .*\(default: 28, nielsennet's" hn.txt
$T --train_dir r --max_steps 4 --batch_size 16 --initial_learning_rate 0.02 --log_every 2 2> r1.log
grep -m1 "settings:" r1.log | grep -qF "initial_learning_rate 0.02 (flag)"
$T --train_dir r --max_steps 8 --log_every 2 2> r2.log
first=$(grep -m1 -E '^[0-9-]+ [0-9:.]+: ' r2.log)
grep -qF "batch_size 16 (checkpoint)" <<<"$first" || { echo "resume: $first"; exit 1; }
grep -qF "initial_learning_rate 0.05 (model default)" <<<"$first"

# recall @ 5 with 3 classes: labelled as trivially 1
"$PY" - <<'PYEOF'
import gzip, os
from PIL import Image
import numpy as np
raw = gzip.open(os.environ.get("DEEPER_FMNIST", "/usr/share/datasets/fashion-mnist") + "/t10k-images-idx3-ubyte.gz").read()[16:]
for sub, off in (("train", 0), ("validation", 30)):
    for c in range(3):
        os.makedirs("three/%s/c%d" % (sub, c), exist_ok=True)
        for i in range(10):
            k = off + c * 10 + i
            Image.fromarray(np.frombuffer(raw[k * 784:(k + 1) * 784], np.uint8).reshape(28, 28)).save(
                "three/%s/c%d/%d.png" % (sub, c, i))
PYEOF
"$DEEPER_BIN/deeper" ingest --train_directory three/train --validation_directory three/validation \
  --output_directory three_ds --channels 1 --quiet
"$DEEPER_BIN/deeper" train --data_dir three_ds --train_dir t3 --max_steps 3 --batch_size 10 \
  --num_preprocess_threads 1 2> t3.log
"$DEEPER_BIN/deeper" eval --data_dir three_ds --checkpoint_dir t3 --run_once --batch_size 10 \
  --num_preprocess_threads 1 > t3.out 2> t3e.log
cat t3.out
grep -Eq "recall @ 5 = 1\.0000 \(trivially 1: 3 classes <= 5\) \[30 examples\]" t3.out
echo ok
