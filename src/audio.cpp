// Placeholder: replaced by the audio implementation (foundation issue).
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
namespace tunescribe {
void AudioConfig::validate() const {}
AudioInfo probe_audio(const std::string& p) { throw NotAvailableError("audio: " + p + ": not available yet"); }
Audio load_audio(const std::string& p, const AudioConfig&) { throw NotAvailableError("audio: " + p + ": not available yet"); }
std::vector<float> resample(const std::vector<float>&, int, int) { throw NotAvailableError("audio: resample not available yet"); }
void write_wav(const std::string& p, const std::vector<float>&, int, bool) { throw NotAvailableError("audio: " + p + ": not available yet"); }
bool is_audio_path(const std::string& p) {
  auto e = lower_extension(p);
  return e == ".wav" || e == ".flac" || e == ".ogg" || e == ".oga" || e == ".aif" || e == ".aiff";
}
}  // namespace tunescribe
