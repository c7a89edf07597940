#!/usr/bin/env bash
# Hostile or broken peers against a training run's dispatcher (tcp on 127.0.0.1):
#   - garbage, truncated and multi-frame messages are dropped and counted; the peer that
#     keeps sending them is ignored with one line naming it; peer lines are rate-limited;
#   - a frame larger than the largest legitimate batch is refused by libzmq (ZMQ_MAXMSGSIZE)
#     before it is buffered;
#   - a BATCH from a peer that never registered is not trained on (RESET instead);
#   - when the only worker stops (SIGSTOP) the trainer says so: one line naming the worker
#     and what it last did, then the worker's split goes to a new worker.
# Training finishes, and the training line shows the drops.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --num_preprocess_threads 0 --listen "$ep" --insecure \
  --max_steps 60 --batch_size 16 --log_every 5 --threads 1 --worker_timeout 15 2> train.log &
tpid=$!; PIDS+=($tpid)
"$PY" - "$port" > hostile.log <<'PYEOF'
import sys, struct, zmq, time
ctx = zmq.Context()
ep = "tcp://127.0.0.1:%s" % sys.argv[1]
def sock():
    s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.connect(ep); return s
hdr = lambda typ, sess=0: struct.pack("<IHHQ", 0x53445044, 2, typ, sess)
a = sock()
time.sleep(0.5)
for i in range(30):                         # garbage, short, wrong sizes, multi-frame
    a.send_multipart([b"x" * (i + 1)] if i % 3 else [hdr(4), b"second", b"third"])
b = sock()
wire = struct.pack("<IHHIHHQQIIIIIIQ", 0x48425044, 1, 64, 0, 0, 1, 0, 0, 16, 28, 28, 1, 1, 0, 1)
b.send(hdr(7, 1234) + struct.pack("<QQ", 1, 0) + wire + bytes(16 * 4 + 16 * 8 + 16 * 784))  # a well-formed BATCH from nobody
assert b.poll(5000), "no RESET"
typ = struct.unpack("<IHHQ", b.recv()[:16])[2]
assert typ == 9, typ
c = sock()
c.send(b"\0" * (16 * 28 * 28 + 12 * 16 + 200000))   # larger than any batch of this run
time.sleep(1.0)
print("sent")
PYEOF
"$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" --name slow 2> slow.log & slow=$!; PIDS+=($slow)
wait_grep "step 10, loss" train.log 120
kill -STOP $slow
wait_grep "no batch for .* waiting for batch .* leased to slow (127.0.0.1), last heard" train.log 60
"$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" --name fresh 2> fresh.log & fresh=$!; PIDS+=($fresh)
rc=0; wait $tpid || rc=$?
kill -9 $slow
check_exit $slow 137 "worker slow (stopped, then kill -9)"
stop_and_check $fresh "worker fresh"
grep -E "malformed|ignoring|no batch|timed out|re-leased" train.log | head -20
test $rc -eq 0
grep -q "dropped a malformed message from unregistered peer (127.0.0.1): .* \[1 from this peer, 1 in all\]" train.log
grep -q "ignoring unregistered peer (127.0.0.1) from now on: 20 malformed messages" train.log
test "$(grep -c "dropped a malformed message" train.log)" -le 8      # rate-limited
grep -q "worker slow (127.0.0.1) timed out" train.log
grep -q "connection from 127.0.0.1:[0-9]* closed without a goodbye (.*over the size limit is cut off this way)" train.log   # the oversized frame
grep -Eq "split \[[0-9]+, [0-9]+\) re-leased to fresh \(was slow's\)" train.log
grep -Eq "step 60, loss = .*workers 1, dropped (2[0-9]|30)," train.log
test -f run/model.ckpt-60.safetensors
echo ok
