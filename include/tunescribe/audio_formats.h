// audio_formats.h — which audio files this build can decode, asked of libsndfile at run time.
//
// What it does: lists libsndfile's readable major formats (SFC_GET_FORMAT_MAJOR_COUNT /
// SFC_GET_FORMAT_MAJOR) and codecs (SFC_GET_FORMAT_SUBTYPE_COUNT / SFC_GET_FORMAT_SUBTYPE) once per
// process and turns them into the file extensions taken as audio: each major format's own
// extension plus the usual other names of what it holds (.aif/.aifc for AIFF, .ogg/.oga for OGG,
// .opus when the Opus codec is there, .mp3/.mp2/.mp1 when the MPEG layer is there). So MP3 and
// Opus input work exactly where the linked libsndfile decodes them (1.1+ built with mpg123 / opus).
// Left out: RAW (needs the format from the caller) and MAT4/MAT5 (mostly non-audio data files).
// For the formats libsndfile cannot read (AAC/M4A/MP4, WMA, ALAC-in-MP4, APE, …; MP3/Opus on a build
// without them) it gives one sentence that says so and how to convert (ffmpeg -i in.m4a out.flac).
// What it does not: decode (audio.h) or look at file contents.
// Thread-safety: all functions may be called from several threads (the table is built once).
#pragma once

#include <string>
#include <vector>

namespace tunescribe {

struct AudioFormatTable {
  std::vector<std::string> extensions;  // lower case with the dot, sorted: ".aif" ".aiff" ".flac" …
  bool mp3 = false;                     // MPEG Layer III (libsndfile >= 1.1 with mpg123)
  bool opus = false;                    // Ogg/Opus
  bool vorbis = false;                  // Ogg/Vorbis
  std::string libsndfile_version;       // e.g. "libsndfile-1.2.0"
};

// The table of the linked libsndfile (built on first use).
const AudioFormatTable& audio_format_table();
// The extensions as one line for help texts and errors: ".wav .flac .ogg .opus .mp3 …" (common
// ones first, then the rest in order).
std::string audio_extensions_text();
// True when the extension (case-insensitive) is in audio_format_table().extensions.
bool is_decodable_audio_extension(const std::string& path);
// For a path whose extension names audio that this libsndfile cannot decode (.m4a .aac .mp4 .wma
// .alac .ape .wv .mka .webm .amr; .mp3/.opus on a build without them): the reason and how to
// convert, e.g. "AAC/M4A audio is not decoded by libsndfile; convert it first, e.g. ffmpeg -i
// 'in.m4a' 'in.flac'". "" for every other path.
std::string audio_conversion_hint(const std::string& path);

}  // namespace tunescribe
