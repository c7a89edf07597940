#!/usr/bin/env bash
# train_bad_data.sh — damaged data and manifests end to end, on a small
# Fashion-MNIST dataset:
#  - a manifest saying 3 channels for gray records, or with a second "train"
#    key: train exits non-zero within seconds with one line naming it (it
#    used to wait forever, or to train on half the data);
#  - a record whose label was changed 8 -> 200 on disk, and one changed to
#    another valid class: both caught by the record CRC, skipped with a line
#    naming shard and key, training goes on to its last step; info --verify
#    reports both and exits non-zero;
#  - eval over a validation subset with one damaged record says the record
#    was skipped instead of failing or changing the total silently.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 400 120

# -- manifests that contradict their records or repeat a key
doctor() {   # out_dir python-expression-on-the-manifest-text
  rm -rf "$1"; mkdir "$1"
  for f in data/*.mdb; do ln -s "$PWD/$f" "$1/"; done
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
text = open("data/manifest.json").read()
open(sys.argv[1] + "/manifest.json", "w").write(eval(sys.argv[2]))
PYEOF
}
expect_refused() {   # dir needle
  local t0=$SECONDS rc=0
  timeout 60 "$DEEPER_BIN/deeper" train --data_dir "$1" --train_dir "run_$1" --max_steps 5 --batch_size 16 \
    --num_preprocess_threads 2 > "$1.out" 2> "$1.err" || rc=$?
  [ $rc -ne 0 ] || { echo "train accepted $1"; exit 1; }
  [ $rc -ne 124 ] || { echo "train hung on $1 (killed after 60 s)"; tail "$1.err"; exit 1; }
  grep -q "$2" "$1.err" || { echo "no line with '$2' for $1"; cat "$1.err"; exit 1; }
  echo "$1: refused in $((SECONDS - t0)) s: $(grep "$2" "$1.err" | head -1)"
}
doctor rgb 'text.replace("\"channels\":\t1", "\"channels\":\t3")'
expect_refused rgb "image.channels 3"
doctor dupkey 'text.replace("\"subsets\":\t{", "\"subsets\":\t{\n\"train\": {\"count\": 1, \"shards\": [{\"file\": \"x.mdb\", \"records\": 1, \"first_id\": 0, \"last_id\": 0, \"checksum\": \"00000000\", \"bytes\": 1}]},", 1)'
expect_refused dupkey 'has the key "train" twice'

# -- labels changed on disk: 8 -> 200 and 8 -> 9 (a valid class)
"$PY" - <<'PYEOF'
import glob, struct
path = sorted(glob.glob("data/train-*.mdb"))[0]
b = bytearray(open(path, "rb").read())
done = []
i = b.find(b"DRC1")
while i >= 0 and len(done) < 2:
    if struct.unpack_from("<H", b, i + 4)[0] == 2 and struct.unpack_from("<i", b, i + 8)[0] == 8:
        b[i + 8] = 200 if not done else 9
        done.append(i)
    i = b.find(b"DRC1", i + 4)
assert len(done) == 2, done
open(path, "wb").write(bytes(b))
print("changed two labels in", path)
PYEOF
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --max_steps 30 --batch_size 16 \
  --num_preprocess_threads 2 --save_interval_steps 30 --seed 5 > train.out 2> train.err || { tail train.err; exit 1; }
test -f run/model.ckpt-30.safetensors
n=$(grep -c "skipping bad record [0-9]* in data/train-[0-9-]*of-[0-9]*.mdb: record: crc32c" train.err || true)
[ "$n" -ge 2 ] || { echo "expected the two damaged records named, got $n lines"; grep -i "bad\|skip" train.err; exit 1; }
if grep -qi "batches lost" train.err; then echo "a batch was lost"; exit 1; fi
set +e
"$DEEPER_BIN/deeper" info --verify data > verify.out 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || { echo "info --verify passed a damaged dataset"; cat verify.out; exit 1; }
[ "$(grep -c "train-.*record [0-9]*: record: crc32c" verify.out)" -eq 2 ] || { cat verify.out; exit 1; }

# -- eval with one damaged validation record: counted, not silent
"$PY" - <<'PYEOF'
import glob
path = sorted(glob.glob("data/validation-*.mdb"))[0]
b = bytearray(open(path, "rb").read())
i = b.find(b"DRC1"); i = b.find(b"DRC1", i + 4)
b[i + 100] ^= 0x10      # a payload byte of the second record
open(path, "wb").write(bytes(b))
PYEOF
"$DEEPER_BIN/deeper" eval --data_dir data --checkpoint_dir run --eval_dir ev --run_once --batch_size 32 \
  --num_preprocess_threads 2 > eval.out 2> eval.err || { cat eval.err; exit 1; }
cat eval.out
grep -Eq 'precision @ 1 = [0-9.]+ recall @ 5 = [0-9.]+ \[119 examples, 1 bad records skipped\]$' eval.out
grep -q "1 of the validation subset's 120 records were skipped as bad" eval.err
echo ok
