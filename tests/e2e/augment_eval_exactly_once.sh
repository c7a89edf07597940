#!/usr/bin/env bash
# Eval streams over real sockets: with W = 1, 2, 3 workers the union of one
# pass is exactly the validation subset, each example once, the last batch of
# each worker carries its true size, and each worker's END marker counts what
# it sent.  Also: Fashion-MNIST (gray, digits profile) eval with --channels 3.
# The expected ids come from the inputs this test made, read back from the
# shards by an independent reader (ingest_check.py), not from the manifest.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || skip "Debian's dataset-fashion-mnist is not installed"
CHECKDIR="$DEEPER_ROOT/tests/e2e"
cd "$TMPDIR"
make_photo_ds ds 20            # 3 classes x 10 validation images
count=$(find "$TMPDIR/img-20/validation" -type f | wc -l)
[ "$count" -eq 30 ] || fail "made $count validation images, expected 30"
# ids = the shard keys of exactly the validation files made above, each once
expected=$($PY - "$CHECKDIR" "$TMPDIR/img-20/validation" <<'PYEOF'
import os, sys
sys.path.insert(0, sys.argv[1])
import ingest_check
made = sorted(os.path.relpath(os.path.join(d, f), sys.argv[2]) for d, _, fs in os.walk(sys.argv[2]) for f in fs)
_, recs = ingest_check.read_dataset("ds")
val = {name: r["key"] for (sub, name), r in recs.items() if sub == "validation"}
assert sorted(val) == made, ("validation records differ from the files made", sorted(val), made)
print(" ".join(map(str, sorted(val.values()))))
PYEOF
)

# ends_match DUMP W N: W workers; per worker batches of 4 but the last, one END
# marker whose count is what that worker sent; N examples in all
ends_match() {
  $PY - "$@" <<'PYEOF'
import sys, collections
dump, nw, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bs = int(sys.argv[4]) if len(sys.argv) > 4 else 4
per = collections.defaultdict(list)
for w, seq, epoch, n, lh, ph, count in (l.split() for l in open(dump)):
    per[int(w)].append((int(seq), int(n), int(count)))
assert sorted(per) == list(range(nw)), ("workers seen", sorted(per))
sent_all = 0
for w, b in sorted(per.items()):
    b.sort()
    ends = [x for x in b if x[1] == 0]
    assert len(ends) == 1 and ends[0] == b[-1], ("worker %d: one END marker, last" % w, b)
    sizes = [n for _, n, _ in b[:-1]]
    assert sizes and all(n == bs for n in sizes[:-1]) and 1 <= sizes[-1] <= bs, ("worker %d batch sizes" % w, sizes)
    assert all(c == 0 for _, _, c in b[:-1]), ("worker %d: count set on a data batch" % w, b)
    assert ends[0][2] == sum(sizes), ("worker %d: END count %d, sent %d" % (w, ends[0][2], sum(sizes)))
    sent_all += sum(sizes)
assert sent_all == total, ("END counts add up to %d, expected %d" % (sent_all, total))
print("END markers: %s" % {w: b[-1][2] for w, b in sorted(per.items())})
PYEOF
}

for W in 1 2 3; do
  ep="ipc://$TMPDIR/eval$W"
  consume --bind "$ep" --eval --workers $W --timeout 30 --dump dump$W > ids$W &
  cpid=$!
  sleep 0.3
  wpids=()
  for ((i = 0; i < W; i++)); do
    "$AUG" --data_dir ds --subset validation --worker $i --num_workers $W --connect "$ep" \
      --batch_size 4 --image_size 32 --num_passes 1 --quiet & wpids+=($!); PIDS+=($!)
  done
  check_exit $cpid 0 "W=$W: consumer"
  for p in "${wpids[@]}"; do check_exit $p 0 "W=$W: worker $p after its one pass"; done
  got=$(sed -n 's/^ids //p' ids$W)
  [ "$got" = "$expected" ] || { echo "got:      $got"; echo "expected: $expected"; fail "W=$W: ids differ"; }
  ends_match dump$W $W $count
  echo "W=$W: $count examples exactly once"
done
# gray digits, expanded to RGB, W=2
make_fmnist_ds fm 200
fmexpected=$($PY - "$CHECKDIR" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import ingest_check
_, recs = ingest_check.read_dataset("fm")
val = sorted((int(name.rsplit(":", 1)[1]), r["key"]) for (sub, name), r in recs.items() if sub == "validation")
assert [i for i, _ in val] == list(range(len(val))) and len(val) > 0, "validation records are not the first test images"
print(" ".join(str(k) for k in sorted(key for _, key in val)))
PYEOF
)
fmcount=$(wc -w <<<"$fmexpected")
ep="ipc://$TMPDIR/evalfm"
consume --bind "$ep" --eval --workers 2 --timeout 30 --dump dumpfm > idsfm &
cpid=$!
sleep 0.3
wpids=()
for i in 0 1; do
  "$AUG" --data_dir fm --subset validation --worker $i --num_workers 2 --connect "$ep" --batch_size 16 \
    --image_size 28 --channels 3 --num_passes 1 --quiet & wpids+=($!); PIDS+=($!)
done
check_exit $cpid 0 "fashion-mnist: consumer"
for p in "${wpids[@]}"; do check_exit $p 0 "fashion-mnist: worker $p after its one pass"; done
[ "$(sed -n 's/^ids //p' idsfm)" = "$fmexpected" ] || fail "fashion-mnist: the ids are not the $fmcount validation images, each once"
ends_match dumpfm 2 "$fmcount" 16
echo "fashion-mnist: $fmcount examples exactly once"
