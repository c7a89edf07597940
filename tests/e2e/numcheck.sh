#!/usr/bin/env bash
# scripts/ref/numcheck.py, the float comparisons of every Python check here:
# NaN or Inf on either side, or a shape mismatch, is an error of inf that no
# tolerance accepts; bit-identity needs the same dtype, shape and bytes, all finite.
set -euo pipefail
source "$DEEPER_ROOT/tests/e2e/check_lib.bash"
need_py_modules /usr/bin/python3 numpy
/usr/bin/python3 "$DEEPER_ROOT/scripts/ref/numcheck.py"
