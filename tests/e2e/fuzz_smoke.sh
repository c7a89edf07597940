#!/usr/bin/env bash
# fuzz_smoke — every libFuzzer target of tests/fuzz/ replays its regression
# inputs (tests/fuzz/regressions/<target>/: inputs that once crashed or broke
# a property) and then fuzzes for FUZZ_SMOKE_SECONDS (default 3) from its
# seed corpus.  Any crash, sanitizer report or property violation fails the
# test and prints the target's last lines.  Builds the targets with
# `make fuzz-build` (clang, ASan + UBSan, into build/fuzz/); skips when clang
# or its libFuzzer runtime is missing.
set -uo pipefail
root=${DEEPER_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
secs=${FUZZ_SMOKE_SECONDS:-3}
fuzz_dir=build/fuzz

command -v clang >/dev/null || { echo "skip: clang is not installed (scripts/setup installs it)"; exit 77; }
rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)
if [ ! -f "$rt" ] && ! ls "$(dirname "$(clang -print-libgcc-file-name 2>/dev/null)")"/libclang_rt.fuzzer* >/dev/null 2>&1 &&
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "skip: the libFuzzer runtime (libclang_rt.fuzzer) is missing"; exit 77
fi
if ! nice make --no-print-directory -j2 FUZZ_DIR=$fuzz_dir fuzz-build >"$TMPDIR/build.log" 2>&1; then
  tail -n 30 "$TMPDIR/build.log"; echo "FAIL: make fuzz-build"; exit 1
fi

fail=0; ran=0
for bin in "$fuzz_dir"/fuzz_*; do
  [ -x "$bin" ] || continue
  t=${bin##*/fuzz_}
  ran=$((ran + 1))
  regs=(tests/fuzz/regressions/"$t"/*)
  if [ -e "${regs[0]}" ]; then
    if ! "$bin" "${regs[@]}" >"$TMPDIR/$t.replay" 2>&1; then
      echo "FAIL: $t: a regression input fails again:"; grep -E "property violated|ERROR:|runtime error|Running:" "$TMPDIR/$t.replay" | tail -n 6
      fail=1; continue
    fi
  fi
  mkdir -p "$TMPDIR/corpus-$t" "$TMPDIR/art-$t"
  if ! "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$TMPDIR/art-$t/" "$TMPDIR/corpus-$t" "tests/fuzz/corpus/$t" >"$TMPDIR/$t.log" 2>&1; then
    echo "FAIL: $t crashed while fuzzing; input saved as:"; ls "$TMPDIR/art-$t/"
    grep -E "property violated|ERROR:|runtime error|SUMMARY" "$TMPDIR/$t.log" | tail -n 6
    fail=1; continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMPDIR/$t.log" | tail -1)
  cov=$(grep -oE ' cov: [0-9]+' "$TMPDIR/$t.log" | tail -1 | grep -oE '[0-9]+')
  printf '%-14s %2d regressions ok, %8s executions in %ss, cov %s\n' "$t" "$(ls tests/fuzz/regressions/"$t" 2>/dev/null | wc -l)" "$execs" "$secs" "$cov"
done
[ $ran -ge 10 ] || { echo "FAIL: only $ran fuzz targets built"; exit 1; }
exit $fail
