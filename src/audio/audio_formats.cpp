// audio_formats.cpp — the audio file extensions the linked libsndfile decodes, asked at run time.
#include "tunescribe/audio_formats.h"

#include <sndfile.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "tunescribe/fileutil.h"

namespace tunescribe {

namespace {

// libsndfile's format codes (sndfile.h); spelled out so that the table also builds against
// headers older than the codecs it asks about.
constexpr int kMajorRaw = 0x040000, kMajorMat4 = 0x0C0000, kMajorMat5 = 0x0D0000;
constexpr int kMajorWav = 0x010000, kMajorAiff = 0x020000, kMajorAu = 0x030000, kMajorOgg = 0x200000;
constexpr int kMajorMpeg = 0x230000, kMajorNist = 0x070000, kMajorWavex = 0x130000;
constexpr int kSubVorbis = 0x0060, kSubOpus = 0x0064;
constexpr int kSubMpeg1 = 0x0080, kSubMpeg2 = 0x0081, kSubMpeg3 = 0x0082;

AudioFormatTable build_table() {
  AudioFormatTable t;
  char version[128] = {0};
  sf_command(nullptr, SFC_GET_LIB_VERSION, version, sizeof(version));
  t.libsndfile_version = version;
  std::set<int> subtypes;
  int n_sub = 0;
  sf_command(nullptr, SFC_GET_FORMAT_SUBTYPE_COUNT, &n_sub, sizeof(n_sub));
  for (int i = 0; i < n_sub; ++i) {
    SF_FORMAT_INFO f{};
    f.format = i;
    if (sf_command(nullptr, SFC_GET_FORMAT_SUBTYPE, &f, sizeof(f)) == 0) subtypes.insert(f.format & SF_FORMAT_SUBMASK);
  }
  t.vorbis = subtypes.count(kSubVorbis) > 0;
  t.opus = subtypes.count(kSubOpus) > 0;
  std::set<std::string> ext;
  int n_major = 0;
  sf_command(nullptr, SFC_GET_FORMAT_MAJOR_COUNT, &n_major, sizeof(n_major));
  for (int i = 0; i < n_major; ++i) {
    SF_FORMAT_INFO f{};
    f.format = i;
    if (sf_command(nullptr, SFC_GET_FORMAT_MAJOR, &f, sizeof(f)) != 0) continue;
    const int major = f.format & SF_FORMAT_TYPEMASK;
    if (major == kMajorRaw || major == kMajorMat4 || major == kMajorMat5) continue;
    if (f.extension && *f.extension) ext.insert(lower_extension(std::string("x.") + f.extension));
    // The other names of what the container holds.
    if (major == kMajorWav || major == kMajorWavex) ext.insert(".wav");
    if (major == kMajorNist) ext.insert(".sph");
    if (major == kMajorAiff) ext.insert({".aif", ".aiff", ".aifc"});
    if (major == kMajorAu) ext.insert({".au", ".snd"});
    if (major == kMajorOgg) {
      ext.insert(".oga");
      if (t.vorbis) ext.insert(".ogg");
      if (t.opus) ext.insert(".opus");
    }
    if (major == kMajorMpeg) {
      t.mp3 = subtypes.count(kSubMpeg3) > 0;
      if (t.mp3) ext.insert(".mp3");
      if (subtypes.count(kSubMpeg2)) ext.insert(".mp2");
      if (subtypes.count(kSubMpeg1)) ext.insert(".mp1");
    }
  }
  t.extensions.assign(ext.begin(), ext.end());
  return t;
}

std::string quoted(const std::string& s) {
  if (s.find_first_of(" '\"\\$`") == std::string::npos) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

}  // namespace

const AudioFormatTable& audio_format_table() {
  static const AudioFormatTable table = build_table();
  return table;
}

std::string audio_extensions_text() {
  const auto& e = audio_format_table().extensions;
  std::vector<std::string> order;
  for (const char* common : {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff"})
    if (std::find(e.begin(), e.end(), common) != e.end()) order.push_back(common);
  for (const auto& x : e)
    if (std::find(order.begin(), order.end(), x) == order.end()) order.push_back(x);
  std::string out;
  for (const auto& x : order) out += (out.empty() ? "" : " ") + x;
  return out;
}

bool is_decodable_audio_extension(const std::string& path) {
  const std::string e = lower_extension(path);
  if (e.empty()) return false;
  const auto& list = audio_format_table().extensions;
  return std::binary_search(list.begin(), list.end(), e);
}

std::string audio_conversion_hint(const std::string& path) {
  const std::string e = lower_extension(path);
  const auto& t = audio_format_table();
  std::string what;
  if (e == ".m4a" || e == ".aac" || e == ".mp4" || e == ".m4b" || e == ".3gp") what = "AAC/M4A audio is";
  else if (e == ".alac") what = "ALAC in an MP4 container is";
  else if (e == ".wma" || e == ".asf") what = "WMA audio is";
  else if (e == ".ape") what = "Monkey's Audio (.ape) is";
  else if (e == ".wv") what = "WavPack audio is";
  else if (e == ".mka" || e == ".webm" || e == ".mkv") what = "Matroska/WebM audio is";
  else if (e == ".amr") what = "AMR audio is";
  else if (e == ".mp3" && !t.mp3) what = "MP3 audio is";
  else if (e == ".opus" && !t.opus) what = "Opus audio is";
  else return "";
  const std::string version = t.libsndfile_version.empty() ? "libsndfile" : t.libsndfile_version;
  const std::filesystem::path out = std::filesystem::path(path).replace_extension(".flac");
  return what + " not decoded by this build's " + version + "; convert it first, e.g. ffmpeg -i " + quoted(path) +
         " " + quoted(out.string());
}

}  // namespace tunescribe
