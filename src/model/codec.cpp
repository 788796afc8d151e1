// codec.cpp — MT3 event vocabulary, target encoding and note decoding
// (specs/mt3.md §2 and §4.2–4.3). See codec.h for the contract.
//
// Notes on fidelity to magenta/mt3:
//  * Encoding mirrors note_sequence_to_onsets_and_offsets_and_programs +
//    encode_and_index_events + extract_target_sequence_with_indices +
//    run_length_encode_shifts + remove_redundant_state_changes: events of
//    steps [s0, s1) with s0 = the segment origin; the state (tie section) is
//    the set of notes active just before the events of step s0 are applied.
//  * Events are sorted by quantised step, then offsets before non-drum onsets
//    before drum onsets, each by (program, pitch). MT3 sorts by the float time
//    before rounding, which differs only when events of the same 10 ms step
//    are less than 10 ms apart; our order is the one that round-trips.
//  * Decoding mirrors run_length_encoding.decode_events and
//    note_sequences.decode_note_event / flush_note_decoding_state, in integer
//    steps.
#include "tunescribe/codec.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "tunescribe/errors.h"
#include "util/json_fields.h"

namespace tunescribe {

namespace {

const char* const kEventTypeNames[kNumEventTypes] = {"shift", "pitch", "velocity", "tie", "program", "drum"};

[[noreturn]] void config_error(const std::string& field, const std::string& value, const std::string& range) {
  throw ConfigError("codec: " + field + " = " + value + " is out of range (" + range + ")");
}

int note_key(int program, int pitch) { return program * 128 + pitch; }

}  // namespace

const char* event_type_name(EventType t) {
  int i = static_cast<int>(t);
  return (i >= 0 && i < kNumEventTypes) ? kEventTypeNames[i] : "unknown";
}

// ---------------------------------------------------------------------------
// CodecConfig

void CodecConfig::validate() const {
  if (steps_per_second < 1 || steps_per_second > 1000)
    config_error("steps_per_second", std::to_string(steps_per_second), "1..1000");
  if (max_shift_seconds < 1 || max_shift_seconds > 100)
    config_error("max_shift_seconds", std::to_string(max_shift_seconds), "1..100");
  if (num_velocity_bins < 1 || num_velocity_bins > 127)
    config_error("num_velocity_bins", std::to_string(num_velocity_bins), "1..127");
  if (program_granularity != "full" && program_granularity != "flat")
    config_error("program_granularity", "\"" + program_granularity + "\"", "\"full\" or \"flat\"");
  if (num_extra_ids < 0 || num_extra_ids > 100000)
    config_error("num_extra_ids", std::to_string(num_extra_ids), "0..100000");
}

nlohmann::json CodecConfig::to_json() const {
  return nlohmann::json{{"steps_per_second", steps_per_second},
                        {"max_shift_seconds", max_shift_seconds},
                        {"num_velocity_bins", num_velocity_bins},
                        {"use_ties", use_ties},
                        {"program_granularity", program_granularity},
                        {"num_extra_ids", num_extra_ids}};
}

CodecConfig CodecConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("codec: the codec section must be a JSON object");
  static const char* const kKeys[] = {"steps_per_second", "max_shift_seconds", "num_velocity_bins",
                                      "use_ties",         "program_granularity", "num_extra_ids"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(std::begin(kKeys), std::end(kKeys), it.key()) != std::end(kKeys)) continue;
    std::string known;
    for (const char* k : kKeys) known += std::string(known.empty() ? "" : ", ") + k;
    throw ConfigError("codec: unknown key \"" + it.key() + "\" (known: " + known + ")");
  }
  CodecConfig c;  // missing keys keep their defaults
  const std::string where = "codec: ";
  json_fields::read_int(j, "steps_per_second", where, c.steps_per_second);
  json_fields::read_int(j, "max_shift_seconds", where, c.max_shift_seconds);
  json_fields::read_int(j, "num_velocity_bins", where, c.num_velocity_bins);
  json_fields::read_bool(j, "use_ties", where, c.use_ties);
  json_fields::read_string(j, "program_granularity", where, c.program_granularity);
  json_fields::read_int(j, "num_extra_ids", where, c.num_extra_ids);
  c.validate();
  return c;
}

