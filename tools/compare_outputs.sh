#!/usr/bin/env bash
# Byte-identity check for refactors that must not change behaviour (issue 15).
#
#   tools/compare_outputs.sh BIN OUTDIR              # run BIN over the fixed cases, write OUTDIR/hashes.txt
#   tools/compare_outputs.sh BIN OUTDIR BASELINE.txt # ... and compare with an earlier hashes.txt
#
# Cases (all deterministic, no timing or absolute paths in what is hashed):
#   - transcribe: every 25th MIDI file of ../shared/corpora (sorted; the corpora the tests read)
#     plus examples/tunescribe-waltz.mid → abc,mid,json; the same files again with
#     --ignore-midi-meta (tempo/meter/key estimated) and 12 of them with forced (or invalid)
#     --tempo/--meter/--key; stdout of each command and the list of failing commands too;
#   - score (--json, both reward modes): each written ABC against its MIDI, and every 40th ABC
#     file of ../shared/corpora/abc against itself;
#   - generate: the determinism cases of tests/generate_test.cpp, with models/tiny and the
#     generation model (models/generate; its hashes change when that model is replaced).
# Exit status: 0 when all hashes match the baseline (or no baseline was given), 1 otherwise.
set -euo pipefail

BIN=$(realpath "$1")
OUT=$2
BASE=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${TUNESCRIBE_SHARED:-$ROOT/../shared}
TINY=$ROOT/models/tiny
STEP=${COMPARE_STEP:-25}

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

# ---- inputs: a deterministic sample of the corpora MIDI files --------------------------
mapfile -t MIDS < <(cd "$SHARED/corpora" && find . -type f \( -iname '*.mid' -o -iname '*.midi' \) | LC_ALL=C sort |
                    awk -v s="$STEP" '(NR - 1) % s == 0')
mapfile -t ABCS < <(cd "$SHARED/corpora/abc" && find . -type f -name '*.abc' | LC_ALL=C sort | awk '(NR - 1) % 40 == 0')

