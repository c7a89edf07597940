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
  rc=0; wait $pid 2>/dev/null || rc=$?
  case $rc in 0|137) ;; *) echo "FAIL: ingest exited $rc (expected 0, or 137 from the kill)"; exit 1;; esac
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
# a kill that never lands mid-run tests nothing: at least one must leave no manifest
[ $empties -gt 0 ] || { echo "FAIL: every kill -9 came after the run had finished"; exit 1; }
"${cmd[@]}" --output_directory out > /dev/null
check_complete out

# a worker killed by a signal: the run fails, no manifest.  A run that ends
# before the kill lands must still be complete; then try again (5 times at most).
landed=0
for attempt in 1 2 3 4 5; do
  rm -rf out2
  "${cmd[@]}" --output_directory out2 > out2.log 2>&1 &
  pid=$!
  kid=""
  for _ in $(seq 1 250); do
    kid=$(pgrep -P $pid | head -1 || true)
    if [ -n "$kid" ]; then break; fi
    sleep 0.02
  done
  if [ -z "$kid" ]; then echo "FAIL: no worker process of ingest $pid appeared within 5 s"; cat out2.log; exit 1; fi
  kill -9 "$kid"
  rc=0; wait $pid || rc=$?
  if [ $rc -eq 0 ]; then
    [ -e out2/manifest.json ] || { echo "FAIL: ingest exited 0 without writing a manifest"; exit 1; }
    check_complete out2        # it finished before the kill landed
    continue
  fi
  [ ! -e out2/manifest.json ] || { echo "FAIL: manifest after a failed run (exit $rc)"; exit 1; }
  grep -q "deeper ingest: error: worker .* killed by signal 9" out2.log || {
    echo "FAIL: exit $rc but no line naming the killed worker:"; cat out2.log; exit 1; }
  landed=1
  break
done
[ $landed -eq 1 ] || { echo "FAIL: 5 runs finished before their worker could be killed"; exit 1; }
echo ok
