// render.cpp — notes to audio with libfluidsynth (see render.h).
#include "tunescribe/render.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "tunescribe/errors.h"
#include "tunescribe/log.h"

#ifdef TUNESCRIBE_HAVE_FLUIDSYNTH
#include <fluidsynth.h>
#endif

namespace tunescribe {

std::string default_soundfont() {
  for (const char* p : {"/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
                        "/usr/share/sounds/sf2/TimGM6mb.sf2"}) {
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return p;
  }
  return "";
}

#ifdef TUNESCRIBE_HAVE_FLUIDSYNTH
bool have_fluidsynth() { return true; }

namespace {
void fluid_log_to_ours(int level, const char* message, void*) {
  if (level <= FLUID_ERR) log_warn("fluidsynth", message ? message : "");
  else log_debug("fluidsynth", message ? message : "");
}
}  // namespace

std::vector<float> render_with_fluidsynth(const NoteSequence& seq, const std::string& soundfont, int rate_hz,
                                          double tail_s) {
  if (rate_hz < 8000 || rate_hz > 192000)
    throw ConfigError("generator: render rate = " + std::to_string(rate_hz) + " Hz is out of range (8000..192000)");
  static std::once_flag once;
  std::call_once(once, [] {
    for (int level : {FLUID_PANIC, FLUID_ERR, FLUID_WARN, FLUID_INFO, FLUID_DBG})
      fluid_set_log_function(level, fluid_log_to_ours, nullptr);
  });
  if (soundfont.empty()) throw InputError("generate: no soundfont found (pass --soundfont FILE.sf2)");
  std::error_code ec;
  if (!std::filesystem::exists(soundfont, ec)) throw InputError("generate: " + soundfont + ": soundfont not found");
  fluid_settings_t* settings = new_fluid_settings();
  fluid_settings_setnum(settings, "synth.sample-rate", double(rate_hz));
  fluid_settings_setint(settings, "synth.cpu-cores", 1);
  fluid_synth_t* synth = new_fluid_synth(settings);
  struct Guard {
    fluid_settings_t* s;
    fluid_synth_t* y;
    ~Guard() {
      if (y) delete_fluid_synth(y);
      if (s) delete_fluid_settings(s);
    }
  } guard{settings, synth};
  if (!synth) throw InputError("generate: cannot start FluidSynth");
  if (fluid_synth_sfload(synth, soundfont.c_str(), 1) == FLUID_FAILED)
    throw InputError("generate: " + soundfont + ": cannot load the soundfont");
  // Channels: one per program (skipping 9), drums on 9.
  std::map<int, int> chan_of;
  int next = 0;
  for (const Note& n : seq.notes) {
    if (n.is_drum || chan_of.count(n.program)) continue;
    int ch = next < 15 ? (next < 9 ? next : next + 1) : (n.program % 15 < 9 ? n.program % 15 : n.program % 15 + 1);
    chan_of[n.program] = ch;
    ++next;
    fluid_synth_program_change(synth, ch, n.program);
  }
  struct Ev {
    int64_t frame;
    int on;  // 0 off, 1 on
    int ch, key, vel;
  };
  std::vector<Ev> evs;
  double end = 0;
  for (const Note& n : seq.notes) {
    int ch = n.is_drum ? 9 : chan_of[n.program];
    evs.push_back({int64_t(std::llround(n.onset_s * rate_hz)), 1, ch, n.pitch, std::clamp(n.velocity, 1, 127)});
    evs.push_back({int64_t(std::llround(n.offset_s * rate_hz)), 0, ch, n.pitch, 0});
    end = std::max(end, n.offset_s);
  }
  std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
    if (a.frame != b.frame) return a.frame < b.frame;
    if (a.on != b.on) return a.on < b.on;
    if (a.ch != b.ch) return a.ch < b.ch;
    return a.key < b.key;
  });
  const int64_t total = int64_t(std::llround((end + tail_s) * rate_hz));
  std::vector<float> left(static_cast<size_t>(total), 0.f), right(static_cast<size_t>(total), 0.f);
  int64_t pos = 0;
  auto render_to = [&](int64_t f) {
    f = std::min(f, total);
    while (pos < f) {
      int len = int(std::min<int64_t>(f - pos, 4096));
      fluid_synth_write_float(synth, len, left.data() + pos, 0, 1, right.data() + pos, 0, 1);
      pos += len;
    }
  };
  for (const Ev& e : evs) {
    render_to(e.frame);
    if (e.on) fluid_synth_noteon(synth, e.ch, e.key, e.vel);
    else fluid_synth_noteoff(synth, e.ch, e.key);
  }
  render_to(total);
  std::vector<float> mono(static_cast<size_t>(total), 0.f);
  for (size_t i = 0; i < mono.size(); ++i) mono[i] = std::clamp(0.5f * (left[i] + right[i]), -1.f, 1.f);
  return mono;
}
#else
bool have_fluidsynth() { return false; }
std::vector<float> render_with_fluidsynth(const NoteSequence&, const std::string&, int, double) {
  throw NotAvailableError("generate: --wav needs libfluidsynth, which this build does not have");
}
#endif

}  // namespace tunescribe
