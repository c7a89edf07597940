# tests/ref/train_common.sh — helpers sourced by tests/e2e/train_*.sh (not a test itself).
#
#   fmnist_subset DIR NTRAIN NVAL   write MNIST-format idx files (gzipped) holding the first
#                                   NTRAIN training and NVAL test images of Debian's Fashion-MNIST
#   fmnist_dataset OUT NTRAIN NVAL  the same, ingested into a deeper dataset at OUT
#   skip_unless_fmnist [PROG...]    exit 77 when the dataset package is missing; exit 1 when
#                                   deeper-{ingest,augment,train,eval,PROG...} is not built
#   skip_unless_gpu                 exit 77 when nvidia-smi lists no GPU, unless the runner's
#                                   device probe already found one (DEEPER_REQUIRE_GPU=1)
# and the assertions of tests/e2e/check_lib.bash (fail, skip, check, check_not, check_exit).
# DEEPER_FMNIST and DEEPER_PY (set by scripts/gpu-run on the GPU machine) override where
# Fashion-MNIST and a Python with numpy live.
FMNIST=${DEEPER_FMNIST:-/usr/share/datasets/fashion-mnist}
PY=${DEEPER_PY:-/usr/bin/python3}
source "$DEEPER_ROOT/tests/e2e/check_lib.bash"

skip_unless_gpu() {
  [ "${DEEPER_REQUIRE_GPU:-0}" = 1 ] && return 0
  nvidia-smi -L >/dev/null 2>&1 || skip "no GPU (nvidia-smi lists none)"
}

skip_unless_fmnist() {
  need_programs ingest augment train eval "$@"
  [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "Debian's dataset-fashion-mnist is not installed"
}

fmnist_subset() {
  "$PY" - "$FMNIST" "$1" "$2" "$3" <<'PYEOF'
import gzip, os, struct, sys
src, dst, ntr, nva = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst, exist_ok=True)
def cut(name, n):
    with gzip.open(os.path.join(src, name)) as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xff
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    per = 1
    for d in dims[1:]:
        per *= d
    dims[0] = min(n, dims[0])
    out = data[:4] + struct.pack(">" + "I" * ndim, *dims) + data[4 + 4 * ndim: 4 + 4 * ndim + dims[0] * per]
    with gzip.open(os.path.join(dst, name), "wb") as f:
        f.write(out)
cut("train-images-idx3-ubyte.gz", ntr); cut("train-labels-idx1-ubyte.gz", ntr)
cut("t10k-images-idx3-ubyte.gz", nva); cut("t10k-labels-idx1-ubyte.gz", nva)
PYEOF
}

fmnist_dataset() {
  local out=$1 raw=$TMPDIR/fmnist_raw_$$
  fmnist_subset "$raw" "$2" "$3"
  "$DEEPER_BIN/deeper" ingest \
    --train_images "$raw/train-images-idx3-ubyte.gz" --train_labels "$raw/train-labels-idx1-ubyte.gz" \
    --validation_images "$raw/t10k-images-idx3-ubyte.gz" --validation_labels "$raw/t10k-labels-idx1-ubyte.gz" \
    --output_directory "$out" --train_shards 2 --validation_shards 2 --num_threads 2 >/dev/null
}
