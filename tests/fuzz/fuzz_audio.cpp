// libFuzzer target: the audio reader (load_audio through libsndfile). The
// input is written to a per-process temporary file (load_audio reads paths);
// the fastest band-limited resampler keeps executions quick.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tunescribe/audio.h"
#include "tunescribe/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/tunescribe_fuzz_audio_" + std::to_string(::getpid()) + ".wav";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  tunescribe::AudioConfig cfg;
  cfg.resample_quality = tunescribe::kResamplePolyphase;  // the default converter (resampler.h)
  cfg.block_frames = 4096;
  try {
    (void)tunescribe::probe_audio(path);
    auto a = tunescribe::load_audio(path, cfg);
    (void)a.duration_s();
  } catch (const tunescribe::Error&) {
  }
  return 0;
}