CodecConfig CodecConfig::mt3() { return CodecConfig(); }

CodecConfig CodecConfig::ismir2021() {
  CodecConfig c;
  c.num_velocity_bins = 127;
  c.use_ties = false;
  c.program_granularity = "flat";
  return c;
}

// ---------------------------------------------------------------------------
// Codec

Codec::Codec(const CodecConfig& config) : config_(config) {
  config_.validate();
  max_shift_steps_ = config_.steps_per_second * config_.max_shift_seconds;
  const int max_values[kNumEventTypes] = {max_shift_steps_, 127, config_.num_velocity_bins, 0, 127, 127};
  int offset = 0;
  for (int t = 0; t < kNumEventTypes; ++t) {
    ranges_[t].min_value = 0;
    ranges_[t].max_value = max_values[t];
    ranges_[t].first_id = kNumSpecialIds + offset;
    offset += ranges_[t].size();
  }
  num_classes_ = offset;
}

int Codec::token_for(EventType t, int value) const {
  const Range& r = range(t);
  if (value < r.min_value || value > r.max_value)
    throw InputError(std::string("codec: ") + event_type_name(t) + " value " + std::to_string(value) +
                     " is outside " + std::to_string(r.min_value) + ".." + std::to_string(r.max_value));
  return r.first_id + value - r.min_value;
}

DecodedToken Codec::decode_id(int id) const {
  DecodedToken d;
  if (id == kEos) {
    d.kind = DecodedToken::Kind::Eos;
    return d;
  }
  if (id < kNumSpecialIds || id >= first_extra_id()) return d;  // Invalid
  for (int t = 0; t < kNumEventTypes; ++t) {
    if (ranges_[t].contains(id)) {
      d.kind = DecodedToken::Kind::Event;
      d.type = static_cast<EventType>(t);
      d.value = ranges_[t].min_value + (id - ranges_[t].first_id);
      return d;
    }
  }
  return d;  // unreachable: the ranges tile [3, first_extra_id)
}

std::string Codec::token_to_string(int id) const {
  if (id == kPad) return "PAD";
  if (id == kEos) return "EOS";
  if (id == kUnk) return "UNK";
  if (id >= first_extra_id() && id < vocab_size()) return "extra " + std::to_string(id - first_extra_id());
  DecodedToken d = decode_id(id);
  if (!d.is_event()) return "invalid " + std::to_string(id);
  if (d.type == EventType::Tie) return "tie";
  return std::string(event_type_name(d.type)) + " " + std::to_string(d.value);
}

std::string Codec::tokens_to_string(const std::vector<int>& ids) const {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += token_to_string(ids[i]);
  }
  return s;
}

int Codec::velocity_to_bin(int velocity) const {
  int v = std::clamp(velocity, 0, 127);
  if (v == 0) return 0;
  const int n = config_.num_velocity_bins;
  return (n * v + 126) / 127;  // ceil(n·v/127)
}

int Codec::bin_to_velocity(int bin) const {
  const int n = config_.num_velocity_bins;
  int b = std::clamp(bin, 0, n);
  return 127 * b / n;  // int(127·b/n)
}

int64_t Codec::quantize_step(double t_s) const {
  // std::nearbyint in the default rounding mode = round half to even (Python round()).
  return static_cast<int64_t>(std::nearbyint(t_s * config_.steps_per_second));
}

int64_t Codec::segment_origin_step(double t0_s) const {
  return static_cast<int64_t>(std::floor(t0_s * config_.steps_per_second + 1e-6));
}

