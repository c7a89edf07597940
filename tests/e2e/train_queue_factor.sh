#!/usr/bin/env bash
# --input_queue_memory_factor F bounds the trainer's input memory: at most F batches are
# held ahead (the dispatcher's credit window; splits of at most F batches).  It changes
# nothing else: the batches, and so the weights, are those of the default (16), because
# every batch is a function of (seed, index) and each epoch a full permutation.  The
# workers' queued leases (proto/dispatch.md, version 2) show in the lease trace.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/dispatch_lib.bash"
skip_unless_fmnist
cd "$TMPDIR"
fmnist_dataset data 600 50
"$DEEPER_BIN/deeper" train --help 2>&1 | grep -A2 -- "--input_queue_memory_factor" | grep -q "held ahead\|holds ahead"
common=(--data_dir data --model nielsennet --batch_size 16 --num_preprocess_threads 2 --seed 3
        --initial_learning_rate 0.05 --log_every 5 --threads 1 --device cpu --max_steps 20)
"$DEEPER_BIN/deeper" train "${common[@]}" --train_dir a 2> a.log
DEEPER_DISPATCH_TRACE=1 "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir b --input-queue-memory-factor 2 2> b.log
grep "held ahead" a.log b.log
grep -q "input: at most 16 batches of 12.[0-9] kB held ahead (--input_queue_memory_factor), splits of 4 batches" a.log
grep -q "input: at most 2 batches of 12.[0-9] kB held ahead (--input_queue_memory_factor), splits of 2 batches" b.log
# the workers ask for their next lease at the last batch of the current one (protocol 2)
grep -q "lease [0-9]* \[[0-9]*, [0-9]*) to local-[01], credit to [0-9]*, queued after its current one" b.log
# every lease: at most 2 batches, credit at most 2 past the consumer's position
"$PY" - b.log <<'PYEOF'
import re, sys
n = 0
for line in open(sys.argv[1]):
    m = re.search(r"lease \d+ \[(\d+), (\d+)\) to \S+, credit to (\d+)", line)
    if not m: continue
    first, end, credit = map(int, m.groups())
    assert end - first <= 2, line
    assert credit <= first + 2, line
    n += 1
assert n >= 10, n
print("%d leases, none over 2 batches" % n)
PYEOF
rc=0; "$DEEPER_BIN/deeper" train "${common[@]}" --train_dir c --input_queue_memory_factor 0 2> c.log || rc=$?
test $rc -ne 0
grep -q -- "--input_queue_memory_factor 0: must be in \[1, 65536\]" c.log
same_weights a/model.ckpt-20.safetensors b/model.ckpt-20.safetensors
echo ok
