#!/usr/bin/env bash
# MusicXML round trip through MuseScore 3 on a corpus sample (the numbers in docs/abc.md, "MusicXML").
#
#   tools/musicxml_corpus.sh [BUILD_DIR] [STEP]
#
# Every STEP-th MIDI file of ../shared/corpora (sorted; default 25, the sample tools/compare_outputs.sh
# uses) goes through the file transcriber's path (MIDI metadata, one analysis, one score layout) to
# MusicXML; one MuseScore 3 process (`musescore3 -j`, headless) imports every file and exports MIDI.
# A file is clean when MuseScore logs no warning or error for it and plays exactly our notes
# (pitch, onset within 0.01 quarter); recall = our notes found in MuseScore's MIDI / our notes.
# CTest runs the same test on every 250th file of at most 3000 notes (MusicXmlCorpus.MuseScoreRoundTripSubset).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
STEP=${2:-25}
command -v musescore3 >/dev/null || { echo "musescore3 is not installed" >&2; exit 77; }
TS_MUSICXML_CORPUS_STEP=$STEP TS_MUSICXML_CORPUS_MAX_NOTES=0 "$BUILD/bin/tunescribe_tests" --gtest_filter='MusicXmlCorpus.*' |
  grep -E '^\[musicxml corpus\]|^\[  (PASSED|FAILED) |^\[       OK|FAILED'
