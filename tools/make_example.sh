#!/usr/bin/env bash
# tools/make_example.sh — rebuild the bundled example from its ABC source:
# examples/tunescribe-waltz.abc (our own tune, CC0) → MIDI (abc2midi) →
# audio (FluidSynth, FluidR3_GM soundfont, 44.1 kHz) → mono FLAC (sox).
set -euo pipefail
cd "$(dirname "$0")/../examples"
abc2midi tunescribe-waltz.abc -o tunescribe-waltz.mid
tmp=$(mktemp --suffix=.wav)
fluidsynth -ni -g 0.6 -r 44100 -F "$tmp" /usr/share/sounds/sf2/FluidR3_GM.sf2 tunescribe-waltz.mid
sox "$tmp" -c 1 tunescribe-waltz.flac remix -
rm -f "$tmp"
