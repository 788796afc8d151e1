// The engine: audio → log-mel segments → encoder → batched greedy decoding →
// one codec decoding state across segments → notes ("tokens"), or audio →
// log-frequency segments → hconv front heads → frames decoder → notes
// ("frames"). No libtorch here: the model is used through model.h.
#include "tunescribe/transcriber.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "tunescribe/codec.h"
#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"
#include "tunescribe/log.h"
#include "tunescribe/model.h"
#include "tunescribe/model_store.h"


namespace tunescribe {

void TranscriberConfig::validate() const {
  if (n_threads < 1 || n_threads > 256)
    throw ConfigError("transcriber: n_threads = " + std::to_string(n_threads) + " is not within [1, 256]");
  if (batch_size < 0 || batch_size > 1024)
    throw ConfigError("transcriber: batch_size = " + std::to_string(batch_size) + " is not within [0, 1024] (0 = auto)");
  if (max_decode_steps < 1 || max_decode_steps > 4096)
    throw ConfigError("transcriber: max_decode_steps = " + std::to_string(max_decode_steps) +
                      " is not within [1, 4096]");
  if (decoder != "auto" && decoder != "tokens" && decoder != "frames")
    throw ConfigError("transcriber: decoder = \"" + decoder + "\" is not one of auto, tokens, frames");
  if (precision != "auto" && precision != "fp32" && precision != "int8")
    throw ConfigError("transcriber: precision = \"" + precision + "\" is not one of auto, fp32, int8");
  frames.apply(FramesDecoderConfig{}).validate();  // each value set is in range
}

struct Transcriber::Impl {
  TranscriberConfig cfg;
  std::unique_ptr<Model> model;
  LogMelConfig mel_cfg;
  std::unique_ptr<LogMel> logmel;
  CodecConfig codec_cfg;
  std::unique_ptr<Codec> codec;
  TranscribeProfile* profile = nullptr;
  SegmentObserver observer;
  bool use_frames = false;  // decoding path: frames decoder on the hconv heads
  FramesDecoderConfig frames_cfg;

  // Fills the next segment in time order; false when there is none.
  using SegmentSource = std::function<bool(MelSegment&)>;
  // Reads up to batch_size segments: their features into `batch` (grown as
  // needed), the segments (data released) into `segs`.
  void next_batch(const SegmentSource& next, std::vector<MelSegment>& segs, std::vector<float>& batch) const;
  // Batches segments through encoder + greedy decoding into one NoteDecoder.
  NoteSequence run(const SegmentSource& next, const std::function<int()>& total_segments,
                   const ProgressFn& progress);
  // Batches segments through the hconv front into one FramesDecoder.
  NoteSequence run_frames(const SegmentSource& next, const std::function<int()>& total_segments,
                          const ProgressFn& progress);
  NoteSequence dispatch(const SegmentSource& next, const std::function<int()>& total_segments,
                        const ProgressFn& progress) {
    return use_frames ? run_frames(next, total_segments, progress) : run(next, total_segments, progress);
  }
};

namespace {
// Adds the wall and process-CPU time since construction (or the last lap) to
// the given fields of a profile; does nothing without a profile.
class StageTimer {
 public:
  explicit StageTimer(TranscribeProfile* p) : p_(p) { if (p_) reset(); }
  void lap(double& wall_s, double& cpu_s) {
    if (!p_) return;
    const double w = wall(), c = cpu();
    wall_s += w - wall0_;
    cpu_s += c - cpu0_;
    wall0_ = w;
    cpu0_ = c;
  }
  void reset() { wall0_ = wall(); cpu0_ = cpu(); }

