#!/usr/bin/env bash
# Consumer memory with many workers and a stalled consumer: the trainer's consumer thread
# pauses 30 s before its first batch (DEEPER_DISPATCH_PAUSE=0:30; the dispatcher thread and
# libzmq keep running), 8 remote workers (tcp on 127.0.0.1) push as fast as credit allows.
# Prints the trainer's RSS growth during the pause against window x batch bytes.
# Usage: scripts/bench/remote/memory.sh [WORKERS] [IMAGE_SIZE] [BATCH]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
export DEEPER_ROOT=$ROOT DEEPER_BIN=${DEEPER_BIN:-$ROOT/bin}
NW=${1:-8}; IS=${2:-112}; BS=${3:-64}; WINDOW=16
TMPDIR=$(mktemp -d); export TMPDIR
source "$ROOT/tests/e2e/dispatch_lib.bash"
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$TMPDIR"' EXIT
cd "$TMPDIR"
fmnist_dataset data 2000 50 >/dev/null 2>&1
port=$(free_port); ep="tcp://127.0.0.1:$port"
DEEPER_DISPATCH_PAUSE=0:30 "$DEEPER_BIN/deeper-train" --data_dir data --train_dir run --num_preprocess_threads 0 \
  --listen "$ep" --insecure --max_steps 2 --batch_size $BS --image_size $IS --log_every 1 --threads 1 2> train.log &
tpid=$!
rss() { awk '/VmRSS/ {print $2}' /proc/$tpid/status; }
wait_grep "pausing the consumer" train.log 120 >/dev/null
sleep 0.5
base=$(rss)
for i in $(seq 1 $NW); do "$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" --name w$i --quiet 2>/dev/null & done
peak=$base
for i in $(seq 1 56); do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.5; done
wait $tpid
batch=$(( BS * IS * IS + 12 * BS + 96 ))
echo "$NW workers, batches of ${BS}x${IS}x${IS}x1 ($batch bytes), window $WINDOW:"
echo "  RSS before the workers came $base KiB, peak during the 30 s pause $peak KiB: +$(( peak - base )) KiB"
echo "  window x batch bytes = $(( WINDOW * batch / 1024 )) KiB; overhead beyond it $(( peak - base - WINDOW * batch / 1024 )) KiB"
grep -E "joined" train.log | tail -1
