#!/usr/bin/env bash
# Determinism over real processes and sockets: two runs with the same seed and
# W = 2 give bit-identical batches (labels, ids, pixels) for every
# (worker, seq); another seed gives different ones; --start_batch 3 resumes
# exactly where batch 3 of a fresh run was, and sends no batch before it.
# Raw and JPEG storage.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
cd "$TMPDIR"

run() {  # run NAME DATASET SEED FIRST [extra worker args]: first batches of W=2 -> NAME.txt (worker seq ... sorted);
         # FIRST: the lowest seq that may arrive
  local name=$1 ds=$2 seed=$3 first=$4; shift 4
  local ep="ipc://$TMPDIR/$name"
  consume --bind "$ep" --per_worker 8 --timeout 30 --dump "$name.raw" 2>/dev/null &
  local cpid=$! pids=()
  sleep 0.3
  for i in 0 1; do
    "$AUG" --data_dir "$ds" --worker $i --num_workers 2 --connect "$ep" --batch_size 6 --image_size 48 \
      --seed "$seed" --input_queue_memory_factor 1 --quiet "$@" & pids+=($!)
  done
  check_exit $cpid 0 "$name: consumer"
  kill "${pids[@]}"
  for p in "${pids[@]}"; do check_exit $p 0 "$name: worker $p stopped by SIGTERM"; done
  early=$(awk -v f="$first" '$2 < f' "$name.raw")
  [ -z "$early" ] || fail "$name: batches with seq below $first arrived: $(echo $early | head -c 200)"
  # keep seq 3..7 of both workers
  awk '$2 >= 3 && $2 <= 7' "$name.raw" | sort -n -k1,1 -k2,2 > "$name.txt"
  [ "$(wc -l < "$name.txt")" = 10 ] || { echo "$name: expected 10 batches, got:"; cat "$name.raw"; exit 1; }
}

for store in raw jpeg; do
  make_photo_ds ds-$store 30 $store
  run a-$store ds-$store 5 0
  run b-$store ds-$store 5 0
  run c-$store ds-$store 6 0
  run d-$store ds-$store 5 3 --start_batch 3
  cmp a-$store.txt b-$store.txt || { diff a-$store.txt b-$store.txt; fail "$store: same seed, different batches"; }
  if cmp -s a-$store.txt c-$store.txt; then fail "$store: another seed gave identical batches"; fi
  cmp a-$store.txt d-$store.txt || { diff a-$store.txt d-$store.txt; fail "$store: --start_batch 3 differs from a fresh run"; }
  echo "$store: identical across runs, seed-dependent, exact resume"
done
