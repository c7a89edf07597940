#!/usr/bin/env bash
# --num_preprocess_threads 0 --listen ENDPOINT: the trainer's dispatcher listens and trains
# from augment workers started separately with --dispatcher (as on another machine), here
# over tcp loopback; the worker takes the run's settings from the trainer.  A worker is
# refused, with one line on each side naming the field and both values, when its dataset,
# image size or protocol version differs.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
fmnist_dataset other 500 50
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$DEEPER_BIN/deeper" train --data_dir data --train_dir run --num_preprocess_threads 0 \
  --listen "$ep" --insecure --max_steps 8 --batch_size 16 --log_every 4 2> train.log &
tpid=$!; PIDS+=($tpid)

# refusals: each worker exits non-zero with one line naming the field
rc=0; "$DEEPER_BIN/deeper-augment" --data_dir other --dispatcher "$ep" 2> r-data.log || rc=$?
test $rc -ne 0; grep -q "refused this worker: dataset (manifest checksum) differs (consumer crc32c:" r-data.log
rc=0; "$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" --image_size 32 2> r-size.log || rc=$?
test $rc -ne 0; grep -q "refused this worker: image_size differs (consumer 28, this worker 32)" r-size.log
rc=0; "$PY" - "$port" > r-proto.log <<'PYEOF' || rc=$?
import sys, struct, zmq
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect("tcp://127.0.0.1:%s" % sys.argv[1])
s.send(struct.pack("<IHHQ", 0x53445044, 99, 1, 0) + bytes(136))     # REGISTER, protocol version 99
assert s.poll(10000), "no answer"
m = s.recv()
magic, ver, typ, sess = struct.unpack("<IHHQ", m[:16])
field, ours, theirs = (x.split(b"\0")[0].decode() for x in (m[16:48], m[48:112], m[112:176]))
print(typ, field, ours, theirs)
assert typ == 3 and ver == 99 and field == "protocol version" and ours == "2" and theirs == "99"
PYEOF
test $rc -eq 0

"$DEEPER_BIN/deeper-augment" --data_dir data --dispatcher "$ep" 2> worker.log & wk=$!; PIDS+=($wk)
rc=0; wait $tpid || rc=$?
tail -n 3 train.log
[ $rc -eq 0 ] || fail "trainer: exit status $rc, expected 0"
stop_and_check $wk "remote worker"
grep -q "waiting for remote augment workers on $ep" train.log
grep -q "refused worker .*: dataset (manifest checksum) differs (ours crc32c:" train.log
grep -q "refused worker .*: image_size differs (ours 28, theirs 32)" train.log
grep -q "refused worker unregistered peer (127.0.0.1): protocol version differs (ours 2, theirs 99)" train.log
grep -q "step 8, loss = .*workers 1, dropped 0" train.log
test -f run/model.ckpt-8.safetensors
echo ok