// ---------------------------------------------------------------------------
// Canonical notes

std::vector<Note> canonicalize_notes(const Codec& codec, const std::vector<Note>& notes,
                                     CanonicalizeStats* stats_out) {
  CanonicalizeStats stats;
  struct Q {
    int64_t on, off;
    int pitch, velocity, program;
    bool drum;
  };
  std::vector<Q> tonal, drums;
  const bool flat = codec.config().flat_programs();
  const int64_t kMaxStep = int64_t(1) << 50;
  for (const Note& n : notes) {
    if (!std::isfinite(n.onset_s) || !std::isfinite(n.offset_s) || n.pitch < 0 || n.pitch > 127 ||
        (!n.is_drum && (n.program < 0 || n.program > 127))) {
      ++stats.dropped;
      continue;
    }
    Q q;
    q.on = std::clamp<int64_t>(codec.quantize_step(std::max(0.0, n.onset_s)), 0, kMaxStep);
    q.off = std::clamp<int64_t>(codec.quantize_step(std::max(0.0, n.offset_s)), 0, kMaxStep);
    q.pitch = n.pitch;
    q.velocity = codec.bin_to_velocity(codec.velocity_to_bin(std::clamp(n.velocity, 1, 127)));
    q.drum = n.is_drum;
    if (n.is_drum) {
      q.program = 0;
      q.off = q.on + 1;
      drums.push_back(q);
      continue;
    }
    q.program = flat ? 0 : n.program;
    if (q.off <= q.on) {
      q.off = q.on + 1;
      ++stats.extended;
    }
    tonal.push_back(q);
  }
  // Same key: sort by onset, longest first; drop later duplicates of an onset
  // step, cut each note at the next onset of its key.
  std::sort(tonal.begin(), tonal.end(), [](const Q& a, const Q& b) {
    if (a.program != b.program) return a.program < b.program;
    if (a.pitch != b.pitch) return a.pitch < b.pitch;
    if (a.on != b.on) return a.on < b.on;
    if (a.off != b.off) return a.off > b.off;
    return a.velocity > b.velocity;
  });
  std::vector<Q> kept;
  kept.reserve(tonal.size());
  for (const Q& q : tonal) {
    if (!kept.empty() && kept.back().program == q.program && kept.back().pitch == q.pitch) {
      Q& prev = kept.back();
      if (prev.on == q.on) {
        ++stats.merged;
        continue;
      }
      if (prev.off > q.on) {
        prev.off = q.on;
        ++stats.trimmed;
      }
    }
    kept.push_back(q);
  }
  NoteSequence seq;
  seq.notes.reserve(kept.size() + drums.size());
  const double sps = codec.steps_per_second();
  for (const auto* v : {&kept, &drums})
    for (const Q& q : *v) {
      Note n;
      n.onset_s = double(q.on) / sps;
      n.offset_s = double(q.off) / sps;
      n.pitch = q.pitch;
      n.velocity = q.velocity;
      n.program = q.program;
      n.is_drum = q.drum;
      seq.notes.push_back(n);
    }
  seq.sort();
  if (stats_out) *stats_out = stats;
  return std::move(seq.notes);
}

// ---------------------------------------------------------------------------
// TargetEncoder

