#!/usr/bin/env bash
# Hostile and damaged checkpoints in eval, classify, export and train:
#  - a FIFO where a checkpoint (or the index, or an image) is expected is refused within a
#    second with one line naming it, never waited on;
#  - SIGTERM during a slow load (a checkpoint with a 2 GiB sparse tensor whose checksum takes
#    seconds) ends the program within a second with "stopped by SIGTERM while ...";
#  - one changed tensor value, a renamed, an extra or a missing tensor, and each bad metadata
#    field are refused with one line naming the file and the tensor or field;
#  - a checkpoint without checksums (format 1) still loads, with one notice;
#  - classify's error line for a file that is not an image comes out whole.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist classify export
cd "$TMPDIR"
EDIT="$PY $DEEPER_ROOT/tests/ref/ckpt_edit.py"
fmnist_dataset data 300 50
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --model nielsennet --max_steps 2 --batch_size 8 \
  --num_preprocess_threads 1 2> train.log
CK=run/model.ckpt-2.safetensors
"$PY" - <<'PYEOF'
import struct, zlib
w = h = 28
raw = b"".join(b"\0" + bytes((x * 9 + y * 3) % 256 for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open("img.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PYEOF
"$DEEPER_BIN/deeper" classify --checkpoint_dir run img.png > ok.txt
grep -q "^img.png" ok.txt

now() { date +%s.%N; }
# refused PROGRAM-ARGS... : must fail within 3 s (5 s hard limit) with exactly one "error:" line
refused() {
  local t0 rc=0
  t0=$(now)
  timeout 5 "$DEEPER_BIN/deeper" "$@" > out.txt 2> err.txt || rc=$?
  local dt; dt=$(echo "$(now) - $t0" | bc)
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then echo "deeper $*: rc $rc (expected a refusal)"; cat err.txt; exit 1; fi
  if (( $(echo "$dt > 3" | bc) )); then echo "deeper $*: took $dt s"; exit 1; fi
  if [ "$(grep -c "error:" err.txt)" -ne 1 ]; then echo "deeper $*: not one error line:"; cat err.txt; exit 1; fi
}
# each PROGRAM on checkpoint dir D must be refused with PATTERN in its error line
all_refuse() {
  local d=$1 pat=$2
  refused classify --checkpoint_dir "$d" img.png;           grep "error:" err.txt | grep -q -- "$pat" || { cat err.txt; exit 1; }
  refused eval --data_dir data --checkpoint_dir "$d" --run_once --num_preprocess_threads 1 --subset validation
  grep "error:" err.txt | grep -q -- "$pat" || { cat err.txt; exit 1; }
  refused export --checkpoint_dir "$d" --output "$d.export.safetensors"; grep "error:" err.txt | grep -q -- "$pat" || { cat err.txt; exit 1; }
  test ! -e "$d.export.safetensors"
}
variant() {   # variant DIR OP ARGS... : DIR holds one edited copy of the checkpoint
  local d=$1; shift
  mkdir -p "$d"
  $EDIT "$CK" "$d/model.ckpt-2.safetensors" "$@"
}

# ---- FIFOs
mkdir fifo1; mkfifo fifo1/model.ckpt-999.safetensors
all_refuse fifo1 "no usable checkpoint .*fifo1/model.ckpt-999.safetensors: not a regular file (a FIFO)"
refused export --checkpoint_path fifo1/model.ckpt-999.safetensors --output x.safetensors
grep -q "model.ckpt-999.safetensors: not a regular file (a FIFO)" err.txt
refused train --data_dir data --train_dir fresh --model nielsennet --max_steps 2 --batch_size 8 \
  --num_preprocess_threads 1 --pretrained_model_checkpoint_path fifo1/model.ckpt-999.safetensors
grep -q "model.ckpt-999.safetensors: not a regular file (a FIFO)" err.txt
# a FIFO as the newest candidate or as the index is passed over with a line; the good one is used
mkdir fifo2; cp "$CK" fifo2/; mkfifo fifo2/model.ckpt-999.safetensors fifo2/checkpoint
timeout 5 "$DEEPER_BIN/deeper" classify --checkpoint_dir fifo2 img.png > out.txt 2> err.txt
grep -q "fifo2/checkpoint: not a regular file (a FIFO)" err.txt
grep -q "fifo2/model.ckpt-999.safetensors: not a regular file (a FIFO)" err.txt
cmp out.txt ok.txt
# a FIFO among the images: one line for it, the others are classified
mkfifo pipe.png
rc=0; timeout 5 "$DEEPER_BIN/deeper" classify --checkpoint_dir run pipe.png img.png > out.txt 2> err.txt || rc=$?
test $rc -eq 1
grep -q "pipe.png: not a regular file (a FIFO)" err.txt
cmp out.txt ok.txt

# a file that is not an image: its error line comes out whole
echo "just some notes" > notes.txt
rc=0; "$DEEPER_BIN/deeper" classify --checkpoint_dir run notes.txt > out.txt 2> err.txt || rc=$?
test $rc -eq 1
# (the decoder's words may change: one line, the name once, then the decoder's sentence from its start)
test "$(wc -l < err.txt)" -eq 1 && test "$(grep -o "notes.txt" err.txt | wc -l)" -eq 1 || { cat err.txt; exit 1; }
grep -Eq "^deeper classify: error: notes.txt: (not|no|unknown|unsupported) " err.txt || { cat err.txt; exit 1; }

# ---- SIGTERM while loading: a 4 GiB hole takes seconds to checksum (a fresh file each time,
# so the page cache never holds it)
stop_while_loading() {   # stop_while_loading NAME ARGS... : SIGTERM after 1 s must end it within 1 s
  local name=$1; shift
  rm -rf slow; mkdir slow
  $EDIT "$CK" slow/model.ckpt-3.safetensors add-sparse junk 1073741824
  "$DEEPER_BIN/deeper" "$@" > out.txt 2> err.txt &
  local pid=$! rc=0
  sleep 1
  kill -0 $pid   # still loading
  local t0; t0=$(now)
  kill -TERM $pid
  wait $pid || rc=$?
  local dt; dt=$(echo "$(now) - $t0" | bc)
  echo "$name: exit $rc $dt s after SIGTERM"
  test $rc -eq 143
  (( $(echo "$dt < 1" | bc) ))
  grep -q "deeper $name: stopped by SIGTERM while" err.txt || { cat err.txt; exit 1; }
}
stop_while_loading classify classify --checkpoint_dir slow img.png
stop_while_loading eval eval --data_dir data --checkpoint_dir slow --run_once --num_preprocess_threads 1 --subset validation
stop_while_loading export export --checkpoint_dir slow --output slow.export.safetensors
test ! -e slow.export.safetensors
stop_while_loading train train --data_dir data --train_dir slow --model nielsennet --max_steps 5 --batch_size 8 \
  --num_preprocess_threads 1
test ! -e slow/model.ckpt-5.safetensors
rm -rf slow

# ---- content and names
variant poked poke ema/fc.bias 3 -1.4e37
all_refuse poked "poked/model.ckpt-2.safetensors: tensor ema/fc.bias: content checksum mismatch"
variant renamed rename fc2.weight 'fc2.wei#ht'
all_refuse renamed "renamed/model.ckpt-2.safetensors: tensor fc2.weight has a checksum but is not in the file"
# format 1 files (no checksums) load with a notice, and are held to strict names too
variant old strip-crc
"$DEEPER_BIN/deeper" classify --checkpoint_dir old img.png > out.txt 2> err.txt
cmp out.txt ok.txt
grep -q "format 1 checkpoint without content checksums: loaded unverified" err.txt
mkdir old_renamed; $EDIT old/model.ckpt-2.safetensors old_renamed/model.ckpt-2.safetensors rename fc2.weight 'fc2.wei#ht'
all_refuse old_renamed "old_renamed/model.ckpt-2.safetensors: tensor fc2.wei#ht is not a parameter of this model"
mkdir old_missing; $EDIT old/model.ckpt-2.safetensors old_missing/model.ckpt-2.safetensors drop fc2.weight
all_refuse old_missing "old_missing/model.ckpt-2.safetensors: tensor fc2.weight of the model is missing"
mkdir old_extra; $EDIT old/model.ckpt-2.safetensors old_extra/model.ckpt-2.safetensors rename ema/fc2.bias ema/fc9.bias
all_refuse old_extra "tensor ema/fc9.bias is not a parameter of this model"
# a tensor without a checksum in a format 2 file
variant nosum del-meta crc32c/fc.bias
all_refuse nosum "tensor fc.bias has no checksum"

# ---- metadata fields, each refused with one line naming the field
i=0
while read -r key value; do
  i=$((i + 1))
  variant "meta$i" set-meta "$key" "$value"
  refused classify --checkpoint_dir "meta$i" img.png
  grep -q "meta$i/model.ckpt-2.safetensors: __metadata__.$key" err.txt || { echo "$key=$value:"; cat err.txt; exit 1; }
done <<'EOF2'
step abc
step -1
step 12x
image_size 100000
image_size -28
image_size 0
channels 2
channels 0
num_classes 0
num_classes 99999999999
seed -1
epoch -3
position 1e3
num_workers -1
batch_size 0
learning_rate nan
learning_rate -0.5
format_version 99
EOF2
variant meta_nostep del-meta step
refused classify --checkpoint_dir meta_nostep img.png
grep -q "__metadata__.step is missing" err.txt
# image_size 100000 in eval and export too (no "cannot allocate" from an overflowed size)
all_refuse meta4 "__metadata__.image_size = \"100000\": expected a whole number in 1..4096"
echo ok
