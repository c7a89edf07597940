#!/usr/bin/env bash
# ingest_disk_full_ext4.sh — ingest_disk_full.sh on a 16 MiB ext4 image on a
# loop device (ENOSPC from delayed allocation) instead of a tmpfs; skips with
# the reason where a loop mount is not permitted.
DISK_FULL_FS=ext4 exec bash "$(dirname "$0")/ingest_disk_full.sh" "$@"
