#!/usr/bin/env bash
# Eval streams over real sockets: with W = 1, 2, 3 workers the union of one
# pass is exactly the validation subset, each example once, the last batch of
# each worker carries its true size, and each worker's END marker counts what
# it sent.  Also: Fashion-MNIST (gray, digits profile) eval with --channels 3.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
cd "$TMPDIR"
make_photo_ds ds 20            # 30 validation images
count=$($PY -c "import json; print(json.load(open('ds/manifest.json'))['subsets']['validation']['count'])")
expected=$($PY -c "
import json; m=json.load(open('ds/manifest.json'))
ids=[]
for s in m['subsets']['validation']['shards']: ids += range(s['first_id'], s['last_id']+1)
print(' '.join(map(str, sorted(ids))))")
for W in 1 2 3; do
  ep="ipc://$TMPDIR/eval$W"
  consume --bind "$ep" --eval --workers $W --timeout 30 --dump dump$W > ids$W &
  cpid=$!
  sleep 0.3
  for ((i = 0; i < W; i++)); do
    "$AUG" --data_dir ds --subset validation --worker $i --num_workers $W --connect "$ep" \
      --batch_size 4 --image_size 32 --num_passes 1 --quiet & PIDS+=($!)
  done
  wait $cpid
  got=$(sed -n 's/^ids //p' ids$W)
  [ "$got" = "$expected" ] || { echo "W=$W: ids differ"; echo "got:      $got"; echo "expected: $expected"; exit 1; }
  # per worker: batches of 4 except the last; END count = examples sent
  $PY - dump$W $W <<'PYEOF'
import sys, collections
lines = [l.split() for l in open(sys.argv[1])]
per = collections.defaultdict(list)
for w, seq, epoch, n, *_ in lines: per[int(w)].append((int(seq), int(n)))
assert len(per) == int(sys.argv[2]), per.keys()
for w, bs in per.items():
    bs.sort()
    sizes = [n for _, n in bs]
    assert sizes[-1] == 0, ("no END marker", w, sizes)
    data = sizes[:-1]
    assert all(n == 4 for n in data[:-1]) and 1 <= data[-1] <= 4, (w, sizes)
PYEOF
  echo "W=$W: $count examples exactly once"
done
# gray digits, expanded to RGB, W=2
make_fmnist_ds fm 200
ep="ipc://$TMPDIR/evalfm"
consume --bind "$ep" --eval --workers 2 --timeout 30 > idsfm &
cpid=$!
sleep 0.3
for i in 0 1; do
  "$AUG" --data_dir fm --subset validation --worker $i --num_workers 2 --connect "$ep" --batch_size 16 \
    --image_size 28 --channels 3 --num_passes 1 --quiet & PIDS+=($!)
done
wait $cpid
n=$(sed -n 's/^ids //p' idsfm | wc -w)
fmcount=$($PY -c "import json; print(json.load(open('fm/manifest.json'))['subsets']['validation']['count'])")
[ "$n" = "$fmcount" ] || { echo "fashion-mnist: $n ids, expected $fmcount"; exit 1; }
[ "$(sed -n 's/^ids //p' idsfm | tr ' ' '\n' | sort -u | wc -l)" = "$fmcount" ] || { echo "duplicates"; exit 1; }
echo "fashion-mnist: $fmcount examples exactly once"
