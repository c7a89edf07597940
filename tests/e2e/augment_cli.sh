#!/usr/bin/env bash
# deeper augment's command line: --help, one clear error line (and exit code)
# for bad usage (exit 2), a missing and an incomplete dataset (exit 3: a restart cannot help);
# --dump writes PNGs;
# profile defaults (digits: no flip, no colour) and explicit overrides.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || skip "Debian's dataset-fashion-mnist is not installed"
cd "$TMPDIR"
grep -q -- "--input_queue_memory_factor" <<<"$("$AUG" --help)"

expect_error() {   # expect_error CODE PATTERN ARGS...
  local code=$1 pat=$2; shift 2
  set +e; "$AUG" "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ $rc -eq "$code" ] || { echo "exit $rc (wanted $code) for: $*"; cat err.txt; exit 1; }
  [ "$(wc -l < err.txt)" -le 2 ] || { echo "more than one error line for: $*"; cat err.txt; exit 1; }
  grep -q -- "$pat" err.txt || { echo "error for '$*' does not mention '$pat':"; cat err.txt; exit 1; }
}
expect_error 2 "data_dir" --connect tcp://127.0.0.1:1
expect_error 2 "connect" --data_dir x
expect_error 2 "nope" --nope
expect_error 3 "$TMPDIR/none" --data_dir "$TMPDIR/none" --connect tcp://127.0.0.1:1

make_fmnist_ds fm 64
cp -r fm broken
rm broken/train-00001-of-00002.mdb
expect_error 3 "train-00001-of-00002.mdb" --data_dir broken --connect tcp://127.0.0.1:1
expect_error 2 "worker" --data_dir fm --worker 2 --num_workers 2 --connect tcp://127.0.0.1:1

# digits profile: gray, no flip, no colour; dump writes PNG files
"$AUG" --data_dir fm --dump 5 --dump_dir d1 --image_size 28 2>log1.txt
[ "$(ls d1/*.png | wc -l)" = 5 ] || { echo "dump wrote $(ls d1 | wc -l) files"; exit 1; }
grep -q "digits profile; crop on, flip off, colour off" log1.txt || { cat log1.txt; exit 1; }
$PY -c "
from PIL import Image; import glob
for f in glob.glob('d1/*.png'):
    im = Image.open(f); assert im.size == (28, 28) and im.mode == 'L', (f, im.size, im.mode)"
# explicit flags override the profile, both ways
"$AUG" --data_dir fm --dump 2 --dump_dir d2 --flip --channels 3 2>log2.txt
grep -q "flip on" log2.txt && grep -q "gray expanded to RGB" log2.txt || { cat log2.txt; exit 1; }
make_photo_ds photo 6
"$AUG" --data_dir photo --dump 2 --dump_dir d3 --no_flip --no_color 2>log3.txt
grep -q "photo profile; crop on, flip off, colour off" log3.txt || { cat log3.txt; exit 1; }
"$AUG" --data_dir photo --dump 2 --dump_dir d4 2>log4.txt
grep -q "shuffle buffer 18 records" log4.txt || { cat log4.txt; exit 1; }
echo "cli ok"
