# augment_lib.bash — helpers sourced by tests/e2e/augment_*.sh (not a test itself).
#   need_ingest            fail when deeper-ingest or deeper-augment is not built, skip (77)
#                          when python3-zmq, numpy or PIL is not installed
#   make_photo_ds DIR N [STORE]   N colour images per class (3 classes, mixed sizes,
#                          PNG and JPEG files) ingested into DIR (raw or jpeg storage)
#   make_fmnist_ds DIR N   the first N Fashion-MNIST training and N test images
#   free_port              an unused TCP port on 127.0.0.1
#   consume ARGS...        scripts/consume_stream.py with /usr/bin/python3
PY=/usr/bin/python3
source "$DEEPER_ROOT/tests/e2e/check_lib.bash"
AUG="$DEEPER_BIN/deeper-augment"

need_ingest() {
  need_programs ingest augment
  need_py_modules $PY zmq numpy PIL
}

make_photo_ds() {
  local dir=$1 n=$2 store=${3:-raw}
  $PY - "$TMPDIR/img-$n" "$n" <<'PYEOF'
import os, sys, numpy as np
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
for sub, m in (("train", n), ("validation", max(1, n // 2))):
    for c, name in enumerate(["red", "green", "blue"]):
        d = os.path.join(out, sub, name); os.makedirs(d, exist_ok=True)
        for i in range(m):
            h, w = rng.integers(40, 90), rng.integers(40, 90)
            a = (rng.random((h, w, 3)) * 80).astype(np.uint8); a[..., c] += 150
            Image.fromarray(a).save(os.path.join(d, "%d.%s" % (i, "png" if i % 2 else "jpg")))
PYEOF
  "$DEEPER_BIN/deeper-ingest" --train_directory "$TMPDIR/img-$n/train" --validation_directory "$TMPDIR/img-$n/validation" \
    --output_directory "$dir" --train_shards 3 --validation_shards 2 --num_threads 1 --store "$store" --quiet >/dev/null
}

make_fmnist_ds() {
  local dir=$1 n=$2 src=/usr/share/datasets/fashion-mnist
  [ -f $src/train-images-idx3-ubyte.gz ] || skip "Debian's dataset-fashion-mnist is not installed"
  "$DEEPER_BIN/deeper-ingest" --train_images $src/train-images-idx3-ubyte.gz --train_labels $src/train-labels-idx1-ubyte.gz \
    --validation_images $src/t10k-images-idx3-ubyte.gz --validation_labels $src/t10k-labels-idx1-ubyte.gz \
    --output_directory "$dir" --train_shards 2 --validation_shards 2 --num_threads 1 --max_examples "$n" --quiet >/dev/null
}

free_port() { $PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

consume() { $PY "$DEEPER_ROOT/scripts/consume_stream.py" "$@"; }

# pids started by a test, killed on exit
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