TargetEncoder::TargetEncoder(const Codec& codec, const std::vector<Note>& notes)
    : codec_(codec) {
  canonical_ = canonicalize_notes(codec_, notes, &stats_);
  const double sps = codec_.steps_per_second();
  events_.reserve(canonical_.size() * 2);
  for (const Note& n : canonical_) {
    // Canonical times are exact multiples of 1/sps: llround recovers the step.
    const int64_t on = std::llround(n.onset_s * sps);
    const int64_t off = std::llround(n.offset_s * sps);
    const int bin = codec_.velocity_to_bin(n.velocity);
    if (n.is_drum) {
      events_.push_back({on, 2, 0, n.pitch, bin});
    } else {
      events_.push_back({off, 0, n.program, n.pitch, 0});
      events_.push_back({on, 1, n.program, n.pitch, bin});
      tonal_.push_back({on, off, n.program, n.pitch});
      max_duration_steps_ = std::max(max_duration_steps_, off - on);
    }
  }
  std::sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
    if (a.step != b.step) return a.step < b.step;
    if (a.kind != b.kind) return a.kind < b.kind;
    if (a.program != b.program) return a.program < b.program;
    if (a.pitch != b.pitch) return a.pitch < b.pitch;
    return a.velocity_bin < b.velocity_bin;
  });
  std::sort(tonal_.begin(), tonal_.end(), [](const Span& a, const Span& b) { return a.onset_step < b.onset_step; });
}

EncodedSegment TargetEncoder::encode_segment_steps(int64_t start_step, int64_t end_step, int max_tokens) const {
  if (max_tokens < 1)
    throw ConfigError("codec: max_tokens = " + std::to_string(max_tokens) + " is out of range (>= 1)");
  EncodedSegment seg;
  seg.start_step = start_step;
  seg.start_s = codec_.step_to_seconds(start_step);
  std::vector<int>& ids = seg.ids;
  const bool flat = codec_.config().flat_programs();
  int last_program = -1, last_velocity_bin = -1;  // per-segment state: first ones always emitted
  auto emit_program = [&](int program) {
    if (flat || program == last_program) return;
    ids.push_back(codec_.token_for(EventType::Program, program));
    last_program = program;
  };
  auto emit_velocity = [&](int bin) {
    if (bin == last_velocity_bin) return;
    ids.push_back(codec_.token_for(EventType::Velocity, bin));
    last_velocity_bin = bin;
  };

  if (codec_.config().use_ties) {
    // Notes active just before the events of start_step: onset < s0 <= offset.
    std::vector<std::pair<int, int>> tied;  // (program, pitch)
    auto by_onset = [](const Span& a, int64_t step) { return a.onset_step < step; };
    auto first = std::lower_bound(tonal_.begin(), tonal_.end(), start_step - max_duration_steps_, by_onset);
    auto last = std::lower_bound(first, tonal_.end(), start_step, by_onset);
    for (auto it = first; it != last; ++it)
      if (it->offset_step >= start_step) tied.emplace_back(it->program, it->pitch);
    std::sort(tied.begin(), tied.end());
    for (const auto& [program, pitch] : tied) {
      emit_program(program);
      ids.push_back(codec_.token_for(EventType::Pitch, pitch));
    }
    ids.push_back(codec_.token_for(EventType::Tie, 0));
  }

  auto it = std::lower_bound(events_.begin(), events_.end(), start_step,
                             [](const Event& e, int64_t s) { return e.step < s; });
  int64_t emitted_step = start_step;
  const int max_shift = codec_.max_shift_steps();
  const size_t limit = size_t(max_tokens) - 1;  // room for EOS
  for (; it != events_.end(); ++it) {
    if (end_step >= 0 && it->step >= end_step) break;
    if (ids.size() > limit) break;  // already too long: stop early, truncated below
    if (it->step != emitted_step) {
      // Absolute shift from the segment start, in pieces of at most max_shift.
      int64_t d = it->step - start_step;
      while (d > 0) {
        int piece = int(std::min<int64_t>(d, max_shift));
        ids.push_back(codec_.token_for(EventType::Shift, piece));
        d -= piece;
      }
      emitted_step = it->step;
    }
    if (it->kind == 2) {
      emit_velocity(it->velocity_bin);
      ids.push_back(codec_.token_for(EventType::Drum, it->pitch));
    } else {
      emit_program(it->program);
      emit_velocity(it->kind == 0 ? 0 : it->velocity_bin);
      ids.push_back(codec_.token_for(EventType::Pitch, it->pitch));
    }
  }
  if (ids.size() > limit) {
    ids.resize(limit);
    seg.truncated = true;
  }
  ids.push_back(Codec::kEos);
  return seg;
}