 private:
  static double wall() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  static double cpu() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  TranscribeProfile* p_;
  double wall0_ = 0, cpu0_ = 0;
};
}  // namespace

Transcriber::Transcriber(const TranscriberConfig& cfg) : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  impl_->cfg = cfg;
  std::string dir = cfg.model_dir.empty() ? default_model_dir() : resolve_model_dir(cfg.model_dir);
  if (dir.empty())
    throw ModelError("model: no default model found (looked in <exe>/../share/tunescribe/models/default and "
                     "the source tree's models/default); pass --model DIR");
  set_model_threads(cfg.n_threads);
  impl_->model = Model::load(dir);
  std::string precision = cfg.precision;
  if (precision == "auto") {
    const nlohmann::json& raw = impl_->model->raw_config();
    precision = raw.contains("inference") && raw["inference"].is_object() && raw["inference"].value("precision", "") == "int8" &&
                        int8_available()
                    ? "int8"
                    : "fp32";
  }
  if (precision == "int8") impl_->model->quantize_int8();  // NotAvailableError without oneDNN
  try {
    impl_->mel_cfg = LogMelConfig::from_json(impl_->model->frontend_json());
    impl_->mel_cfg.validate();
    impl_->codec_cfg = CodecConfig::from_json(impl_->model->codec_json());
    impl_->codec_cfg.validate();
  } catch (const ConfigError& e) {
    throw ModelError("model: " + dir + "/config.json: " + e.what());
  }
  const ModelConfig& mc = impl_->model->config();
  if (impl_->model->has_heads()) {
    if (impl_->model->feature_depth() != impl_->mel_cfg.n_features())
      throw ModelError("model: " + dir + "/config.json: the hconv front takes " +
                       std::to_string(impl_->model->feature_depth()) + " bins, the front end gives " +
                       std::to_string(impl_->mel_cfg.n_features()));
  } else if (mc.input_depth != impl_->mel_cfg.n_features()) {
    throw ModelError("model: " + dir + "/config.json: model.input_depth = " + std::to_string(mc.input_depth) +
                     " does not match frontend." + (impl_->mel_cfg.is_logfreq() ? "n_bins = " : "n_mels = ") +
                     std::to_string(impl_->mel_cfg.n_features()));
  }
  // Decoding path and frames decoder settings: the model's "decoding" section, then the caller's.
  const nlohmann::json& dj = impl_->model->decoding_json();
  std::string model_default = "tokens";
  if (impl_->model->has_heads() && dj.contains("default")) {
    if (!dj["default"].is_string() || (dj["default"] != "tokens" && dj["default"] != "frames"))
      throw ModelError("model: " + dir + "/config.json: decoding.default is " + dj["default"].dump() +
                       ", expected \"tokens\" or \"frames\"");
    model_default = dj["default"].get<std::string>();
  }
  const std::string path = cfg.decoder == "auto" ? model_default : cfg.decoder;
  if (path == "frames" && !impl_->model->has_heads())
    throw ConfigError("transcriber: decoder \"frames\" needs a model with dense heads (an hconv model); " +
                      (impl_->model->name().empty() ? dir : impl_->model->name()) +
                      " has none: use the tokens decoder");
  impl_->use_frames = path == "frames";
  if (impl_->cfg.batch_size == 0) impl_->cfg.batch_size = impl_->use_frames ? 8 : 16;
  if (impl_->model->has_heads()) {
    try {
      impl_->frames_cfg = FramesDecoderConfig::from_json(dj);
    } catch (const ConfigError& e) {
      throw ModelError("model: " + dir + "/config.json: " + e.what());
    }
  }
  impl_->frames_cfg = cfg.frames.apply(impl_->frames_cfg);
  impl_->frames_cfg.validate();
  impl_->codec = std::make_unique<Codec>(impl_->codec_cfg);
  if (impl_->codec->embedding_rows() != mc.vocab_size)
    throw ModelError("model: " + dir + "/config.json: model.vocab_size = " + std::to_string(mc.vocab_size) +
                     " does not match the codec's " + std::to_string(impl_->codec->embedding_rows()) +
                     " embedding rows");
  if (impl_->mel_cfg.segment_frames > mc.max_positions)
    throw ModelError("model: " + dir + "/config.json: frontend.segment_frames exceeds model.max_positions");
  impl_->logmel = std::make_unique<LogMel>(impl_->mel_cfg);
  log_info("model", "loaded " + impl_->model->name() + " from " + dir + " (" +
                        std::to_string(mc.num_parameters()) + " parameters, " + std::to_string(cfg.n_threads) +
                        " threads" + (impl_->model->has_heads() ? ", " + path + " decoder" : std::string()) + ")");
}

Transcriber::~Transcriber() = default;

int Transcriber::sample_rate_hz() const { return impl_->mel_cfg.sample_rate_hz; }
std::string Transcriber::model_name() const { return impl_->model->name(); }
std::string Transcriber::precision() const { return impl_->model->quantized() ? "int8" : "fp32"; }
std::string Transcriber::decoder() const { return impl_->use_frames ? "frames" : "tokens"; }
int Transcriber::batch_size() const { return impl_->cfg.batch_size; }
const FramesDecoderConfig& Transcriber::frames_config() const { return impl_->frames_cfg; }
void Transcriber::set_profile(TranscribeProfile* profile) { impl_->profile = profile; }
void Transcriber::set_segment_observer(SegmentObserver observer) { impl_->observer = std::move(observer); }

