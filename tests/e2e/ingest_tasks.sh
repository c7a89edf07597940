#!/usr/bin/env bash
# ingest_tasks.sh — one dataset written by 1, 2, 3 and 10 tasks run as separate
# processes (given by flags, by Slurm job-array variables, by Kubernetes
# Indexed Job variables, and from one file list), then `--finalize`: the
# shards are byte-identical to one ingest's and the manifest is the same (but
# for `made`).  Before finalize no reader accepts the directory.  A missing,
# short or foreign task makes finalize refuse with one line naming the task;
# a task killed with kill -9 and run again alone finalizes and verifies.
set -euo pipefail
D="$DEEPER_BIN"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f $FM/train-images-idx3-ubyte.gz ]; then
  echo "skip: Debian's dataset-fashion-mnist is not installed (the kill -9 part needs it)"; exit 77
fi
cd "$TMPDIR"

/usr/bin/python3 - <<'EOF'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(11)
for root, n in (("tree", 14), ("val", 4)):
    for c in ("ant", "bee", "cow"):
        os.makedirs("%s/%s" % (root, c), exist_ok=True)
        for i in range(n):
            h, w = int(rng.integers(8, 40)), int(rng.integers(8, 40))
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(a).save("%s/%s/%02d.%s" % (root, c, i, "png" if i % 2 else "jpg"))
open("tree/bee/broken.jpg", "wb").write(b"\xff\xd8\xffnot a jpeg")
EOF

base=(--train_directory tree --validation_directory val --train_shards 5 --validation_shards 2 --quiet)
"$D/deeper" ingest "${base[@]}" --output_directory ref > /dev/null 2>&1