EncodedSegment TargetEncoder::encode_segment(double start_s, double end_s, int max_tokens) const {
  int64_t s0 = codec_.segment_origin_step(start_s);
  int64_t s1 = end_s < 0 ? -1 : codec_.segment_origin_step(end_s);
  return encode_segment_steps(s0, s1, max_tokens);
}

EncodedSegment encode_segment(const Codec& codec, const std::vector<Note>& notes, double start_s, double end_s,
                              int max_tokens) {
  return TargetEncoder(codec, notes).encode_segment(start_s, end_s, max_tokens);
}

std::vector<EncodedSegment> encode_file(const Codec& codec, const NoteSequence& seq,
                                        const std::vector<double>& segment_starts_s, double end_s,
                                        int max_tokens) {
  for (size_t k = 1; k < segment_starts_s.size(); ++k)
    if (!(segment_starts_s[k] >= segment_starts_s[k - 1]))
      throw InputError("codec: " + (seq.source.empty() ? std::string("notes") : seq.source) +
                       ": segment starts must be non-decreasing (segment " + std::to_string(k) + ")");
  TargetEncoder enc(codec, seq.notes);
  std::vector<EncodedSegment> out;
  out.reserve(segment_starts_s.size());
  for (size_t k = 0; k < segment_starts_s.size(); ++k) {
    double end = k + 1 < segment_starts_s.size() ? segment_starts_s[k + 1] : end_s;
    out.push_back(enc.encode_segment(segment_starts_s[k], end, max_tokens));
  }
  return out;
}

// ---------------------------------------------------------------------------
// NoteDecoder

NoteDecoder::NoteDecoder(const Codec& codec) : codec_(codec) {}

void NoteDecoder::clear_state() {
  current_step_ = 0;
  current_velocity_ = 100;
  current_program_ = 0;
  in_tie_section_ = false;
  active_.clear();
  tied_.clear();
  notes_.clear();
}

void NoteDecoder::reset() {
  clear_state();
  invalid_ = dropped_ = segments_ = merged_ = 0;
}

void NoteDecoder::add_note(int64_t onset, int64_t offset, int pitch, int velocity, int program, bool is_drum) {
  offset = std::max(offset, onset + 1);  // MIN_NOTE_DURATION: one step
  Note n;
  n.onset_s = codec_.step_to_seconds(onset);
  n.offset_s = codec_.step_to_seconds(offset);
  n.pitch = pitch;
  n.velocity = velocity;
  n.program = program;
  n.is_drum = is_drum;
  notes_.push_back(n);
}

