#!/usr/bin/env bash
# CURVE between `deeper train --listen tcp://...` and remote `deeper augment`
# workers, with real processes: --listen tcp without keys or --insecure is
# refused at start; a worker whose key is not in --authorized_keys is refused
# with a log line naming its address, and nothing it sends is trained on; a
# listed worker feeds the run to the end.
set -euo pipefail
source "$DEEPER_ROOT/tests/ref/train_common.sh"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
D="$DEEPER_BIN/deeper"
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
port=$(free_port)
ep="tcp://127.0.0.1:$port"

# 1. no keys, no --insecure: refused at start, one line naming the endpoint
rc=0; "$D" train --data_dir data --train_dir run0 --num_preprocess_threads 0 --listen "$ep" \
  --max_steps 2 2> refuse.log || rc=$?
test $rc -eq 2 || { echo "expected a usage error, got $rc"; cat refuse.log; exit 1; }
grep -q "$ep: listening on the network without CURVE keys" refuse.log || { cat refuse.log; exit 1; }
test ! -e run0/model.ckpt-2.safetensors

# 2. keys: trainer, a listed worker, an unlisted one
"$D" keygen --name trainer keys >/dev/null
"$D" keygen --name good keys >/dev/null
"$D" keygen --name bad keys >/dev/null
test "$(stat -c %a keys/good.key_secret)" = 600
mkdir -m 700 authorized; cp keys/good.key authorized/

"$D" train --data_dir data --train_dir run --num_preprocess_threads 0 --listen "$ep" \
  --curve_secret_key keys/trainer.key_secret --authorized_keys authorized \
  --max_steps 8 --batch_size 16 --log_every 4 2> train.log &
tpid=$!
common=(--data_dir data --dispatcher "$ep" --curve_server_key keys/trainer.key)
"$D" augment "${common[@]}" --curve_secret_key keys/bad.key_secret 2> bad.log &
bpid=$!
# the unlisted worker is refused (logged by the trainer) while no step is taken
for _ in $(seq 100); do grep -q "refused peer" train.log && break; sleep 0.1; done
grep -q "refused peer 127.0.0.1.*is not in --authorized_keys" train.log || { cat train.log; exit 1; }
sleep 1
if grep -q "step [0-9]*, loss" train.log; then echo "trained on the unlisted worker's batches"; exit 1; fi
"$D" augment "${common[@]}" --curve_secret_key keys/good.key_secret 2> good.log &
gpid=$!
rc=0; wait $tpid || rc=$?
tail -n 3 train.log
[ $rc -eq 0 ] || fail "trainer: exit status $rc, expected 0"
stop_and_check $bpid "refused worker"
stop_and_check $gpid "listed worker"
grep -q "CURVE on" train.log
# the refused worker said so too
grep -q "refused our CURVE handshake (our key is not in its --authorized_keys" bad.log || { cat bad.log; exit 1; }
grep -q "step 8, loss = .*workers 1, dropped 0" train.log
# a trainer with keys and its own local workers: they hold its key pair and get in
"$D" train --data_dir data --train_dir run2 --num_preprocess_threads 2 --listen "tcp://127.0.0.1:$(free_port)" \
  --curve_secret_key keys/trainer.key_secret --authorized_keys authorized --max_steps 4 --batch_size 16 --log_every 2 2> local.log
grep -q "step 4, loss = .*workers 2" local.log || { cat local.log; exit 1; }
test -f run/model.ckpt-8.safetensors
# rate-limited: the refused worker retried for seconds, at most 5 lines per 10 s
n=$(grep -c "refused peer" train.log); test "$n" -le 10 || { echo "$n refusal lines"; exit 1; }
echo ok