namespace {
// Notes never extend past the audio.
void clip_to_duration(NoteSequence& seq, double dur) {
  std::vector<Note> kept;
  for (auto& n : seq.notes) {
    if (n.onset_s >= dur) continue;
    n.offset_s = std::min(n.offset_s, dur);
    if (n.offset_s <= n.onset_s) n.offset_s = std::min(dur, n.onset_s + 0.01);
    if (n.offset_s > n.onset_s) kept.push_back(n);
  }
  seq.notes = std::move(kept);
  seq.duration_s = dur;
}
}  // namespace

void Transcriber::Impl::next_batch(const SegmentSource& next, std::vector<MelSegment>& segs,
                                   std::vector<float>& batch) const {
  const size_t seg_floats = static_cast<size_t>(mel_cfg.segment_frames) * static_cast<size_t>(mel_cfg.n_features());
  segs.clear();
  segs.reserve(static_cast<size_t>(cfg.batch_size));
  while (static_cast<int>(segs.size()) < cfg.batch_size) {
    MelSegment s;
    if (!next(s)) break;
    if (batch.size() < (segs.size() + 1) * seg_floats) batch.resize((segs.size() + 1) * seg_floats);
    std::copy(s.data.begin(), s.data.end(), batch.begin() + static_cast<std::ptrdiff_t>(segs.size() * seg_floats));
    s.data.clear();
    s.data.shrink_to_fit();
    segs.push_back(std::move(s));
  }
}

NoteSequence Transcriber::Impl::run_frames(const SegmentSource& next, const std::function<int()>& total_segments,
                                           const ProgressFn& progress) {
  const int frames = mel_cfg.segment_frames;
  const size_t seg_floats = static_cast<size_t>(frames) * static_cast<size_t>(mel_cfg.n_features());
  const HconvConfig& hc = model->hconv_config();
  const size_t head_floats = static_cast<size_t>(hc.num_heads()) * static_cast<size_t>(frames) * HconvConfig::kKeys;
  const FrameGeometry geo = FrameGeometry::from_frontend(mel_cfg);
  FramesDecoder decoder(frames_cfg, geo, hc.num_families);
  TranscribeProfile* prof = profile;
  StageTimer timer(prof);
  std::vector<float> batch;
  std::vector<MelSegment> segs;
  const std::vector<int> no_ids;
  int done = 0;
  for (;;) {
    next_batch(next, segs, batch);
    if (segs.empty()) break;
    const int nb = static_cast<int>(segs.size());
    if (prof) timer.lap(prof->frontend_s, prof->frontend_cpu_s);
    const std::vector<float> heads = model->front_heads(batch.data(), nb, frames);
    if (prof) timer.lap(prof->encoder_s, prof->encoder_cpu_s);
    if (observer)
      for (int i = 0; i < nb; ++i)
        observer(done + i, segs[static_cast<size_t>(i)].start_exact_s,
                 batch.data() + static_cast<size_t>(i) * seg_floats, seg_floats, no_ids);
    for (int i = 0; i < nb; ++i) {
      const MelSegment& s = segs[static_cast<size_t>(i)];
      decoder.add_segment(heads.data() + static_cast<size_t>(i) * head_floats, s.start_exact_s,
                          geo.real_frames(s.n_samples), batch.data() + static_cast<size_t>(i) * seg_floats);
    }
    done += nb;
    if (prof) {
      timer.lap(prof->decoder_s, prof->decoder_cpu_s);
      prof->segments += nb;
    }
    if (progress) progress(done, std::max(done, total_segments()));
    if (prof) timer.reset();
  }
  NoteSequence seq;
  seq.notes = decoder.finish();
  if (prof) timer.lap(prof->decoder_s, prof->decoder_cpu_s);
  return seq;
}

