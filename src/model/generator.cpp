// generator.cpp — sampling music from the decoder, segment after segment.
// See generator.h for the contract. No libtorch here: the model is used
// through model.h's step-wise API.
#include "tunescribe/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "tunescribe/abc_writer.h"
#include "tunescribe/analysis.h"
#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"
#include "tunescribe/log.h"
#include "tunescribe/model.h"

namespace tunescribe {

namespace {

std::string num_str(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

// ---------------------------------------------------------------------------
// Sampling

void SamplingConfig::validate() const {
  if (!(temperature > 0.0 && temperature <= 100.0))
    throw ConfigError("generator: temperature = " + num_str(temperature) + " is out of range (0, 100]");
  if (top_k < 0 || top_k > 1000000)
    throw ConfigError("generator: top_k = " + std::to_string(top_k) + " is out of range (0 = off, 1..1000000)");
  if (!(top_p > 0.0 && top_p <= 1.0))
    throw ConfigError("generator: top_p = " + num_str(top_p) + " is out of range (0, 1]");
}

int sample_from_logits(const std::vector<float>& logits, const SamplingConfig& cfg, std::mt19937_64& rng) {
  std::vector<std::pair<double, int>> cand;
  cand.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) cand.emplace_back(double(logits[i]) / cfg.temperature, int(i));
  const uint64_t draw = rng();  // always consumed: the stream does not depend on the mask
  if (cand.empty()) return -1;
  std::sort(cand.begin(), cand.end(), [](const std::pair<double, int>& a, const std::pair<double, int>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (cfg.top_k > 0 && cand.size() > size_t(cfg.top_k)) cand.resize(size_t(cfg.top_k));
  const double top = cand[0].first;
  std::vector<double> p(cand.size());
  double total = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) {
    p[i] = std::exp(cand[i].first - top);
    total += p[i];
  }
  size_t n = cand.size();
  if (cfg.top_p < 1.0) {
    double cum = 0.0;
    for (size_t i = 0; i < cand.size(); ++i) {
      cum += p[i];
      if (cum >= cfg.top_p * total) {
        n = i + 1;
        break;
      }
    }
    total = 0.0;
    for (size_t i = 0; i < n; ++i) total += p[i];
  }
  const double u = double(draw >> 11) * 0x1.0p-53 * total;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += p[i];
    if (u < cum) return cand[i].second;
  }
  return cand[n - 1].second;
}

void GeneratorConfig::validate() const {
  sampling.validate();
  if (!(seconds > 0.0 && seconds <= 36000.0))
    throw ConfigError("generator: seconds = " + num_str(seconds) + " is out of range (0, 36000]");
  if (instrument < -1 || instrument > 127)
    throw ConfigError("generator: instrument = " + std::to_string(instrument) + " is out of range (-1 or 0..127)");
  if (!(max_note_s > 0.0 && max_note_s <= 3600.0))
    throw ConfigError("generator: max_note_s = " + num_str(max_note_s) + " is out of range (0, 3600]");
  if (max_segment_tokens < 8 || max_segment_tokens > 4096)
    throw ConfigError("generator: max_segment_tokens = " + std::to_string(max_segment_tokens) +
                      " is out of range (8..4096)");
  if (max_programs < 1 || max_programs > 128)
    throw ConfigError("generator: max_programs = " + std::to_string(max_programs) + " is out of range (1..128)");
  if (max_polyphony < 1 || max_polyphony > 1024)
    throw ConfigError("generator: max_polyphony = " + std::to_string(max_polyphony) + " is out of range (1..1024)");
  if (min_pitch < 0 || max_pitch > 127 || min_pitch > max_pitch)
    throw ConfigError("generator: pitch range " + std::to_string(min_pitch) + ".." + std::to_string(max_pitch) +
                      " is not within 0..127 with min <= max");
  if (max_prefix_tokens < 0 || max_prefix_tokens > 2047)
    throw ConfigError("generator: max_prefix_tokens = " + std::to_string(max_prefix_tokens) +
                      " is out of range (0..2047)");
}

// ---------------------------------------------------------------------------
// The grammar: a mirror of the NoteDecoder's state plus per-segment encoder
// conventions, used to mask tokens and to build tie sections.

namespace {

class Grammar {
 public:
  Grammar(const Codec& codec, int vocab_rows, const GeneratorConfig& cfg)
      : codec_(codec), rows_(vocab_rows), cfg_(cfg), vel_bin_(codec.velocity_to_bin(100)) {}

