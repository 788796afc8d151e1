// `tunescribe tokens` (hidden): MIDI files → MT3 training targets, one JSON
// object per input on stdout. The trainer calls this so that it never
// re-implements the codec.
//
// Segment grid: segment k starts at sample offset + k·segment_frames·hop of
// the file's audio, and its target origin is
// floor((offset + k·segment_frames·hop)·steps_per_second / sample_rate) steps
// (the decoder's rounded-down start_time). The offset is snapped to the codec's
// step grid (10 ms) so that the crop's own origins are whole steps.
// Notes active at the crop start appear in segment 0's tie section.
//
// Output, one line per input:
//   {"file", "sample_rate", "hop", "segment_frames", "segment_s", "offset_s",
//    "duration_s", "vocab_size", "embedding_rows", "codec": {...config.json codec
//    section...}, "num_notes" (canonical notes), "canonicalized": {merged,
//    trimmed, extended, dropped}, "num_segments", "truncated_segments",
//    "segments": [{"start_s" (origin relative to the crop, what the decoder
//    uses), "start_sample" (first sample of the segment's audio in the file),
//    "tokens" (model ids ending with EOS), "truncated"}]}
// or {"file", "error"} for an input that failed (exit code 1, the batch goes on).
// Start-up dominates for one file (libtorch is linked in): pass many files per
// call, or '-' and a list on stdin.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/codec.h"
#include "tunescribe/errors.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"

namespace tunescribe::cli {

struct TokensOptions {
  std::vector<std::string> files;
  int segment_frames = 256;
  int hop = 128;
  int sample_rate_hz = 16000;
  double offset_s = 0.0;
  double duration_s = -1.0;
  int velocity_bins = 1;
  bool no_ties = false;
  bool flat_programs = false;
  bool no_sustain = false;
  std::string codec_json;
  int max_tokens = kMaxTargetTokens;
};

namespace {

CodecConfig codec_from_options(const TokensOptions& o, const CLI::App& sub) {
  CodecConfig cfg;
  if (!o.codec_json.empty()) {
    std::ifstream in(o.codec_json);
    if (!in) throw ConfigError("tokens: --codec-json: cannot open " + o.codec_json);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("tokens: --codec-json: " + o.codec_json + ": " + e.what());
    }
    // A model's config.json (its "codec" section) or a bare codec object.
    cfg = CodecConfig::from_json(j.is_object() && j.contains("codec") ? j["codec"] : j);
  }
  if (sub.count("--velocity-bins")) cfg.num_velocity_bins = o.velocity_bins;
  if (o.no_ties) cfg.use_ties = false;
  if (o.flat_programs) cfg.program_granularity = "flat";
  cfg.validate();
  return cfg;
}

void check_options(const TokensOptions& o) {
  if (o.segment_frames < 1)
    throw ConfigError("tokens: --segment-frames = " + std::to_string(o.segment_frames) + " is out of range (>= 1)");
  if (o.hop < 1) throw ConfigError("tokens: --hop = " + std::to_string(o.hop) + " is out of range (>= 1)");
  if (o.sample_rate_hz < 1)
    throw ConfigError("tokens: --sample-rate = " + std::to_string(o.sample_rate_hz) + " is out of range (>= 1)");
  if (!(o.offset_s >= 0.0) || !std::isfinite(o.offset_s))
    throw ConfigError("tokens: --offset-s = " + std::to_string(o.offset_s) + " is out of range (>= 0)");
  if (o.max_tokens < 2)
    throw ConfigError("tokens: --max-tokens = " + std::to_string(o.max_tokens) + " is out of range (>= 2)");
}

nlohmann::json tokens_for_file(const std::string& path, const TokensOptions& o, const Codec& codec) {
  MidiReadOptions ro;
  ro.apply_sustain = !o.no_sustain;
  NoteSequence seq = read_midi_file(path, ro);

  const int64_t sps = codec.steps_per_second();
  const int64_t sr = o.sample_rate_hz;
  const int64_t offset_step = codec.quantize_step(o.offset_s);
  const int64_t offset_samples = offset_step * sr / sps;  // exact when sr is a multiple of sps
  const double offset_s = double(offset_step) / double(sps);
  const double total_s = o.duration_s >= 0 ? o.duration_s : seq.end_time();
  const int64_t segment_samples = int64_t(o.segment_frames) * o.hop;
  // Samples of the crop, then frames as the front end counts them (the end is
  // padded to a multiple of the hop, a full hop more when already aligned).
  const int64_t n_samples = std::max<int64_t>(0, int64_t(std::ceil((total_s - offset_s) * double(sr) - 1e-9)));
  const int64_t n_frames = n_samples / o.hop + 1;
  const int64_t n_segments = (n_frames + o.segment_frames - 1) / o.segment_frames;

  TargetEncoder enc(codec, seq.notes);
  std::vector<int64_t> origins(static_cast<size_t>(n_segments));
  for (int64_t k = 0; k < n_segments; ++k)
    origins[size_t(k)] = offset_step + (k * segment_samples * sps) / sr;  // floor, exact in integers

  nlohmann::json segs = nlohmann::json::array();
  int truncated = 0;
  for (int64_t k = 0; k < n_segments; ++k) {
    int64_t end = k + 1 < n_segments ? origins[size_t(k + 1)] : -1;
    EncodedSegment s = enc.encode_segment_steps(origins[size_t(k)], end, o.max_tokens);
    truncated += s.truncated;
    segs.push_back({{"start_s", double(origins[size_t(k)] - offset_step) / double(sps)},
                    {"start_sample", offset_samples + k * segment_samples},
                    {"tokens", std::move(s.ids)},
                    {"truncated", s.truncated}});
  }
  const CanonicalizeStats& st = enc.stats();
  return nlohmann::json{{"file", path},
                        {"sample_rate", o.sample_rate_hz},
                        {"hop", o.hop},
                        {"segment_frames", o.segment_frames},
                        {"segment_s", double(segment_samples) / double(sr)},
                        {"offset_s", offset_s},
                        {"duration_s", total_s},
                        {"vocab_size", codec.vocab_size()},
                        {"embedding_rows", codec.embedding_rows()},
                        {"codec", codec.config().to_json()},
                        {"num_notes", enc.canonical_notes().size()},
                        {"canonicalized", {{"merged", st.merged}, {"trimmed", st.trimmed},
                                           {"extended", st.extended}, {"dropped", st.dropped}}},
                        {"num_segments", n_segments},
                        {"truncated_segments", truncated},
                        {"segments", std::move(segs)}};
}

}  // namespace

