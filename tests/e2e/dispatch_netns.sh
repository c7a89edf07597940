#!/usr/bin/env bash
# Separate hosts, emulated: the trainer in one network namespace and its augment workers in
# another, joined by a veth pair this test creates and removes (addresses only inside the
# two namespaces).  Three workers over tcp, one killed with kill -9 mid-epoch: the first
# epoch reaches the trainer exactly once and the weights equal a one-worker run's.
# Needs root and `ip netns`; skipped otherwise.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
[ "$(id -u)" = 0 ] || skip "not root: cannot make network namespaces"
command -v ip >/dev/null || skip "no ip command (iproute2 is not installed)"
T=dpt$$; W=dpw$$
cleanup_ns() { cleanup; ip netns del $T 2>/dev/null || true; ip netns del $W 2>/dev/null || true; }
trap cleanup_ns EXIT
ip netns add $T 2> "$TMPDIR/netns.err" || skip "ip netns add is not permitted here: $(head -c 200 "$TMPDIR/netns.err" | tr '\n' ' ')"
ip netns add $W
ip link add dv$$a type veth peer name dv$$b 2> "$TMPDIR/veth.err" ||
  skip "cannot create a veth pair here: $(head -c 200 "$TMPDIR/veth.err" | tr '\n' ' ')"
ip link set dv$$a netns $T
ip link set dv$$b netns $W
ip -n $T addr add 10.213.7.1/24 dev dv$$a
ip -n $W addr add 10.213.7.2/24 dev dv$$b
for n in $T $W; do ip -n $n link set lo up; done
ip -n $T link set dv$$a up
ip -n $W link set dv$$b up
cd "$TMPDIR"
fmnist_dataset data 600 50
common=(--data_dir data --model nielsennet --batch_size 16 --num_preprocess_threads 0 --seed 9
        --initial_learning_rate 0.05 --log_every 5 --threads 1 --device cpu --max_steps 45 --worker_timeout 1)
A="$DEEPER_BIN/deeper-augment"
ep=tcp://10.213.7.1:5555

DEEPER_DUMP_IDS=a.ids ip netns exec $T "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir a --listen "$ep" --insecure 2> a.log &
ta=$!; PIDS+=($ta)
ip netns exec $W "$A" --data_dir data --dispatcher "$ep" --name w0 2> a-w0.log & w0=$!; PIDS+=($w0)
check_exit $ta 0 "trainer a"
stop_and_check $w0 "worker w0"

DEEPER_DUMP_IDS=b.ids ip netns exec $T "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --listen "$ep" --insecure 2> b.log &
tb=$!; PIDS+=($tb)
declare -A wp
for i in 1 2 3; do ip netns exec $W "$A" --data_dir data --dispatcher "$ep" --name w$i 2> b-w$i.log & wp[$i]=$!; PIDS+=($!); done
wait_lines b.ids 8
victim=${wp[2]}
kill -STOP "$victim"; kill -9 "$victim"
check_exit $tb 0 "trainer b"
check_exit $victim 137 "worker w2 (kill -9)"
stop_and_check ${wp[1]} "worker w1"
stop_and_check ${wp[3]} "worker w3"
grep -E "joined|timed out|re-leased" b.log
grep -q "worker w2 (10.213.7.2) joined" b.log
grep -q "worker w2 (10.213.7.2) timed out" b.log
once_per_epoch b.ids 600
cmp a.ids b.ids
same_weights a/model.ckpt-45.safetensors b/model.ckpt-45.safetensors
echo ok