  void begin_segment(int64_t origin, int64_t limit_rel) {
    origin_ = origin;
    limit_rel_ = limit_rel;
    cur_rel_ = 0;
    shift_acc_ = 0;
    last_ = Last::Event;
    prog_emitted_ = -1;
    vel_emitted_ = -1;
    onset_here_ = false;
    drums_here_ = 0;
    in_tie_ = codec_.config().use_ties;
    tied_.clear();
    count_ = 0;
  }

  // The tie section the codec would encode for the active notes, minus notes
  // held longer than max_note_steps (they end at the boundary).
  std::vector<int> tie_section(int64_t max_note_steps) const {
    std::vector<int> ids;
    if (!codec_.config().use_ties) return ids;
    int last_prog = -1;
    for (const auto& [key, onset] : active_) {  // map order = (program, pitch)
      if (origin_ - onset > max_note_steps) continue;
      const int program = key / 128, pitch = key % 128;
      if (!codec_.config().flat_programs() && program != last_prog) {
        ids.push_back(codec_.token_for(EventType::Program, program));
        last_prog = program;
      }
      ids.push_back(codec_.token_for(EventType::Pitch, pitch));
    }
    ids.push_back(codec_.token_for(EventType::Tie, 0));
    return ids;
  }

  void apply(int id) {
    ++count_;
    DecodedToken d = codec_.decode_id(id);
    if (!d.is_event()) return;
    if (d.type == EventType::Shift) {
      shift_acc_ += d.value;
      if (shift_acc_ != cur_rel_) {
        onset_here_ = false;
        drums_here_ = 0;
      }
      cur_rel_ = shift_acc_;
      last_ = Last::Shift;
      return;
    }
    shift_acc_ = 0;
    switch (d.type) {
      case EventType::Pitch: {
        const int key = program_ * 128 + d.value;
        if (in_tie_) {
          tied_.insert(key);
        } else if (vel_bin_ == 0) {
          active_.erase(key);
        } else {
          active_[key] = origin_ + cur_rel_;
          onset_here_ = true;
          started_ = true;
          programs_used_.insert(program_);
        }
        last_ = Last::Event;
        break;
      }
      case EventType::Drum:
        onset_here_ = true;
        started_ = true;
        ++drums_here_;
        last_ = Last::Event;
        break;
      case EventType::Velocity:
        vel_bin_ = d.value;
        vel_emitted_ = d.value;
        last_ = Last::Velocity;
        break;
      case EventType::Program:
        program_ = d.value;
        programs_used_.insert(d.value);
        prog_emitted_ = d.value;
        last_ = Last::Program;
        break;
      case EventType::Tie:
        for (auto it = active_.begin(); it != active_.end();)
          it = tied_.count(it->first) ? std::next(it) : active_.erase(it);
        in_tie_ = false;
        last_ = Last::Event;
        break;
      default:
        break;
    }
  }