bool NoteDecoder::apply_event(int64_t step, EventType type, int value) {
  if (step < current_step_) return false;  // backwards in time: nothing applied
  current_step_ = step;
  switch (type) {
    case EventType::Pitch: {
      const int key = note_key(current_program_, value);
      auto it = active_.find(key);
      if (in_tie_section_) {
        if (it == active_.end() && merge_relabelled_ties_) {
          // The same pitch held under another program, not yet declared: continue it.
          for (auto held = active_.begin(); held != active_.end(); ++held)
            if (held->first % 128 == value && !tied_.count(held->first)) {
              Active a = held->second;
              a.out_program = program_of(held->first, a);
              active_.erase(held);
              active_[key] = a;  // re-keyed: the segment's events for (program, pitch) reach it
              tied_.insert(key);
              ++merged_;
              return true;
            }
        }
        if (it == active_.end() || tied_.count(key)) return false;
        tied_.insert(key);
      } else if (current_velocity_ == 0) {
        if (it == active_.end()) return false;  // note-off for an inactive note
        add_note(it->second.onset_step, step, value, it->second.velocity, program_of(key, it->second), false);
        active_.erase(it);
      } else {
        if (it != active_.end()) {  // already sounding: end it and restart
          add_note(it->second.onset_step, step, value, it->second.velocity, program_of(key, it->second), false);
          active_.erase(it);
        }
        active_[key] = Active{step, current_velocity_, -1};
      }
      return true;
    }
    case EventType::Drum:
      if (current_velocity_ == 0) return false;
      add_note(step, step + 1, value, current_velocity_, 0, true);
      return true;
    case EventType::Velocity:
      current_velocity_ = codec_.bin_to_velocity(value);
      return true;
    case EventType::Program:
      current_program_ = value;
      return true;
    case EventType::Tie: {
      if (!in_tie_section_) return false;
      for (auto it = active_.begin(); it != active_.end();) {
        if (!tied_.count(it->first)) {
          add_note(it->second.onset_step, current_step_, it->first % 128, it->second.velocity,
                   program_of(it->first, it->second), false);
          it = active_.erase(it);
        } else {
          ++it;
        }
      }
      in_tie_section_ = false;
      return true;
    }
    case EventType::Shift:
      return false;  // handled by add_segment_steps
  }
  return false;
}

void NoteDecoder::add_segment_steps(const std::vector<int>& ids, int64_t start_step, int64_t max_step) {
  ++segments_;
  if (codec_.config().use_ties) {
    tied_.clear();
    in_tie_section_ = true;
  }
  size_t n = ids.size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == Codec::kEos) {
      n = i;
      break;
    }
  int64_t cur_steps = 0;
  int64_t cur = start_step;
  for (size_t i = 0; i < n; ++i) {
    DecodedToken d = codec_.decode_id(ids[i]);
    if (!d.is_event()) {
      ++invalid_;
      continue;
    }
    if (d.type == EventType::Shift) {
      cur_steps += d.value;
      cur = start_step + cur_steps;
      if (max_step >= 0 && cur > max_step) {
        dropped_ += int(n - i);
        break;
      }
      continue;
    }
    cur_steps = 0;  // absolute semantics: the next shift counts from the segment start again
    if (!apply_event(cur, d.type, d.value)) ++invalid_;
  }
}

void NoteDecoder::add_segment(const std::vector<int>& ids, double start_s, double max_time_s) {
  add_segment_steps(ids, codec_.segment_origin_step(start_s),
                    max_time_s < 0 ? -1 : codec_.segment_origin_step(max_time_s));
}

NoteSequence NoteDecoder::finish() {
  int64_t end = current_step_;
  for (const auto& [key, a] : active_) end = std::max(end, a.onset_step + 1);
  for (const auto& [key, a] : active_) add_note(a.onset_step, end, key % 128, a.velocity, program_of(key, a), false);
  NoteSequence seq;
  seq.notes = std::move(notes_);
  clear_state();  // ready for a new file; the counters stay
  seq.sort();
  for (const Note& n : seq.notes) seq.duration_s = std::max(seq.duration_s, n.offset_s);
  return seq;
}

NoteSequence decode_segments(const Codec& codec, const std::vector<std::vector<int>>& segment_ids,
                             const std::vector<double>& start_s, int* invalid_tokens, int* dropped_tokens) {
  if (segment_ids.size() != start_s.size())
    throw InputError("codec: " + std::to_string(segment_ids.size()) + " token segments but " +
                     std::to_string(start_s.size()) + " start times");
  NoteDecoder dec(codec);
  for (size_t k = 0; k < segment_ids.size(); ++k)
    dec.add_segment(segment_ids[k], start_s[k], k + 1 < start_s.size() ? start_s[k + 1] : -1.0);
  NoteSequence seq = dec.finish();
  if (invalid_tokens) *invalid_tokens = dec.invalid_tokens();
  if (dropped_tokens) *dropped_tokens = dec.dropped_tokens();
  return seq;
}

}  // namespace tunescribe