void setup_tokens(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<TokensOptions>();
  auto* sub = app.add_subcommand("tokens", "Export MT3 training targets (token ids per segment) for MIDI files");
  sub->group("");  // hidden from the main help: a tool for the trainer
  sub->add_option("files", o->files, "MIDI files ('-' reads paths from stdin, one per line)")->required();
  sub->add_option("--segment-frames", o->segment_frames, "Encoder frames per segment (256 mt3, 512 ismir2021)");
  sub->add_option("--hop", o->hop, "Front-end hop in samples");
  sub->add_option("--sample-rate", o->sample_rate_hz, "Front-end sample rate in Hz");
  sub->add_option("--offset-s", o->offset_s, "Start of the audio crop in seconds (snapped to the 10 ms grid)");
  sub->add_option("--duration-s", o->duration_s,
                  "Duration of the file's audio in seconds (default: the MIDI's end)");
  sub->add_option("--velocity-bins", o->velocity_bins, "Velocity bins (1 = on/off, 127 = full)");
  sub->add_flag("--no-ties", o->no_ties, "No tie sections (ismir2021)");
  sub->add_flag("--flat-programs", o->flat_programs, "No program tokens (ismir2021)");
  sub->add_flag("--no-sustain", o->no_sustain, "Do not extend notes with the sustain pedal");
  sub->add_option("--codec-json", o->codec_json,
                  "Codec parameters from a model's config.json (\"codec\" section) or a codec JSON object");
  sub->add_option("--max-tokens", o->max_tokens, "Target length limit incl. EOS (longer segments are truncated)");
  sub->callback([o, global, sub]() {
    apply_global_options(*global);
    check_options(*o);
    Codec codec(codec_from_options(*o, *sub));
    const std::vector<std::string> files = expand_stdin_paths(o->files);
    int failed = 0;
    for (const auto& f : files) {
      std::string out;
      try {
        out = tokens_for_file(f, *o, codec).dump();
      } catch (const NotAvailableError&) {
        throw;
      } catch (const Error& e) {
        ++failed;
        log_error("tokens", e.what());
        out = nlohmann::json{{"file", f}, {"error", e.what()}}.dump();
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    std::fflush(stdout);
    set_exit_code(failed ? kExitSomeFailed : kExitOk);
  });
}

}  // namespace tunescribe::cli