  // Sets logits of tokens the grammar forbids to -inf; with a forced
  // instrument, gives the mass of every program token to that program.
  // `budget_left`: tokens this segment may still take (EOS included).
  void mask(std::vector<float>& lg, int budget_left) const {
    const int n = std::min<int>(int(lg.size()), rows_);
    std::vector<char> ok(lg.size(), 0);
    auto allow_range = [&](EventType t, int lo, int hi) {
      const Codec::Range& r = codec_.range(t);
      lo = std::max(lo, r.min_value);
      hi = std::min(hi, r.max_value);
      for (int v = lo; v <= hi; ++v) {
        int id = r.first_id + (v - r.min_value);
        if (id < n) ok[size_t(id)] = 1;
      }
    };
    const bool eos_ok = last_ == Last::Event;
    if (budget_left <= 1 || in_tie_) {
      // Out of room, or (never for sampled segments) inside a tie section: end here.
      ok[Codec::kEos] = 1;
      apply_mask(lg, ok);
      return;
    }
    // onset_at_start: no time passes (no shift, no EOS) before the first onset.
    const bool waiting_for_first = cfg_.onset_at_start && !started_;
    if (eos_ok && !waiting_for_first) ok[Codec::kEos] = 1;
    // Shifts.
    if (last_ != Last::Shift && budget_left > 2 && !waiting_for_first)
      allow_range(EventType::Shift, int(cur_rel_) + 1, int(limit_rel_));
    const bool forced = cfg_.instrument >= 0;
    const bool program_ok = !forced || program_ == cfg_.instrument;
    // Programs.
    if (!codec_.config().flat_programs() && last_ != Last::Program && last_ != Last::Velocity && budget_left > 2) {
      const bool all_used = int(programs_used_.size()) >= cfg_.max_programs;
      for (int p = 0; p < 128; ++p)
        if (p != prog_emitted_ && (!all_used || programs_used_.count(p))) allow_range(EventType::Program, p, p);
    }
    int active_here = 0;  // sounding notes of the current program
    for (const auto& [key, onset] : active_)
      if (key / 128 == program_) ++active_here;
    const bool any_active_here = active_here > 0;
    const bool mono_blocked = (cfg_.monophonic && !active_.empty()) || active_here >= cfg_.max_polyphony;
    // Velocities.
    if (last_ != Last::Velocity && program_ok && budget_left > 2) {
      if (vel_emitted_ != 0 && any_active_here && !onset_here_) allow_range(EventType::Velocity, 0, 0);
      if (!mono_blocked)
        for (int b = 1; b <= codec_.num_velocity_bins(); ++b)
          if (b != vel_emitted_) allow_range(EventType::Velocity, b, b);
    }
    // Pitches and drums (a velocity must have been written in this segment).
    if (vel_emitted_ >= 0 && program_ok) {
      if (vel_bin_ == 0) {
        if (!onset_here_)
          for (const auto& [key, onset] : active_)
            if (key / 128 == program_) allow_range(EventType::Pitch, key % 128, key % 128);
      } else if (!mono_blocked) {
        for (int p = cfg_.min_pitch; p <= cfg_.max_pitch; ++p)
          if (!active_.count(program_ * 128 + p)) allow_range(EventType::Pitch, p, p);
      }
      if (vel_bin_ > 0 && !forced && !cfg_.monophonic && last_ != Last::Program && drums_here_ < cfg_.max_polyphony)
        allow_range(EventType::Drum, 0, 127);
    }
    if (forced && !codec_.config().flat_programs()) {
      // Every program token's probability goes to the chosen program.
      const Codec::Range& r = codec_.range(EventType::Program);
      double m = -std::numeric_limits<double>::infinity();
      for (int id = r.first_id; id <= r.last_id() && id < n; ++id) m = std::max(m, double(lg[size_t(id)]));
      const int target = r.first_id + cfg_.instrument - r.min_value;
      bool any_ok = false;
      for (int id = r.first_id; id <= r.last_id() && id < n; ++id) any_ok = any_ok || ok[size_t(id)];
      if (std::isfinite(m) && target < n) {
        double s = 0;
        for (int id = r.first_id; id <= r.last_id() && id < n; ++id) s += std::exp(double(lg[size_t(id)]) - m);
        for (int id = r.first_id; id <= r.last_id() && id < n; ++id) ok[size_t(id)] = 0;
        lg[size_t(target)] = float(m + std::log(s));
        ok[size_t(target)] = (any_ok && cfg_.instrument != prog_emitted_) ? 1 : 0;
        // When the current program is not the chosen one, a program token is the
        // only way to play: keep it available even if the model prefers others.
      }
    }
    apply_mask(lg, ok);
  }

  const std::map<int, int64_t>& active() const { return active_; }
  int count() const { return count_; }