NoteSequence Transcriber::Impl::run(const SegmentSource& next, const std::function<int()>& total_segments,
                                    const ProgressFn& progress) {
  const int frames = mel_cfg.segment_frames;
  const int depth = mel_cfg.n_features();
  const size_t seg_floats = static_cast<size_t>(frames) * depth;
  const int max_steps = std::min(cfg.max_decode_steps, model->config().max_positions - 1);
  NoteDecoder decoder(*codec);
  decoder.set_merge_relabelled_ties(cfg.merge_relabelled_ties);
  // Segments are computed batch by batch, so memory stays bounded for long files.
  int done = 0;
  MelSegment prev;
  bool have_prev = false;
  std::vector<int> prev_ids;
  TranscribeProfile* prof = profile;
  StageTimer timer(prof);
  std::vector<float> batch;  // grows to the largest batch actually seen (short files: their segments only)
  std::vector<MelSegment> segs;
  for (;;) {
    next_batch(next, segs, batch);
    if (segs.empty()) break;
    const int nb = static_cast<int>(segs.size());
    if (prof) timer.lap(prof->frontend_s, prof->frontend_cpu_s);
    EncoderOutput enc = model->encode(batch.data(), nb, frames);
    if (prof) timer.lap(prof->encoder_s, prof->encoder_cpu_s);
    auto ids = model->greedy_decode(enc, max_steps);
    if (prof) {
      timer.lap(prof->decoder_s, prof->decoder_cpu_s);
      prof->segments += nb;
      for (const auto& v : ids) prof->tokens += static_cast<int64_t>(v.size());
    }
    if (observer)
      for (int i = 0; i < nb; ++i)
        observer(done + i, segs[static_cast<size_t>(i)].start_s, batch.data() + static_cast<size_t>(i) * seg_floats,
                 seg_floats, ids[static_cast<size_t>(i)]);
    for (int i = 0; i < nb; ++i) {
      // Stitch in time order: a segment is added once the next one's start is known.
      if (have_prev) decoder.add_segment(prev_ids, prev.start_s, segs[static_cast<size_t>(i)].start_s);
      prev = std::move(segs[static_cast<size_t>(i)]);
      prev_ids = std::move(ids[static_cast<size_t>(i)]);
      have_prev = true;
    }
    done += nb;
    if (prof) timer.lap(prof->codec_s, prof->codec_cpu_s);
    if (progress) progress(done, std::max(done, total_segments()));
    if (prof) timer.reset();  // the progress callback is not ours to count
  }
  if (have_prev) decoder.add_segment(prev_ids, prev.start_s, -1.0);
  NoteSequence seq = decoder.finish();
  if (prof) timer.lap(prof->codec_s, prof->codec_cpu_s);
  if (decoder.invalid_tokens() > 0)
    log_debug("transcribe", std::to_string(decoder.invalid_tokens()) + " invalid tokens skipped");
  if (decoder.merged_ties() > 0)
    log_debug("transcribe", std::to_string(decoder.merged_ties()) + " held notes continued under a relabelled program");
  return seq;
}

NoteSequence Transcriber::transcribe(const Audio& audio, const ProgressFn& progress) {
  if (audio.rate_hz != impl_->mel_cfg.sample_rate_hz)
    throw ConfigError("transcriber: audio at " + std::to_string(audio.rate_hz) + " Hz, model expects " +
                      std::to_string(impl_->mel_cfg.sample_rate_hz) + " Hz");
  const LogMel& mel = *impl_->logmel;
  const int n_seg = mel.num_segments(audio.samples.size());
  int k = 0;
  auto next = [&](MelSegment& s) {
    if (k >= n_seg) return false;
    s = mel.segment(audio.samples.data(), audio.samples.size(), k++);
    return true;
  };
  NoteSequence seq = impl_->dispatch(next, [&]() { return n_seg; }, progress);
  clip_to_duration(seq, audio.duration_s());
  return seq;
}

NoteSequence Transcriber::transcribe(AudioStream& stream, const ProgressFn& progress) {
  if (stream.rate_hz() != impl_->mel_cfg.sample_rate_hz)
    throw ConfigError("transcriber: audio stream at " + std::to_string(stream.rate_hz()) + " Hz, model expects " +
                      std::to_string(impl_->mel_cfg.sample_rate_hz) + " Hz");
  const LogMel& mel = *impl_->logmel;
  const size_t seg = static_cast<size_t>(impl_->mel_cfg.segment_samples());
  const long long expected = std::max(0LL, stream.expected_samples() - stream.samples_read());
  const int estimate = mel.num_segments(static_cast<size_t>(expected));
  // One segment's samples at a time (LogMel::segment_from_chunk reads only
  // these); a short chunk is the signal's end and the last segment.
  std::vector<float> chunk(seg);
  int k = 0;
  bool ended = false;
  auto next = [&](MelSegment& s) {
    if (ended) return false;
    size_t got = 0;
    while (got < seg) {
      const size_t r = stream.read(chunk.data() + got, seg - got);
      if (r == 0) break;
      got += r;
    }
    if (got < seg) ended = true;
    s = mel.segment_from_chunk(chunk.data(), got, k++);
    return true;
  };
  const long long start = stream.samples_read();
  NoteSequence seq = impl_->dispatch(next, [&]() { return ended ? k : std::max(estimate, k); }, progress);
  clip_to_duration(seq, double(stream.samples_read() - start) / double(stream.rate_hz()));
  return seq;
}

std::string default_model_dir(const std::string& name) { return shipped_model_dir(name); }

std::string default_generate_model_dir() {
  std::string g = default_model_dir("generate");
  return g.empty() ? default_model_dir() : g;
}

}  // namespace tunescribe
