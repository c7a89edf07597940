#!/usr/bin/env bash
# The dispatcher's cap on open connections (--max_connections) against a flood of idle tcp
# connections on 127.0.0.1 that never start a ZeroMQ handshake:
#   - beyond the cap the oldest of them is shut down at once, with rate-limited lines naming
#     the addresses and running totals (a summary line sums up what the rate limit held back);
#   - a real worker connecting while the cap is full of idle sockets gets in at once (the
#     oldest connection still without a handshake makes room), registers and training
#     proceeds;
#   - a cap that leaves no room for the local workers is refused with one line.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50

rc=0; "$DEEPER_BIN/deeper" train --data_dir data --train_dir bad --num_preprocess_threads 2 \
  --max-connections 2 --max_steps 1 2> bad.log || rc=$?
cat bad.log
test $rc -ne 0
grep -q -- "--max_connections 2: must exceed the 2 local workers" bad.log
"$DEEPER_BIN/deeper" train --help 2>&1 | grep -q -- "--max_connections"
"$DEEPER_BIN/deeper" eval --help 2>&1 | grep -q -- "--max_connections"

cap=8 idle=30
port=$(free_port)
ep="tcp://127.0.0.1:$port"
# the consumer pauses 4 s before batch 2, so the connections stay while we count them
DEEPER_DISPATCH_PAUSE=2:4 "$DEEPER_BIN/deeper" train --data_dir data --train_dir run --num_preprocess_threads 0 --listen "$ep" --insecure \
  --max_connections $cap --max_steps 12 --batch_size 16 --log_every 4 --threads 1 2> train.log &
tpid=$!; PIDS+=($tpid)
wait_grep "waiting for remote augment workers" train.log 60
# idle connections: connect, send nothing; count those the trainer shuts down
mkfifo go
"$PY" - "$port" $idle > idle.log <<'PYEOF' &
import socket, sys, time, select
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port)); socks.append(s); time.sleep(0.01)
def closed():
    k = 0
    for s in socks:
        if s.fileno() < 0: k += 1; continue
        if select.select([s], [], [], 0)[0]:
            try:
                while True:
                    d = s.recv(4096, socket.MSG_DONTWAIT)
                    if not d: s.close(); k += 1; break
            except BlockingIOError:
                pass
            except OSError:
                s.close(); k += 1
    return k
time.sleep(2)
print("closed before the worker", closed(), flush=True)
open("go").read()                     # the worker has joined
time.sleep(0.5)
print("closed after the worker", closed(), flush=True)
time.sleep(60)
PYEOF
idle_pid=$!; PIDS+=($idle_pid)
wait_grep "closed before the worker" idle.log 60
t0=$(date +%s)
"$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" --name real 2> worker.log & PIDS+=($!)
wait_grep "worker real (127.0.0.1) joined" train.log 60
joined=$(( $(date +%s) - t0 ))
echo > go
wait_grep "closed after the worker" idle.log 30
rc=0; wait $tpid || rc=$?
kill -9 $idle_pid 2>/dev/null || true
cat idle.log
grep -E "refused a connection|closed the connection from|connections: " train.log | head -12
test $rc -eq 0
echo "the worker joined $joined s after it started"
test $joined -le 10                                                     # not after libzmq's 30 s handshake timeout
grep -q "closed before the worker $((idle - cap))$" idle.log            # all beyond the cap, none within it
grep -q "closed after the worker $((idle - cap + 1))$" idle.log         # one idle socket made room for the worker
grep -Eq "closed the connection from 127\.0\.0\.1:[0-9]+, still without a handshake, for one from 127\.0\.0\.1:[0-9]+: $cap open, the cap is $cap \[1 refused in all\]" train.log
grep -Eq "connections: $cap open, the cap is $cap; $idle accepted, $((idle - cap)) refused over the cap \(the last from 127\.0\.0\.1:[0-9]+\), $((idle - cap)) closed in all \([0-9]+ lines held back\)" train.log
grep -Eq "closed the connection from 127\.0\.0\.1:[0-9]+, still without a handshake, for one from 127\.0\.0\.1:[0-9]+: $cap open, the cap is $cap \[$((idle - cap + 1)) refused in all\]" train.log
test "$(grep -Ec "refused a connection|closed the connection from|connection from .* (open|closed)" train.log)" -le 16   # rate-limited
grep -q "step 12, loss = .*workers 1" train.log
test -f run/model.ckpt-12.safetensors
echo ok
