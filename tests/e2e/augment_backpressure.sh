#!/usr/bin/env bash
# Flow control and recovery with real processes over TCP loopback:
#  - a slow consumer keeps the worker's memory bounded (RSS stops growing
#    while the consumer lags: SNDHWM + a fixed pool of zero-copy buffers);
#  - a consumer killed with SIGKILL and started again gets batches again from
#    the same, still running worker (which waited meanwhile);
#  - SIGTERM stops the worker cleanly (exit 0, one closing log line).
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/augment_lib.bash"
need_ingest
cd "$TMPDIR"
make_photo_ds ds 30
port=$(free_port)
ep="tcp://127.0.0.1:$port"
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }   # KiB

# 16 x 160x160x3 = 1.2 MB per batch
consume --bind "tcp://127.0.0.1:$port" --batches 14 --sleep 0.4 --timeout 30 2>c1.err &
c1=$!
sleep 0.3
"$AUG" --data_dir ds --connect "$ep" --batch_size 16 --image_size 160 --seed 1 2>worker.log &
w=$!; PIDS+=($w)
sleep 2.5; r1=$(rss $w)
sleep 2.5; r2=$(rss $w)
echo "worker RSS while the consumer lags: ${r1} KiB, then ${r2} KiB"
[ $((r2 - r1)) -lt 6000 ] || { echo "worker memory grew by $((r2 - r1)) KiB while the consumer lagged"; exit 1; }
[ "$r2" -lt 200000 ] || { echo "worker RSS ${r2} KiB is not bounded"; exit 1; }
kill -9 $c1
check_exit $c1 137 "slow consumer killed with kill -9"
sleep 1
kill -0 $w || { echo "worker died when its consumer was killed"; cat worker.log; exit 1; }
# a new consumer on the same endpoint gets batches again
consume --bind "tcp://127.0.0.1:$port" --batches 5 --timeout 20 2>c2.err || { echo "restarted consumer got nothing"; cat c2.err worker.log; exit 1; }
grep -q "5 batches" c2.err
kill -0 $w || { echo "worker exited"; exit 1; }
kill -TERM $w
for _ in $(seq 50); do kill -0 $w 2>/dev/null || break; sleep 0.1; done
if kill -0 $w 2>/dev/null; then echo "worker ignored SIGTERM"; exit 1; fi
check_exit $w 0 "worker after SIGTERM"
grep -q "stopping on signal" worker.log
echo "bounded memory, resumed after consumer restart, clean SIGTERM"