# Each input is linked under a unique flat name (its path with '/' → '_'), so one process per
# case reads them all (a process start costs seconds on a loaded machine).
link_inputs() {  # $1 = folder, rest = "SRC NAME" pairs on stdin
  mkdir -p "$1"
  while IFS=$'\t' read -r src name; do ln -sf "$src" "$1/$name"; done
}
flat() { printf '%s\t%s\n' "$1" "$(echo "${2#./}" | tr '/ ' '__')"; }
for m in "${MIDS[@]}"; do flat "$SHARED/corpora/${m#./}" "$m"; done | link_inputs "$OUT/in/all"
flat "$ROOT/examples/tunescribe-waltz.mid" tunescribe-waltz.mid | link_inputs "$OUT/in/all"
for m in "${MIDS[@]:0:12}"; do flat "$SHARED/corpora/${m#./}" "$m"; done | link_inputs "$OUT/in/few"
for a in "${ABCS[@]}"; do flat "$SHARED/corpora/abc/${a#./}" "$a"; done | link_inputs "$OUT/in/abc"

run() {  # $1 = tag (output folder), rest = command; runs in $OUT, stdout kept as $tag.out
  local tag=$1
  shift
  mkdir -p "$OUT/$tag"
  (cd "$OUT" && "$@" >"$OUT/$tag.out" 2>>"$OUT/stderr.txt") || echo "exit $? $tag" >>"$OUT/failures.txt"
}
run t "$BIN" transcribe -q in/all -o t --format abc,mid,json
run e "$BIN" transcribe -q in/all -o e --format abc,mid,json --ignore-midi-meta
i=0
for opts in "--meter 6/8 --key F#m --tempo 100" "--key Bb" "--meter 3/4 --key Dm" "--meter C| --key Ador" \
            "--meter 5/8 --key Eb --bars-per-line 2" "--key C#m --tempo 72" "--key H" "--meter 7/32"; do
  # shellcheck disable=SC2086
  run f$i "$BIN" transcribe -q in/few -o f$i --format abc --ignore-midi-meta $opts
  i=$((i + 1))
done
sed -i 's/"seconds": *[0-9.e+-]*//g' "$OUT"/*.out 2>/dev/null || true

# ---- score: the reward parser and the ABC reader -----------------------------------------
for tag in t e; do
  mkdir -p "$OUT/in/$tag-abc"
  for a in "$OUT/$tag"/*.abc; do ln -sf "$a" "$OUT/in/$tag-abc/"; done
done
for mode in corrected flynn2024; do
  run score-t-$mode "$BIN" score --ref-dir in/all --est-dir in/t-abc --json --reward-mode $mode
  run score-e-$mode "$BIN" score --ref-dir in/all --est-dir in/e-abc --json --reward-mode $mode
  run score-abc-$mode "$BIN" score --ref-dir in/abc --est-dir in/abc --json --reward-mode $mode
done
rmdir "$OUT"/score-* 2>/dev/null || true

# ---- generate: the determinism cases of tests/generate_test.cpp ---------------------------
gen() {  # $1 = model tag, $2 = model dir, $3 = case name, rest = options
  local tag=$1 model=$2 name=$3
  shift 3
  mkdir -p "$OUT/gen-$tag"
  "$BIN" generate -q -m "$model" -o "$OUT/gen-$tag" --name "$name" "$@" >/dev/null 2>>"$OUT/stderr.txt" ||
    echo "FAIL gen $tag $name" >>"$OUT/failures.txt"
}
for tag in tiny default; do
  model=$TINY
  [ $tag = default ] && model=$ROOT/models/generate
  gen $tag "$model" s5 --seconds 3 --seed 5 --max-segment-tokens 256
  gen $tag "$model" s5n2 --seconds 3 --seed 5 --num 2 --max-segment-tokens 256
  gen $tag "$model" base --seconds 2 --seed 1 --max-segment-tokens 256
  gen $tag "$model" cold --seconds 2 --seed 1 --max-segment-tokens 256 --temperature 0.3
  gen $tag "$model" nucleus --seconds 2 --seed 1 --max-segment-tokens 256 --top-p 0.3
  gen $tag "$model" greedy --seconds 2 --seed 99 --max-segment-tokens 256 --top-k 1
  gen $tag "$model" ctl --seconds 4 --seed 2 --tempo 90 --meter 3/4 --key Bb --instrument violin --polyphony mono
  gen $tag "$model" keyfm --seconds 4 --seed 3 --key F#m --meter 6/8
  gen $tag "$model" bars3 --bars 3 --tempo 120 --meter 4/4 --seed 4 --max-segment-tokens 200
  gen $tag "$model" b68 --bars 2 --tempo 90 --meter 6/8 --seed 4 --max-segment-tokens 200
  gen $tag "$model" prompt --prompt "$ROOT/tests/data/generate/prompt.abc" --seconds 2 --seed 9 --max-segment-tokens 256
  gen $tag "$model" plain --seconds 2 --seed 1
  gen $tag "$model" audio --from-audio "$ROOT/tests/data/e2e/waltz-start.flac" --seconds 3 --seed 7 --max-segment-tokens 256
done

# ---- hashes --------------------------------------------------------------------------------
(cd "$OUT" && find . -type f ! -name hashes.txt ! -name stderr.txt ! -path './in/*' -print0 | LC_ALL=C sort -z |
   xargs -0 sha256sum) >"$OUT/hashes.txt.tmp"
mv "$OUT/hashes.txt.tmp" "$OUT/hashes.txt"
echo "$(wc -l <"$OUT/hashes.txt") files hashed in $OUT/hashes.txt" >&2

if [ -n "$BASE" ]; then
  total=$(wc -l <"$BASE")
  same=$(LC_ALL=C comm -12 <(LC_ALL=C sort "$BASE") <(LC_ALL=C sort "$OUT/hashes.txt") | wc -l)
  echo "$same of $total files identical" >&2
  if ! diff <(awk '{print $2, $1}' "$BASE" | LC_ALL=C sort) <(awk '{print $2, $1}' "$OUT/hashes.txt" | LC_ALL=C sort) >"$OUT/diff.txt"; then
    echo "differences (first 20):" >&2
    grep '^[<>]' "$OUT/diff.txt" | head -20 >&2
    exit 1
  fi
fi
