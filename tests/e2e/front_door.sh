#!/usr/bin/env bash
# The front door lists commands, runs deeper-CMD, and refuses unknown ones.
set -euo pipefail
out=$("$DEEPER_BIN/deeper" --help)
grep -q "usage: deeper COMMAND" <<<"$out"
if "$DEEPER_BIN/deeper" no-such-command 2>err.txt; then echo "unknown command accepted"; exit 1; fi
grep -q "not a deeper command" err.txt
echo ok
