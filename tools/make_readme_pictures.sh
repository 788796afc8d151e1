#!/usr/bin/env bash
# tools/make_readme_pictures.sh — the README's pictures of the bundled example.
# Transcribes examples/tunescribe-waltz.flac with the shipped default model and keeps the sheet
# music (--format svg, engraved by abcm2ps) and the piano roll (--format roll) as
# docs/waltz-sheet.svg and docs/waltz-roll.svg. Deterministic: the same build gives the same bytes.
# Usage: tools/make_readme_pictures.sh [TUNESCRIBE_BINARY]   (default: build/bin/tunescribe)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/bin/tunescribe}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --quiet transcribe "$root/examples/tunescribe-waltz.flac" -o "$tmp" -f abc,svg,roll
cp "$tmp/tunescribe-waltz.svg" "$root/docs/waltz-sheet.svg"
cp "$tmp/tunescribe-waltz.roll.svg" "$root/docs/waltz-roll.svg"
ls -l "$root/docs/waltz-sheet.svg" "$root/docs/waltz-roll.svg"
