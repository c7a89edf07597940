#!/usr/bin/env bash
# cluster_scripts.sh — scripts/cluster: the sbatch files pass `bash -n`, the
# YAML files parse, and every `deeper` command line in them is accepted with
# --help appended (cluster_check.py).
set -euo pipefail
D="$DEEPER_BIN"
HERE="$(cd "$(dirname "$0")" && pwd)"
if ! /usr/bin/python3 -c "import yaml" 2>/dev/null; then
  echo "skip: python3-yaml is not installed (scripts/setup installs it)"; exit 77
fi
/usr/bin/python3 "$HERE/cluster_check.py" "$D" "$HERE/../../scripts/cluster"
