#!/usr/bin/env bash
# tools/setup.sh — set up tunescribe on Debian 12 (as root, or with sudo available):
# installs every Debian package the project needs, then configures and builds
# in Release (ccache makes rebuilds quick). Idempotent: when every package is
# already installed, apt is not touched.
#
#   bash tools/setup.sh                    # install + build (what a user needs)
#   bash tools/setup.sh --no-build         # install only
#   bash tools/setup.sh --with-test-tools  # also the external programs that only the tests
#                                          # use (tools/test.sh passes it)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  build-essential cmake pkg-config ccache git
  # libraries
  libtorch-dev libopenblas0 libfftw3-dev libsndfile1-dev libsamplerate0-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libfluidsynth-dev
  # audio rendering (example, training data, generate --wav) and GM soundfonts
  fluidsynth fluid-soundfont-gm timgm6mb-soundfont
  # validation-only soundfont (never used for training; tools/train/render.py --split validation)
  musescore-general-soundfont
  # test-time validators and reference implementations
  abcmidi abcm2ps python3 python3-numpy python3-mido python3-mir-eval
  python3-torch python3-soundfile flac sox
  # training tools: learning-curve plots (tools/train/train.py)
  python3-matplotlib
)

# only for the test set-up path (tools/test.sh): external programs the tests run to validate
# outputs; a user's `transcribe` never needs them, and each test skips cleanly without them.
TEST_PACKAGES=(
  chromium          # score --report: the HTML report is loaded in headless Chromium
  musescore3        # --format musicxml: MuseScore 3 imports what we write
  libxml2-utils     # xmllint: MusicXML is well-formed
  lame opus-tools   # MP3 / Opus input: encoded from the bundled example in the tests
)
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --with-test-tools) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
    *) echo "[setup] unknown option: $arg (use --no-build, --with-test-tools)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
else
  echo "[setup] all Debian packages present" >&2
fi

# libtorch calls the generic libblas.so.3: make sure it resolves to OpenBLAS.
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cand=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas | head -n1 || true)
    if [ -n "$cand" ]; then $SUDO update-alternatives --set "$alt" "$cand" >/dev/null 2>&1 || true; fi
  done
fi

if [ "$BUILD" = 0 ]; then exit 0; fi

JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" 2>&1 | grep -E "error|warning: unused|Linking|Built target" >&2 || true
if [ ! -x build/bin/tunescribe ]; then
  echo "[setup] build failed; run: cmake --build build" >&2
  cmake --build build -j 1
  exit 1
fi
cmake --build build -j "$JOBS" >/dev/null   # fail loudly if anything is still broken
echo "[setup] built build/bin/tunescribe" >&2
