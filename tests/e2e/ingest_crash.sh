#!/usr/bin/env bash
# ingest_crash.sh — kill -9 at random moments.  After each kill the output
# directory must hold either no manifest, or a complete dataset that passes
# `deeper info --verify` and equals the reference; running the same command
# again must then produce the complete, correct dataset.  Also: a worker
# killed by a signal fails the run (non-zero exit, no manifest).
set -euo pipefail
D="$DEEPER_BIN"
cd "$TMPDIR"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f $FM/train-images-idx3-ubyte.gz ]; then
  echo "skip: Debian's dataset-fashion-mnist is not installed"; exit 77
fi
# JPEG storage of 40,000 images takes about a second or two here: a window to kill in
cmd=("$D/deeper-ingest" --train_images $FM/train-images-idx3-ubyte.gz --train_labels $FM/train-labels-idx1-ubyte.gz
     --max_examples 40000 --store jpeg --train_shards 6 --num_threads 2 --quiet)
"${cmd[@]}" --output_directory ref > /dev/null
grep checksum ref/manifest.json > ref.sums

check_complete() {   # dir: verify passes and the shards equal the reference
  "$D/deeper" info --verify "$1" > verify.txt || { cat verify.txt; echo "verify failed on $1"; exit 1; }
  diff ref.sums <(grep checksum "$1/manifest.json") || { echo "$1 differs from the reference"; exit 1; }
}

completes=0; empties=0
for i in 1 2 3 4 5 6 7 8; do
  "${cmd[@]}" --output_directory out > /dev/null 2>&1 &
  pid=$!
  sleep "$(/usr/bin/python3 -c "import random; random.seed($i); print(round(random.uniform(0.0, 1.6), 3))")"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  sleep 0.1      # workers die with the parent (PR_SET_PDEATHSIG)
  if [ -e out/manifest.json ]; then
    check_complete out; completes=$((completes + 1))
  else
    empties=$((empties + 1))
  fi
  if [ $((i % 2)) -eq 0 ]; then          # sometimes finish the run, so the next kill meets a complete dataset
    "${cmd[@]}" --output_directory out > /dev/null
    check_complete out
  fi
done
echo "after kills: $completes complete, $empties without manifest"
"${cmd[@]}" --output_directory out > /dev/null
check_complete out

# a worker killed by a signal: the run fails, no manifest
"${cmd[@]}" --output_directory out2 > out2.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  kid=$(pgrep -P $pid | head -1 || true)
  [ -n "$kid" ] && break
  sleep 0.02
done
if [ -n "$kid" ]; then
  kill -9 "$kid"
  if wait $pid; then
    [ -e out2/manifest.json ] && check_complete out2   # it finished before the kill landed
  else
    [ ! -e out2/manifest.json ] || { echo "manifest after a failed run"; exit 1; }
    grep -q "deeper ingest: error: worker .* killed by signal 9" out2.log || { cat out2.log; exit 1; }
  fi
fi
echo ok
