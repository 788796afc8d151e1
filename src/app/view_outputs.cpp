// view_outputs.cpp — svg / roll / wav outputs (see view_outputs.h).
#include "tunescribe/view_outputs.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/render.h"

namespace fs = std::filesystem;

namespace tunescribe {

void ViewOutputConfig::validate() const {
  if (wav_rate_hz < 8000 || wav_rate_hz > 192000)
    throw ConfigError("views: wav_rate_hz " + std::to_string(wav_rate_hz) + " is not within [8000, 192000]");
  if (!(wav_tail_s >= 0.0 && wav_tail_s <= 30.0))
    throw ConfigError("views: wav_tail_s " + std::to_string(wav_tail_s) + " is not within [0, 30]");
  roll.validate();
  engrave.validate();
}

bool is_view_format(const std::string& f) { return f == "svg" || f == "roll" || f == "wav"; }

std::string view_output_extension(const std::string& f) {
  if (f == "roll") return "roll.svg";
  if (f == "wav") return "synth.wav";
  return f;
}

std::vector<std::string> view_output_extensions(const std::vector<std::string>& formats) {
  std::vector<std::string> out;
  for (const auto& f : formats) out.push_back(view_output_extension(f));
  return out;
}

std::vector<std::string> check_view_formats(const std::vector<std::string>& formats, ViewOutputConfig* cfg,
                                            const std::string& component) {
  cfg->validate();
  std::vector<std::string> ruled_out;
  for (const auto& f : formats) {
    if (f == "wav") {
      if (!have_fluidsynth())
        throw NotAvailableError(component + ": --format wav needs libfluidsynth, which this build does not have");
      if (cfg->soundfont.empty()) cfg->soundfont = default_soundfont();
      if (cfg->soundfont.empty())
        throw ConfigError(component + ": --format wav: no default soundfont in /usr/share/sounds/sf2 (Debian package "
                                      "fluid-soundfont-gm); pass --soundfont FILE.sf2");
      std::error_code ec;
      if (!fs::is_regular_file(cfg->soundfont, ec))
        throw ConfigError(component + ": --soundfont " + cfg->soundfont + ": no such file");
    } else if (f == "svg") {
      if (find_abcm2ps(cfg->engrave).empty()) ruled_out.push_back(f);
    }
  }
  return ruled_out;
}

std::vector<std::string> parse_view_formats(const std::string& formats, const std::string& component) {
  std::vector<std::string> out;
  std::string f;
  for (size_t i = 0; i <= formats.size(); ++i) {
    if (i < formats.size() && formats[i] != ',') {
      f += formats[i];
      continue;
    }
    if (!f.empty()) {
      if (!is_view_format(f))
        throw ConfigError(component + ": --format: unknown format '" + f + "' (choose from svg, roll, wav)");
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    }
    f.clear();
  }
  return out;
}

std::string remove_formats(const std::string& formats, const std::vector<std::string>& drop) {
  std::string out, f;
  for (size_t i = 0; i <= formats.size(); ++i) {
    if (i < formats.size() && formats[i] != ',') {
      f += formats[i];
      continue;
    }
    if (!f.empty() && std::find(drop.begin(), drop.end(), f) == drop.end()) out += (out.empty() ? "" : ",") + f;
    f.clear();
  }
  return out;
}

std::string wav_pcm16_bytes(const std::vector<float>& samples, int rate_hz) {
  const uint64_t data_bytes = uint64_t(samples.size()) * 2;
  if (data_bytes > 0xFFFFFFFFull - 36) throw OutputError("wav: too long for a WAV file (" + std::to_string(samples.size()) + " samples)");
  std::string b;
  b.reserve(44 + data_bytes);
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) b += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  auto u16 = [&](uint16_t v) {
    b += static_cast<char>(v & 0xFF);
    b += static_cast<char>((v >> 8) & 0xFF);
  };
  b += "RIFF";
  u32(static_cast<uint32_t>(36 + data_bytes));
  b += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(static_cast<uint32_t>(rate_hz));
  u32(static_cast<uint32_t>(rate_hz) * 2);
  u16(2);
  u16(16);
  b += "data";
  u32(static_cast<uint32_t>(data_bytes));
  for (float x : samples) {
    const float c = std::isfinite(x) ? std::clamp(x, -1.0f, 1.0f) : 0.0f;
    const auto v = static_cast<int16_t>(std::lrint(c * 32767.0f));
    u16(static_cast<uint16_t>(v));
  }
  return b;
}

std::vector<std::string> render_view(const std::string& format, const NoteSequence& seq, const AbcWriterConfig& abc,
                                     const Analysis& an, const ViewOutputConfig& cfg) {
  if (format == "svg") {
    const AbcTune tune = write_abc(seq, abc, an);
    return engrave_abc_svg(tune.text, abc.title, cfg.engrave);
  }
  if (format == "roll") {
    PianoRollConfig rc = cfg.roll;
    if (rc.title.empty()) rc.title = abc.title;
    return {render_piano_roll_svg(seq, bar_times(an, seq.end_time()), rc)};
  }
  if (format == "wav") {
    const std::string sf = cfg.soundfont.empty() ? default_soundfont() : cfg.soundfont;
    return {wav_pcm16_bytes(render_with_fluidsynth(seq, sf, cfg.wav_rate_hz, cfg.wav_tail_s), cfg.wav_rate_hz)};
  }
  throw ConfigError("views: unknown format '" + format + "' (svg, roll, wav)");
}

std::vector<std::string> write_view_files(const std::string& first, const std::vector<std::string>& contents,
                                          bool force, const std::string& component) {
  std::vector<std::string> paths;
  for (size_t k = 0; k < contents.size(); ++k) paths.push_back(engraved_page_path(first, k + 1));
  if (!force) {
    std::error_code ec;
    for (const auto& p : paths)
      if (fs::exists(p, ec)) throw OutputError(component + ": " + p + ": exists (use --force to overwrite)");
  }
  for (size_t k = 0; k < contents.size(); ++k) write_file_atomic(paths[k], contents[k]);
  if (force)
    for (const auto& p : later_pages(first, contents.size())) {
      std::error_code ec;
      fs::remove(p, ec);
    }
  return paths;
}

std::vector<std::string> later_pages(const std::string& first, size_t pages) {
  std::vector<std::string> out;
  std::error_code ec;
  for (size_t k = pages + 1;; ++k) {
    const std::string p = engraved_page_path(first, static_cast<int>(k));
    if (!fs::exists(p, ec)) break;
    out.push_back(p);
  }
  return out;
}

}  // namespace tunescribe