 private:
  enum class Last { Event, Shift, Program, Velocity };
  static void apply_mask(std::vector<float>& lg, const std::vector<char>& ok) {
    for (size_t i = 0; i < lg.size(); ++i)
      if (!ok[i]) lg[i] = kNegInf;
  }

  const Codec& codec_;
  int rows_;
  const GeneratorConfig& cfg_;
  // persistent (mirrors NoteDecoder)
  std::map<int, int64_t> active_;  // program*128+pitch -> onset step
  int program_ = 0;
  int vel_bin_;
  // per segment
  int64_t origin_ = 0, limit_rel_ = 0, cur_rel_ = 0, shift_acc_ = 0;
  Last last_ = Last::Event;
  int prog_emitted_ = -1, vel_emitted_ = -1;
  bool onset_here_ = false, in_tie_ = false;
  std::set<int> tied_;
  std::set<int> programs_used_;
  int drums_here_ = 0;  // drum hits in the current step
  int count_ = 0;
  bool started_ = false;  // an onset (pitch or drum) has been applied
};

}  // namespace

// ---------------------------------------------------------------------------
// Generator

struct Generator::Impl {
  const Model* model = nullptr;
  LogMelConfig mel_cfg;
  std::unique_ptr<Codec> codec;
  int prefix_end = 0;
  double segment_s = 2.048;
};

Generator::Generator(const Model& model) : impl_(std::make_unique<Impl>()) {
  impl_->model = &model;
  const std::string label = model.dir().empty() ? std::string("<memory>") : model.dir() + "/config.json";
  CodecConfig cc;
  try {
    impl_->mel_cfg = LogMelConfig::from_json(model.frontend_json());
    impl_->mel_cfg.validate();
    cc = CodecConfig::from_json(model.codec_json());
  } catch (const ConfigError& e) {
    throw ModelError("generator: " + label + ": " + e.what());
  }
  impl_->codec = std::make_unique<Codec>(cc);
  if (impl_->codec->embedding_rows() != model.config().vocab_size)
    throw ModelError("generator: " + label + ": model.vocab_size = " + std::to_string(model.config().vocab_size) +
                     " does not match the codec's " + std::to_string(impl_->codec->embedding_rows()) + " rows");
  impl_->prefix_end = impl_->codec->first_extra_id();
  const nlohmann::json& raw = model.raw_config();
  if (raw.contains("training") && raw["training"].is_object() && raw["training"].contains("prefix_end_id") &&
      raw["training"]["prefix_end_id"].is_number_integer()) {
    int id = raw["training"]["prefix_end_id"].get<int>();
    if (id < 3 || id >= model.config().vocab_size)
      throw ModelError("generator: " + label + ": training.prefix_end_id = " + std::to_string(id) +
                       " is outside the vocabulary");
    impl_->prefix_end = id;
  }
  impl_->segment_s = impl_->mel_cfg.segment_frames / impl_->mel_cfg.frames_per_second();
}

Generator::~Generator() = default;

double Generator::segment_seconds() const { return impl_->segment_s; }
int Generator::prefix_end_id() const { return impl_->prefix_end; }
int Generator::sample_rate_hz() const { return impl_->mel_cfg.sample_rate_hz; }
const Codec& Generator::codec() const { return *impl_->codec; }

namespace {

// The decoded notes, notes still sounding at the end lasting until the end (end_s).
NoteSequence finish_notes(NoteDecoder& dec, const Grammar& gram, const Codec& codec, double end_s) {
  // Notes still sounding at the end last until the end.
  std::set<std::tuple<int64_t, int, int>> dangling;
  for (const auto& [key, onset] : gram.active()) dangling.insert({onset, key % 128, key / 128});
  NoteSequence seq = dec.finish();
  std::vector<Note> kept;
  for (Note n : seq.notes) {
    if (!n.is_drum && dangling.count({codec.quantize_step(n.onset_s), n.pitch, n.program}))
      n.offset_s = std::max(n.offset_s, end_s);
    if (n.onset_s >= end_s - 1e-9) continue;
    n.offset_s = std::min(n.offset_s, end_s);
    if (n.offset_s > n.onset_s) kept.push_back(n);
  }
  NoteSequence out;
  out.notes = std::move(kept);
  out.duration_s = end_s;
  out.sort();
  return out;
}

// Samples a segment's tokens from the decoder: conditioned on the audio segment's encoding, or
// on the null memory with the previous segment's tokens as a prefix.
struct SegmentSampler {
  const Model& model;
  const GeneratorConfig& cfg;
  const Audio* audio;
  LogMel* logmel;
  const EncoderOutput& null_mem;
  int prefix_end;
  int segment_frames;
  // Samples segment k's tokens after `forced` into *seg (EOS last); returns the seconds spent
  // in the model.
  double sample(int k, const std::vector<int>& forced, const std::vector<int>& prev, Grammar& gram,
                std::mt19937_64& rng, std::vector<int>* seg_out, GenerationResult* res_out) const;
};

double SegmentSampler::sample(int k, const std::vector<int>& forced, const std::vector<int>& prev, Grammar& gram,
                              std::mt19937_64& rng, std::vector<int>* seg_out, GenerationResult* res_out) const {
  const int max_pos = model.config().max_positions;
  const int rows = model.config().vocab_size;
  std::vector<int>& seg = *seg_out;
  GenerationResult& res = *res_out;
  double model_s = 0.0;
  // Decoder input: BOS [prefix PREFIX_END] forced...
  std::vector<int> fed{Codec::kBos};
  EncoderOutput enc;
  if (audio) {
    MelSegment ms = logmel->segment(audio->samples.data(), audio->samples.size(), k);
    auto t0 = std::chrono::steady_clock::now();
    enc = model.encode(ms.data.data(), 1, segment_frames, 1);
    model_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    enc = null_mem;
    if (int(prev.size()) <= cfg.max_prefix_tokens) fed.insert(fed.end(), prev.begin(), prev.end());
    fed.push_back(prefix_end);
  }
  fed.insert(fed.end(), forced.begin(), forced.end());
  if (int(fed.size()) >= max_pos - 1) {  // no room: drop the prefix
    fed.assign(1, Codec::kBos);
    if (!audio) fed.push_back(prefix_end);
    fed.insert(fed.end(), forced.begin(), forced.end());
  }
  const int budget = std::max(1, std::min(cfg.max_segment_tokens - int(forced.size()), max_pos - int(fed.size())));
  auto t0 = std::chrono::steady_clock::now();
  DecoderState st = model.start_decoding(enc, int(fed.size()) + budget);
  std::vector<float> logits;
  for (int id : fed) logits = model.step(st, {id});
  res.decoder_steps += int64_t(fed.size());
  int used = 0;
  while (true) {
    logits.resize(size_t(rows), kNegInf);
    gram.mask(logits, budget - used);
    int id = sample_from_logits(logits, cfg.sampling, rng);
    if (id < 0) id = Codec::kEos;
    ++used;
    ++res.tokens_sampled;
    seg.push_back(id);
    if (id == Codec::kEos) break;
    gram.apply(id);
    logits = model.step(st, {id});
    ++res.decoder_steps;
  }
  model_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return model_s;
}

}  // namespace

GenerationResult Generator::generate(const GeneratorConfig& cfg, const NoteSequence* prompt,
                                     const Audio* audio) const {
  cfg.validate();
  const Model& model = *impl_->model;
  const Codec& codec = *impl_->codec;
  const bool have_prompt = prompt && !prompt->notes.empty();
  if (have_prompt && audio)
    throw ConfigError("generator: a prompt and an audio recording cannot be used together");
  if (!audio && !model.has_null_memory())
    throw ModelError("generator: model " + model.name() +
                     " has no null memory (target/decoder/null_memory): it cannot generate without audio");
  if (audio && audio->rate_hz != impl_->mel_cfg.sample_rate_hz)
    throw ConfigError("generator: audio at " + std::to_string(audio->rate_hz) + " Hz, the model expects " +
                      std::to_string(impl_->mel_cfg.sample_rate_hz) + " Hz");
  const double seg_s = impl_->segment_s;
  const int rows = model.config().vocab_size;

  GenerationResult res;
  // Prompt segments.
  std::vector<EncodedSegment> prompt_segs;
  int n_prompt = 0;
  if (have_prompt) {
    res.prompt_s = prompt->end_time();
    n_prompt = std::max(1, int(std::ceil(res.prompt_s / seg_s - 1e-9)));
    std::vector<double> starts;
    for (int k = 0; k < n_prompt; ++k) starts.push_back(k * seg_s);
    prompt_segs = encode_file(codec, *prompt, starts, -1.0, cfg.max_segment_tokens);
    for (const auto& s : prompt_segs)
      if (s.truncated) log_warn("generate", "a prompt segment was cut to " + std::to_string(cfg.max_segment_tokens) + " tokens");
  }
  // Audio segments.
  std::unique_ptr<LogMel> logmel;
  int n_audio = 0;
  double end_s = res.prompt_s + cfg.seconds;
  if (audio) {
    logmel = std::make_unique<LogMel>(impl_->mel_cfg);
    n_audio = logmel->num_segments(audio->samples.size());
    end_s = std::min(cfg.seconds, audio->duration_s());
    n_audio = std::min(n_audio, std::max(1, int(std::ceil(end_s / seg_s - 1e-9))));
  }
  res.seconds = end_s;
  const int64_t end_step = codec.quantize_step(end_s);
  int n_seg = audio ? n_audio : std::max(n_prompt, int(std::ceil(end_s / seg_s - 1e-9)));
  n_seg = std::max(n_seg, 1);

  Grammar gram(codec, rows, cfg);
  NoteDecoder dec(codec);
  std::mt19937_64 rng(cfg.seed);
  const int64_t max_note_steps = codec.quantize_step(cfg.max_note_s);
  EncoderOutput null_mem;
  if (!audio) null_mem = model.null_memory(1);
  std::vector<int> prev;  // previous segment's tokens without EOS
  double model_s = 0.0;
  const SegmentSampler sampler{model, cfg, audio, logmel.get(), null_mem, impl_->prefix_end,
                               impl_->mel_cfg.segment_frames};

  for (int k = 0; k < n_seg; ++k) {
    const int64_t origin = codec.segment_origin_step(k * seg_s);
    const int64_t next_origin = codec.segment_origin_step((k + 1) * seg_s);
    const int64_t limit_rel = std::min(next_origin, end_step) - origin - 1;
    gram.begin_segment(origin, limit_rel);
    std::vector<int> forced;
    bool sample = true;
    if (k < n_prompt) {
      forced = prompt_segs[size_t(k)].ids;
      if (k < n_prompt - 1) sample = false;
      else if (!forced.empty() && forced.back() == Codec::kEos) forced.pop_back();
    } else {
      forced = gram.tie_section(max_note_steps);
    }
    std::vector<int> seg;
    for (int id : forced) {
      gram.apply(id);
      seg.push_back(id);
    }
    res.tokens_forced += int64_t(forced.size());
    if (sample) model_s += sampler.sample(k, forced, prev, gram, rng, &seg, &res);
    if (seg.empty() || seg.back() != Codec::kEos) seg.push_back(Codec::kEos);
    dec.add_segment_steps(seg, origin, next_origin);
    prev.assign(seg.begin(), seg.end() - 1);
    res.segment_tokens.push_back(seg);
    res.segment_starts_s.push_back(codec.step_to_seconds(origin));
  }
  res.invalid_tokens = dec.invalid_tokens();
  if (res.invalid_tokens > 0)
    log_warn("generate", std::to_string(res.invalid_tokens) + " tokens were rejected by the note decoder");
  res.notes = finish_notes(dec, gram, codec, end_s);
  res.decode_s = model_s;
  return res;
}

// ---------------------------------------------------------------------------
// Meter, bars, keys

void parse_meter_fraction(const std::string& meter, int* numerator, int* denominator) {
  if (meter.empty()) throw ConfigError("generator: meter = \"" + meter + "\" is not a meter (n/d)");
  Meter m;
  if (!parse_meter(meter, &m))
    throw ConfigError("generator: meter = \"" + meter + "\" is not a meter (e.g. 4/4, 3/4, 6/8, C, C|)");
  *numerator = m.num;
  *denominator = m.den;
}

double bars_to_seconds(int bars, const std::string& meter, double bpm) {
  if (bars < 1 || bars > 100000)
    throw ConfigError("generator: bars = " + std::to_string(bars) + " is out of range (1..100000)");
  if (!(bpm >= 20.0 && bpm <= 400.0))
    throw ConfigError("generator: tempo = " + num_str(bpm) + " is out of range (20..400 quarter notes per minute)");
  int n = 4, d = 4;
  parse_meter_fraction(meter, &n, &d);
  return bars * (4.0 * n / d) * 60.0 / bpm;
}

KeyName parse_key_name(const std::string& key) {
  auto bad = [&]() -> ConfigError {
    return ConfigError("generator: key = \"" + key +
                       "\" is not a key (tonic A-G, optional # or b, optional mode: m, min, maj, dor, phr, lyd, "
                       "mix, aeo, loc; e.g. G, Em, Bb, F#m, Ddor)");
  };
  size_t i = 0;
  int tonic_q = 0;
  if (!parse_tonic(key, &i, &tonic_q)) throw bad();
  std::string mode;
  for (; i < key.size(); ++i) {
    if (key[i] == ' ') continue;
    mode += char(std::tolower(static_cast<unsigned char>(key[i])));
  }
  // The mode is "m" or a prefix (3 letters at least) of a full mode name.
  static const char* const kModeNames[] = {"major", "ionian", "minor", "aeolian", "dorian",
                                            "phrygian", "lydian", "mixolydian", "locrian"};
  bool named = mode.empty() || mode == "m";
  for (const char* name : kModeNames)
    named = named || (mode.size() >= 3 && std::string(name).compare(0, mode.size(), mode) == 0);
  if (!named) throw bad();
  const int fifths = tonic_q + mode_fifths_offset(mode.substr(0, std::min<size_t>(3, mode.size())));
  if (fifths < -7 || fifths > 7)
    throw ConfigError("generator: key = \"" + key + "\" needs more than 7 sharps or flats");
  Key parsed;
  if (!parse_key(key, &parsed)) throw bad();  // the writer spells the output with it
  KeyName k;
  k.fifths = parsed.fifths;
  k.minor = parsed.minor;
  k.tonic_pc = parsed.tonic_pc();
  return k;
}

int transpose_to_key(NoteSequence& seq, const std::string& key, std::string* estimated) {
  const KeyName target = parse_key_name(key);
  bool any = false;
  for (const Note& n : seq.notes) any = any || !n.is_drum;
  if (!any) {
    if (estimated) estimated->clear();
    return 0;
  }
  // The key the ABC writer estimates for these notes (its note filter and key profile).
  const AbcWriterConfig writer_defaults;
  const KeyEstimate est =
      estimate_key(prepare_notes(seq.notes, writer_defaults.min_note_s), writer_defaults.key_profile);
  if (estimated) *estimated = est.key.text();
  // Major tonic pitch class of each signature: 7·fifths mod 12.
  int d = ((7 * (target.fifths - est.key.fifths)) % 12 + 12) % 12;
  if (d > 5) d -= 12;  // -6..5
  if (d == 0) return 0;
  for (Note& n : seq.notes) {
    if (n.is_drum) continue;
    int p = n.pitch + d;
    while (p > 127) p -= 12;
    while (p < 0) p += 12;
    n.pitch = p;
  }
  seq.sort();
  return d;
}

double in_key_ratio(const NoteSequence& seq, int fifths) {
  static const int major[7] = {0, 2, 4, 5, 7, 9, 11};
  const int tonic = ((7 * fifths) % 12 + 12) % 12;
  bool in[12] = {false};
  for (int s : major) in[(tonic + s) % 12] = true;
  double total = 0, good = 0;
  for (const Note& n : seq.notes) {
    if (n.is_drum) continue;
    double w = std::max(0.0, n.duration_s());
    total += w;
    if (in[n.pitch % 12]) good += w;
  }
  return total > 0 ? good / total : 1.0;
}

}  // namespace tunescribe
