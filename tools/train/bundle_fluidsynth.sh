#!/usr/bin/env bash
# tools/train/bundle_fluidsynth.sh — a self-contained FluidSynth (this machine's Debian binary and the
# shared libraries it links, minus glibc/libstdc++) plus the TimGM6mb soundfont in
# data/fluidsynth-bundle (ignored by git), so that `render.py --synthesize` can render --stage midi
# shards on a training machine that has no fluidsynth (e.g. the GPU image). ~20 MB; carry the folder.
#   there: python3 tools/train/render.py --synthesize data/shards-midi \
#            --fluidsynth data/fluidsynth-bundle/fluidsynth.sh \
#            --soundfont data/fluidsynth-bundle/sf2/TimGM6mb.sf2
# FluidR3_GM (148 MB) does not fit a 64 MiB carry; MuseScore General is validation-only (render the
# validation split here).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=data/fluidsynth-bundle
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib" "$OUT/sf2"
cp "$(command -v fluidsynth)" "$OUT/bin/"
ldd "$(command -v fluidsynth)" | awk '/=>/ {print $3}' |
  grep -vE '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s)\.so' |
  while read -r lib; do cp -L "$lib" "$OUT/lib/"; done
strip --strip-unneeded "$OUT/lib/"*.so* 2>/dev/null || true
cp /usr/share/sounds/sf2/TimGM6mb.sf2 "$OUT/sf2/"
cat > "$OUT/fluidsynth.sh" <<'EOF'
#!/bin/sh
D=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$D/bin/fluidsynth" "$@"
EOF
chmod +x "$OUT/fluidsynth.sh"
"$OUT/fluidsynth.sh" --version | head -n1
du -sh "$OUT"
