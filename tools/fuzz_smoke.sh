#!/usr/bin/env bash
# Fuzz smoke pass: builds the libFuzzer targets of tests/fuzz with clang
# (-fsanitize=fuzzer,address,undefined) into build-fuzz and runs each one over
# its seed corpus (tests/fuzz/<target>/, regressions included) and then
# ~SECONDS_PER_TARGET seconds of new inputs (default 20). New corpus entries go
# to a temporary folder; the committed seeds are not modified.
# Exit: 0 pass, 1 a target crashed / leaked / timed out (the input is kept in
# build-fuzz/artifacts), 77 skipped (no clang or no libFuzzer runtime).
# Usage: tools/fuzz_smoke.sh [SECONDS_PER_TARGET] [TARGET...]
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(midi abc safetensors config audio)
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"

if ! command -v clang++ >/dev/null 2>&1 || ! command -v clang >/dev/null 2>&1; then
  echo "fuzz_smoke: clang++ not found: skipped"; exit 77
fi
probe="$(mktemp -d)"
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t){return 0;}\n' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
  rm -rf "$probe"; echo "fuzz_smoke: clang has no libFuzzer runtime (libclang_rt.fuzzer): skipped"; exit 77
fi
rm -rf "$probe"

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUNESCRIBE_FUZZ=ON \
    -DTUNESCRIBE_BUILD_TESTS=OFF -DTUNESCRIBE_BUILD_BENCH=OFF >/dev/null || { echo "fuzz_smoke: cmake failed"; exit 1; }
fi
cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target tunescribe_fuzzers >/dev/null || { echo "fuzz_smoke: build failed"; exit 1; }

mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  work="$(mktemp -d)"
  maxlen=4096; [ "$t" = audio ] && maxlen=8192
  # 1) every seed once (regressions), 2) seeds + mutations for $secs seconds.
  if ! "$build/bin/fuzz_$t" -runs=0 -rss_limit_mb=2048 -timeout=20 "$root/tests/fuzz/$t" >"$work/replay.log" 2>&1; then
    echo "fuzz_smoke: $t: a seed input fails:"; tail -30 "$work/replay.log"; status=1
  fi
  if "$build/bin/fuzz_$t" -max_total_time="$secs" -max_len=$maxlen -rss_limit_mb=2048 -timeout=20 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$work" "$root/tests/fuzz/$t" >"$work/run.log" 2>&1; then
    runs="$(grep -o 'number_of_executed_units: *[0-9]*' "$work/run.log" | grep -o '[0-9]*$')"
    echo "fuzz_smoke: $t: ok (${runs:-?} executions in ${secs} s)"
  else
    echo "fuzz_smoke: $t: FAILED"; grep -A30 -m1 'ERROR\|runtime error' "$work/run.log"; status=1
  fi
  rm -rf "$work"
done
exit $status
