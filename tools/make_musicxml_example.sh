#!/usr/bin/env bash
# tools/make_musicxml_example.sh — docs/musicxml-example.png: the bundled example
# (examples/tunescribe-waltz.flac) transcribed with the default model to MusicXML and rendered by
# MuseScore 3 (headless), beside the ABC picture (docs/abc-example.svg).
#
#   tools/make_musicxml_example.sh [TUNESCRIBE_BINARY]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/bin/tunescribe}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BIN" transcribe -q "$ROOT/examples/tunescribe-waltz.flac" -o "$tmp" --format abc,musicxml
# -T: trim the page to the music plus a 10-pixel margin; -r: resolution (DPI).
QT_QPA_PLATFORM=offscreen musescore3 -r 90 -T 10 -o "$tmp/waltz.png" "$tmp/tunescribe-waltz.musicxml"
cp "$tmp/waltz-1.png" "$ROOT/docs/musicxml-example.png"
cp "$tmp/tunescribe-waltz.musicxml" "$ROOT/docs/musicxml-example.musicxml"
echo "wrote docs/musicxml-example.png and docs/musicxml-example.musicxml" >&2
