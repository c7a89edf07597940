#!/usr/bin/env bash
# ingest_disk_full.sh — a real full disk, not a simulation: ingest into a
# 3 MiB tmpfs (this script) or, with DISK_FULL_FS=ext4 (ingest_disk_full_ext4.sh),
# into a 16 MiB loop-mounted ext4 image, each too small for the ~7 MB of raw
# pixels (with 1 and with 2 worker processes).  Each run must stop with one
# clear error line that names the shard file and says the disk is full, exit
# non-zero, and leave no manifest.json (no dataset that looks complete).
# tests/e2e/ingest_bad_inputs.sh keeps the `ulimit -f` stand-in, which needs
# no privileges.
#
# Mounting needs root: a non-root user runs the test again inside a user and
# mount namespace of its own (unshare -rm), where a tmpfs may be mounted.  The
# ext4 image needs a loop device, which only the real root gets; where the
# mount a variant needs is not permitted, that variant skips (exit 77, the
# reason on the last line).  Every mount is unmounted by the EXIT trap,
# whatever happens.
set -euo pipefail
if [ "$(id -u)" != 0 ] && [ -z "${DEEPER_IN_USERNS:-}" ] && unshare -rm true 2>/dev/null; then
  exec env DEEPER_IN_USERNS=1 unshare -rm bash "$0" "$@"
fi
source "$DEEPER_ROOT/tests/e2e/check_lib.bash"
D="$DEEPER_BIN"
FS=${DISK_FULL_FS:-tmpfs}
cd "$TMPDIR"

mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT     # a timeout or ^C still runs the EXIT trap

if [ "$FS" = tmpfs ]; then
  mkdir -p mnt_tmpfs
  if ! mount -t tmpfs -o size=3m,mode=0755 tmpfs mnt_tmpfs 2> mount_err.txt; then
    echo "skip: mounting a tmpfs is not permitted here ($(head -c 200 mount_err.txt | tr '\n' ' '))"
    exit 77
  fi
  mounts+=("$TMPDIR/mnt_tmpfs")
else
  # ext4 on a loop device: ENOSPC from delayed allocation
  truncate -s 16m ext4.img
  mkfs.ext4 -q -F -m 0 ext4.img > /dev/null 2>&1
  mkdir -p mnt_ext4
  if ! mount -o loop ext4.img mnt_ext4 2> loop_err.txt; then
    echo "skip: mounting an ext4 image on a loop device is not permitted here ($(head -c 120 loop_err.txt | tr '\n' ' '))"
    exit 77
  fi
  mounts+=("$TMPDIR/mnt_ext4")
fi

# 60 noisy 200x200 RGB PNGs: 7.2 MB of raw pixels, ~7 MB of PNG input (kept
# outside the small filesystems)
/usr/bin/python3 - <<'EOF'
import os
import numpy as np
from PIL import Image
os.makedirs("big/a", exist_ok=True)
os.makedirs("big/b", exist_ok=True)
for i in range(60):
    px = np.random.default_rng(i).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(px).save("big/%s/%02d.png" % ("ab"[i % 2], i))
EOF

# expect_full MOUNTPOINT THREADS: the ingest fails cleanly on a full disk
expect_full() {
  local out="$1/ds" rc
  set +e
  "$D/deeper" ingest --train_directory big --output_directory "$out" --num_threads "$2" \
      --train_shards 2 --validation_shards 1 > "log_$2.txt" 2> "err_$2.txt"
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then echo "ingest into a full $1 succeeded"; cat "err_$2.txt"; exit 1; fi
  if [ $rc -ge 128 ]; then echo "ingest died by a signal ($rc) on a full disk"; cat "err_$2.txt"; exit 1; fi
  # one error line, naming the shard and the cause
  if ! grep -Eq "^deeper ingest: error: $out/train-0000[01]-of-00002\.mdb: .*no space left on device" "err_$2.txt"; then
    echo "no clear disk-full error naming the shard (threads $2):"; cat "err_$2.txt"; exit 1
  fi
  [ "$(grep -c "error:" "err_$2.txt")" -eq 1 ] || { echo "expected one error line:"; cat "err_$2.txt"; exit 1; }
  [ ! -e "$out/manifest.json" ] || { echo "a manifest was written on a full disk ($1)"; exit 1; }
}

if [ "$FS" = tmpfs ]; then
  expect_full "$TMPDIR/mnt_tmpfs" 1
  rm -rf mnt_tmpfs/ds
  expect_full "$TMPDIR/mnt_tmpfs" 2
  rm -rf mnt_tmpfs/ds
  # after freeing space (a bigger filesystem) the same command gives a dataset
  umount mnt_tmpfs
  mount -t tmpfs -o size=32m,mode=0755 tmpfs mnt_tmpfs
  "$D/deeper" ingest --train_directory big --output_directory mnt_tmpfs/ds --num_threads 2 \
      --train_shards 2 --validation_shards 1 > /dev/null 2> ok_err.txt
  check "a dataset after freeing space" test -f mnt_tmpfs/ds/manifest.json
  check "the new dataset verifies" grep -q "verify: OK, 60 records" <("$D/deeper" info --verify mnt_tmpfs/ds)
else
  # leave ~3 MB free: fill the rest with a plain file
  avail=$(df -k --output=avail mnt_ext4 | tail -1)
  fill=$(( avail - 3 * 1024 ))
  if [ $fill -gt 0 ]; then fallocate -l "${fill}k" mnt_ext4/filler; fi
  expect_full "$TMPDIR/mnt_ext4" 1
  rm -rf mnt_ext4/ds
  expect_full "$TMPDIR/mnt_ext4" 2
fi
echo ok
