#!/usr/bin/env bash
# tools/train/fetch_sndfile_libs.sh — put Debian's libsndfile (+ FLAC/Vorbis/Opus/MP3 libraries) under
# data/sndfile-libs (ignored by git) so that tools/train/audio_codec.py can decode the shards through
# ctypes on a training machine that has PyTorch but neither the soundfile module nor libsndfile
# (~3 MB). Run here (needs apt access to the Debian mirror), then carry data/sndfile-libs.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=data/sndfile-libs
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 777 "$T"
(cd "$T" && apt-get download libsndfile1 libflac12 libvorbis0a libvorbisenc2 libogg0 libopus0 \
    libmpg123-0 libmp3lame0)
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
for d in "$T"/*.deb; do dpkg -x "$d" "$OUTDIR"; done
echo "libsndfile at: $(find "$OUTDIR" -name 'libsndfile.so.1' | head -n1) (audio_codec.py finds it there)"
du -sh "$OUTDIR"