same_as_ref() {   # dir: identical shards, labels, rejections; manifest equal but for "made"
  local d=$1
  for f in ref/*.mdb; do cmp -s "$f" "$d/$(basename "$f")" || { echo "$d: $(basename "$f") differs"; exit 1; }; done
  cmp -s ref/labels.txt "$d/labels.txt" || { echo "$d: labels.txt differs"; exit 1; }
  cmp -s ref/rejected.txt "$d/rejected.txt" || { echo "$d: rejected.txt differs"; exit 1; }
  /usr/bin/python3 -c '
import json, sys
a, b = (json.load(open(p + "/manifest.json")) for p in sys.argv[1:3])
a.pop("made"); b.pop("made")
sys.exit(0 if a == b else "manifest differs: %s" % sys.argv[2])' ref "$d"
  "$D/deeper" info --verify "$d" > /dev/null
}
grep -q "broken.jpg" ref/rejected.txt

# flags, M = 1, 2, 3 and 10 (more tasks than shards: some write none); tasks run concurrently, in reverse order
for m in 1 2 3 10; do
  pids=()
  for i in $(seq $((m - 1)) -1 0); do
    "$D/deeper" ingest "${base[@]}" --output_directory t$m --num_tasks $m --task_index $i --num_threads 1 \
      > t$m.$i.log 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  [ ! -e t$m/manifest.json ] || { echo "a task wrote the manifest"; exit 1; }
  if "$D/deeper" info t$m > /dev/null 2>&1; then echo "info accepted t$m before finalize"; exit 1; fi
  "$D/deeper" ingest --finalize t$m > fin$m.log
  same_as_ref t$m
done

# Slurm job array (ids 1..2, so SLURM_ARRAY_TASK_MIN=1) and the count from the array
for id in 2 1; do
  SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=2 \
    "$D/deeper" ingest "${base[@]}" --output_directory slurm > /dev/null 2>&1
done
ls slurm/ingest-task-00000-of-00002.json slurm/ingest-task-00001-of-00002.json > /dev/null
"$D/deeper" ingest --finalize slurm > /dev/null
same_as_ref slurm

# Kubernetes Indexed Job: JOB_COMPLETION_INDEX, the count once in DEEPER_NUM_TASKS (or --num_tasks)
for i in 0 1 2; do
  JOB_COMPLETION_INDEX=$i DEEPER_NUM_TASKS=3 "$D/deeper" ingest "${base[@]}" --output_directory k8s > /dev/null 2>&1
done
"$D/deeper" ingest --finalize k8s > /dev/null
same_as_ref k8s
if JOB_COMPLETION_INDEX=0 "$D/deeper" ingest "${base[@]}" --output_directory k8s2 > k8s2.log 2>&1; then
  echo "an Indexed Job task without a count ran"; exit 1
fi
grep -q "DEEPER_NUM_TASKS" k8s2.log

# one listing, read by every task
"$D/deeper" ingest --train_directory tree --validation_directory val --write_file_list files.txt --quiet > /dev/null
head -1 files.txt | grep -q "deeper-file-list 1"
for i in 0 1; do
  "$D/deeper" ingest --file_list files.txt --train_shards 5 --validation_shards 2 --quiet --output_directory fl \
    --num_tasks 2 --task_index $i > /dev/null 2>&1
done
"$D/deeper" ingest --finalize fl > /dev/null
same_as_ref fl
# and as one ingest
"$D/deeper" ingest --file_list files.txt --train_shards 5 --validation_shards 2 --quiet --output_directory fl1 > /dev/null 2>&1
same_as_ref fl1

refuse() {   # dir, expected text: finalize fails with one line naming the task
  if "$D/deeper" ingest --finalize "$1" > refuse.out 2> refuse.err; then echo "finalize accepted $1"; exit 1; fi
  [ "$(wc -l < refuse.err)" -eq 1 ] || { cat refuse.err; echo "not one line"; exit 1; }
  grep -q "$2" refuse.err || { cat refuse.err; echo "expected: $2"; exit 1; }
  [ ! -e "$1/manifest.json" ] || { echo "manifest written by a refused finalize"; exit 1; }
}
run_task() {   # dir, m, i
  "$D/deeper" ingest "${base[@]}" --output_directory "$1" --num_tasks "$2" --task_index "$3" > /dev/null 2>&1
}
# a missing task
run_task miss 3 0; run_task miss 3 2
refuse miss "task 1 of 3 did not finish"
run_task miss 3 1
"$D/deeper" ingest --finalize miss > /dev/null
same_as_ref miss
# a short task: one of its shards truncated, or gone
run_task short 3 0; run_task short 3 1; run_task short 3 2
truncate -s 8192 short/train-00001-of-00005.mdb          # job 3 = task 0 (2 validation shards first)
refuse short "task 0 of 3 is incomplete: .*train-00001-of-00005.mdb"
rm short/train-00001-of-00005.mdb
refuse short "task 0 of 3 is incomplete"
run_task short 3 0
"$D/deeper" ingest --finalize short > /dev/null
same_as_ref short
# a task of another run (other seed) is refused
run_task foreign 2 0
"$D/deeper" ingest "${base[@]}" --output_directory foreign --num_tasks 2 --task_index 1 --seed 7 > /dev/null 2>&1
refuse foreign "task 1 of 2 comes from a different run"
# finalize of a directory with no task at all
mkdir -p empty
refuse empty "no task completion records"

# kill -9 a task while it writes (Fashion-MNIST as JPEG: a second or two of work), run it again alone
fm=(--train_images $FM/train-images-idx3-ubyte.gz --train_labels $FM/train-labels-idx1-ubyte.gz
    --max_examples 30000 --store jpeg --train_shards 4 --num_threads 1 --quiet)
"$D/deeper" ingest "${fm[@]}" --output_directory fmref > /dev/null
"$D/deeper" ingest "${fm[@]}" --output_directory fmk --num_tasks 2 --task_index 0 > /dev/null
"$D/deeper" ingest "${fm[@]}" --output_directory fmk --num_tasks 2 --task_index 1 > /dev/null   # a first, good run
killed=0
for attempt in 1 2 3 4 5; do
  "$D/deeper" ingest "${fm[@]}" --output_directory fmk --num_tasks 2 --task_index 1 > /dev/null 2>&1 &
  pid=$!
  # the task removes its old record before it writes a shard: kill it once that happened
  for _ in $(seq 1 500); do [ -e fmk/ingest-task-00001-of-00002.json ] || break; sleep 0.01; done
  sleep 0.$((attempt))
  kill -9 $pid 2>/dev/null || true
  rc=0; wait $pid 2>/dev/null || rc=$?
  case $rc in 0|137) ;; *) echo "FAIL: task 1 exited $rc (expected 0, or 137 from the kill)"; exit 1;; esac
  sleep 0.1
  if [ ! -e fmk/ingest-task-00001-of-00002.json ]; then
    refuse fmk "task 1 of 2 did not finish"
    killed=1
    break
  fi
done
[ $killed -eq 1 ] || { echo "the task always finished before kill -9 landed"; exit 1; }
"$D/deeper" ingest "${fm[@]}" --output_directory fmk --num_tasks 2 --task_index 1 > /dev/null
"$D/deeper" ingest --finalize fmk > /dev/null
"$D/deeper" info --verify fmk > /dev/null
for f in fmref/*.mdb; do cmp -s "$f" "fmk/$(basename "$f")" || { echo "fmk: $(basename "$f") differs"; exit 1; }; done
echo "ok"
