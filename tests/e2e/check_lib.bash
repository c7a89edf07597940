# check_lib.bash — assertions for the end-to-end tests (sourced, not a test itself).
#
# Under `set -e` bash ignores a failing `! cmd` and every part of `a && b` but
# the last, so a check written that way can never fail.  These helpers make
# every check an `if` that exits 1 with one line saying what was expected:
#   fail MSG...                  print "FAIL: MSG" and exit 1
#   skip REASON...               print the reason (the last line) and exit 77
#   check DESC CMD...            run CMD; fail with DESC when it exits non-zero
#   check_not DESC CMD...        run CMD; fail with DESC when it exits zero
#   check_exit PID WANT DESC     wait for PID; fail unless its exit status is
#                                one of WANT (comma-separated, e.g. 0 or 0,143)
#   stop_and_check PID DESC      SIGTERM to a worker still running (or done by itself):
#                                it must exit 0 (a clean stop)
#   need_programs NAME...        fail (never skip) when bin/deeper-NAME is missing
#   need_py_modules PY MOD...    skip when PY cannot find a module (not installed),
#                                fail when it finds them all but cannot import them
# A skip is only for a stated, checked reason (no GPU, not root, a package that
# is not installed); a missing program of this tree is a failed build.

fail() { echo "FAIL: $*"; exit 1; }

skip() { echo "skip: $*"; exit 77; }

check() {
  local what=$1; shift
  if ! "$@"; then fail "$what (command: $*)"; fi
}

check_not() {
  local what=$1; shift
  if "$@"; then fail "$what (command succeeded: $*)"; fi
}

check_exit() {
  local pid=$1 want=$2 what=$3 rc=0
  wait "$pid" || rc=$?
  case ",$want," in
    *",$rc,"*) ;;
    *) fail "$what: exit status $rc, expected $want" ;;
  esac
}

stop_and_check() {
  kill -TERM "$1" 2>/dev/null || true
  check_exit "$1" 0 "$2"
}

need_programs() {
  local p
  for p in "$@"; do
    [ -x "$DEEPER_BIN/deeper-$p" ] || fail "$DEEPER_BIN/deeper-$p is missing: build it (make all) before the tests"
  done
}

need_py_modules() {
  local py=$1 missing; shift
  missing=$("$py" -c 'import importlib.util as u, sys; print(" ".join(m for m in sys.argv[1:] if not u.find_spec(m)))' "$@") ||
    fail "$py cannot run"
  [ -z "$missing" ] || skip "$py lacks the Python module(s): $missing"
  "$py" -c "import $(IFS=,; echo "$*")" || fail "$py has the module(s) $* but cannot import them"
}
