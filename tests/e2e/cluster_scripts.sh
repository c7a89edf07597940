#!/usr/bin/env bash
# cluster_scripts.sh — scripts/cluster: the sbatch files pass `bash -n`, the
# YAML files parse, and every `deeper` command line in them is accepted with
# --help appended (cluster_check.py).
set -euo pipefail
D="$DEEPER_BIN"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/check_lib.bash"
need_py_modules /usr/bin/python3 yaml
/usr/bin/python3 "$HERE/cluster_check.py" "$D" "$HERE/../../scripts/cluster"
