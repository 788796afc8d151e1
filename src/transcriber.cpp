// Placeholder until the engine issue lands: the interface exists so the CLI
// can report clearly that audio transcription is not available yet.
#include "tunescribe/transcriber.h"

#include "tunescribe/errors.h"

namespace tunescribe {

struct Transcriber::Impl {};

void TranscriberConfig::validate() const {
  if (n_threads < 1 || n_threads > 256)
    throw ConfigError("transcriber: n_threads = " + std::to_string(n_threads) + " is not within [1, 256]");
  if (batch_size < 1 || batch_size > 1024)
    throw ConfigError("transcriber: batch_size = " + std::to_string(batch_size) + " is not within [1, 1024]");
}

Transcriber::Transcriber(const TranscriberConfig& cfg) {
  cfg.validate();
  throw NotAvailableError("transcribe: audio transcription is not available yet (the model engine has not landed); MIDI inputs work");
}
Transcriber::~Transcriber() = default;
int Transcriber::sample_rate_hz() const { return 16000; }
std::string Transcriber::model_name() const { return ""; }
NoteSequence Transcriber::transcribe(const Audio&, const ProgressFn&) {
  throw NotAvailableError("transcribe: audio transcription is not available yet");
}
std::string default_model_dir() { return ""; }

}  // namespace tunescribe
