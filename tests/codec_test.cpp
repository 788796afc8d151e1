// Tests of the MT3 token codec (specs/mt3.md §2, §4.2–4.3).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <tuple>

#include "test_util.h"
#include "tunescribe/codec.h"
#include "tunescribe/errors.h"
#include "tunescribe/midi.h"

using namespace tunescribe;
namespace fs = std::filesystem;

namespace {

Note make_note(double on, double off, int pitch, int program = 0, bool drum = false, int velocity = 100) {
  Note n;
  n.onset_s = on;
  n.offset_s = off;
  n.pitch = pitch;
  n.program = program;
  n.is_drum = drum;
  n.velocity = velocity;
  return n;
}

using NoteKey = std::tuple<long long, long long, int, int, int, bool>;

// Notes as (onset step, offset step, pitch, program, velocity, drum), sorted.
std::vector<NoteKey> keys(const std::vector<Note>& notes) {
  std::vector<NoteKey> k;
  for (const Note& n : notes)
    k.emplace_back(std::llround(n.onset_s * 100), std::llround(n.offset_s * 100), n.pitch, n.program, n.velocity,
                   n.is_drum);
  std::sort(k.begin(), k.end());
  return k;
}

std::string describe(const NoteKey& k) {
  std::ostringstream s;
  s << "[" << std::get<0>(k) << "," << std::get<1>(k) << "] pitch " << std::get<2>(k) << " prog " << std::get<3>(k)
    << " vel " << std::get<4>(k) << (std::get<5>(k) ? " drum" : "");
  return s.str();
}

// First difference between two note lists, "" when equal.
std::string first_difference(const std::vector<Note>& want, const std::vector<Note>& got) {
  auto a = keys(want), b = keys(got);
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (a[i] != b[i]) return "note " + std::to_string(i) + ": want " + describe(a[i]) + ", got " + describe(b[i]);
  if (a.size() != b.size())
    return "want " + std::to_string(a.size()) + " notes, got " + std::to_string(b.size());
  return "";
}

// Segment origins of the front end's grid: segment k starts at sample
// k·frames·128 of 16 kHz audio, i.e. floor(k·frames·128·100/16000) steps.
std::vector<double> grid_starts(int frames, double end_s) {
  std::vector<double> s;
  for (long long k = 0;; ++k) {
    long long step = k * frames * 128 * 100 / 16000;
    if (k > 0 && step / 100.0 > end_s) break;
    s.push_back(step / 100.0);
  }
  return s;
}

struct RoundTrip {
  std::vector<Note> canonical;
  CanonicalizeStats stats;
  NoteSequence decoded;
  int invalid = 0, dropped = 0;
  int over_limit = 0;  // segments longer than kMaxTargetTokens
  size_t tokens = 0;
};

// encode (no length limit) → decode; the canonical notes are what must come back.
RoundTrip round_trip(const Codec& codec, const std::vector<Note>& notes, const std::vector<double>& starts) {
  RoundTrip r;
  TargetEncoder enc(codec, notes);
  NoteDecoder dec(codec);
  for (size_t k = 0; k < starts.size(); ++k) {
    const double next = k + 1 < starts.size() ? starts[k + 1] : -1.0;
    auto seg = enc.encode_segment(starts[k], next, 1 << 30);
    r.tokens += seg.ids.size();
    r.over_limit += seg.ids.size() > size_t(kMaxTargetTokens);
    dec.add_segment(seg.ids, starts[k], next);
  }
  r.decoded = dec.finish();
  r.invalid = dec.invalid_tokens();
  r.dropped = dec.dropped_tokens();
  r.canonical = enc.canonical_notes();
  r.stats = enc.stats();
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------
// Vocabulary

TEST(CodecVocab, Mt3IdTableMatchesSpec) {
  Codec c(CodecConfig::mt3());
  EXPECT_EQ(c.num_classes(), 1388);
  EXPECT_EQ(c.vocab_size(), 1491);
  EXPECT_EQ(c.embedding_rows(), 1536);
  EXPECT_EQ(c.token_for(EventType::Shift, 0), 3);
  EXPECT_EQ(c.token_for(EventType::Shift, 1000), 1003);
  EXPECT_EQ(c.token_for(EventType::Pitch, 0), 1004);
  EXPECT_EQ(c.token_for(EventType::Pitch, 127), 1131);
  EXPECT_EQ(c.token_for(EventType::Velocity, 0), 1132);
  EXPECT_EQ(c.token_for(EventType::Velocity, 1), 1133);
  EXPECT_EQ(c.token_for(EventType::Tie, 0), 1134);
  EXPECT_EQ(c.token_for(EventType::Program, 0), 1135);
  EXPECT_EQ(c.token_for(EventType::Program, 127), 1262);
  EXPECT_EQ(c.token_for(EventType::Drum, 0), 1263);
  EXPECT_EQ(c.token_for(EventType::Drum, 127), 1390);
  EXPECT_EQ(c.first_extra_id(), 1391);
  EXPECT_EQ(c.vocab_size() - 1, 1490);  // last extra id
  EXPECT_EQ(c.range(EventType::Program).first_id, 1135);
  EXPECT_EQ(c.range(EventType::Program).last_id(), 1262);
  EXPECT_EQ(c.range(EventType::Velocity).size(), 2);
  EXPECT_THROW(c.token_for(EventType::Velocity, 2), InputError);
  EXPECT_THROW(c.token_for(EventType::Shift, 1001), InputError);
  EXPECT_THROW(c.token_for(EventType::Pitch, -1), InputError);
}

TEST(CodecVocab, Ismir2021IdTableMatchesSpec) {
  Codec c(CodecConfig::ismir2021());
  EXPECT_EQ(c.num_classes(), 1514);
  EXPECT_EQ(c.vocab_size(), 1617);
  EXPECT_EQ(c.embedding_rows(), 1664);
  EXPECT_EQ(c.token_for(EventType::Shift, 0), 3);
  EXPECT_EQ(c.token_for(EventType::Pitch, 0), 1004);
  EXPECT_EQ(c.token_for(EventType::Velocity, 0), 1132);
  EXPECT_EQ(c.token_for(EventType::Velocity, 127), 1259);
  EXPECT_EQ(c.token_for(EventType::Tie, 0), 1260);
  EXPECT_EQ(c.token_for(EventType::Program, 0), 1261);
  EXPECT_EQ(c.token_for(EventType::Program, 127), 1388);
  EXPECT_EQ(c.token_for(EventType::Drum, 0), 1389);
  EXPECT_EQ(c.token_for(EventType::Drum, 127), 1516);
  EXPECT_EQ(c.first_extra_id(), 1517);
  EXPECT_EQ(c.vocab_size() - 1, 1616);
}

TEST(CodecVocab, EveryRegularIdDecodesBackToItsEvent) {
  for (auto cfg : {CodecConfig::mt3(), CodecConfig::ismir2021()}) {
    Codec c(cfg);
    int count = 0;
    for (int t = 0; t < kNumEventTypes; ++t) {
      const auto& r = c.range(EventType(t));
      for (int v = r.min_value; v <= r.max_value; ++v) {
        int id = c.token_for(EventType(t), v);
        DecodedToken d = c.decode_id(id);
        ASSERT_TRUE(d.is_event()) << id;
        EXPECT_EQ(int(d.type), t);
        EXPECT_EQ(d.value, v);
        ++count;
      }
    }
    EXPECT_EQ(count, c.num_classes());
  }
}

TEST(CodecVocab, SpecialExtraAndPaddingIdsAreNotEvents) {
  Codec c(CodecConfig::mt3());
  EXPECT_EQ(c.decode_id(1).kind, DecodedToken::Kind::Eos);
  for (int id : {-7, -1, 0, 2, 1391, 1490, 1491, 1535, 1536, 100000})
    EXPECT_EQ(c.decode_id(id).kind, DecodedToken::Kind::Invalid) << id;
  EXPECT_EQ(c.token_to_string(0), "PAD");
  EXPECT_EQ(c.token_to_string(1064), "pitch 60");
  EXPECT_EQ(c.token_to_string(53), "shift 50");
  EXPECT_EQ(c.token_to_string(1134), "tie");
  EXPECT_EQ(c.token_to_string(1392), "extra 1");
}

TEST(CodecVocab, VelocityBins) {
  CodecConfig cfg;
  Codec c1(cfg);
  for (int v = 1; v <= 127; ++v) {
    EXPECT_EQ(c1.velocity_to_bin(v), 1);
    EXPECT_EQ(c1.bin_to_velocity(c1.velocity_to_bin(v)), 127);
  }
  EXPECT_EQ(c1.velocity_to_bin(0), 0);
  EXPECT_EQ(c1.bin_to_velocity(0), 0);
  Codec c127(CodecConfig::ismir2021());
  for (int v = 0; v <= 127; ++v) EXPECT_EQ(c127.bin_to_velocity(c127.velocity_to_bin(v)), v);
  cfg.num_velocity_bins = 4;  // bin = ceil(4v/127); velocity = int(127·bin/4)
  Codec c4(cfg);
  EXPECT_EQ(c4.velocity_to_bin(1), 1);
  EXPECT_EQ(c4.velocity_to_bin(31), 1);   // 124/127
  EXPECT_EQ(c4.velocity_to_bin(32), 2);   // 128/127
  EXPECT_EQ(c4.velocity_to_bin(127), 4);
  EXPECT_EQ(c4.bin_to_velocity(1), 31);   // 31.75
  EXPECT_EQ(c4.bin_to_velocity(2), 63);   // 63.5
  EXPECT_EQ(c4.bin_to_velocity(4), 127);
  EXPECT_EQ(c4.vocab_size(), 1491 + 3);
}

TEST(CodecConfig, JsonRoundTripAndValidation) {
  CodecConfig c = CodecConfig::ismir2021();
  c.num_extra_ids = 7;
  auto j = c.to_json();
  EXPECT_EQ(j["num_velocity_bins"], 127);
  EXPECT_EQ(j["program_granularity"], "flat");
  EXPECT_EQ(j["use_ties"], false);
  CodecConfig back = CodecConfig::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(Codec(back).vocab_size(), 1617 - 100 + 7);

  // Missing keys keep defaults.
  EXPECT_EQ(CodecConfig::from_json(nlohmann::json::object()).to_json(), CodecConfig().to_json());

  auto expect_config_error = [](const nlohmann::json& jj, const std::string& needle) {
    try {
      CodecConfig::from_json(jj);
      ADD_FAILURE() << "expected ConfigError for " << jj.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_config_error({{"num_velocity_bins", 0}}, "num_velocity_bins");
  expect_config_error({{"num_velocity_bins", 128}}, "1..127");
  expect_config_error({{"program_granularity", "midi"}}, "program_granularity");
  expect_config_error({{"steps_per_second", 0}}, "steps_per_second");
  expect_config_error({{"use_ties", 1}}, "use_ties");
  expect_config_error({{"num_extra_ids", 1.5}}, "num_extra_ids");
  expect_config_error({{"velocity_bins", 1}}, "unknown key");
  expect_config_error({{"steps_per_second", 4e9}}, "steps_per_second");
  EXPECT_EQ(CodecConfig::from_json({{"steps_per_second", 50.0}}).steps_per_second, 50);
  expect_config_error(nlohmann::json::array(), "object");
  CodecConfig bad;
  bad.max_shift_seconds = 0;
  EXPECT_THROW(Codec{bad}, ConfigError);
}

TEST(CodecTime, QuantisationAndSegmentOrigins) {
  Codec c;
  EXPECT_EQ(c.quantize_step(0.125), 12);  // round half to even, as Python's round()
  EXPECT_EQ(c.quantize_step(0.375), 38);
  EXPECT_EQ(c.quantize_step(0.1249), 12);
  EXPECT_EQ(c.quantize_step(0.0151), 2);
  // Origins of the mt3 grid (2.048 s segments): floor, including exact multiples.
  EXPECT_EQ(c.segment_origin_step(2.048), 204);
  EXPECT_EQ(c.segment_origin_step(4.096), 409);
  EXPECT_EQ(c.segment_origin_step(15 * 2.048), 3072);
  EXPECT_EQ(c.segment_origin_step(2.04), 204);
  EXPECT_EQ(c.segment_origin_step(0.0), 0);
}

// ---------------------------------------------------------------------------
// Encoding

TEST(CodecEncode, WorkedExampleOfSpec) {
  // mt3: piano C4 held from the previous segment, E4 on and a kick at +0.50 s,
  // C4 off at +1.00 s (segment 1 of the 2.048 s grid, origin 2.04 s).
  Codec c(CodecConfig::mt3());
  std::vector<Note> notes = {make_note(1.00, 3.04, 60), make_note(2.54, 5.00, 64),
                             make_note(2.54, 2.60, 36, 0, true)};
  auto seg = encode_segment(c, notes, 2.048, 4.096);
  EXPECT_EQ(seg.start_step, 204);
  std::vector<int> want = {1135, 1064, 1134, 53, 1133, 1068, 1299, 103, 1132, 1064, 1};
  EXPECT_EQ(seg.ids, want) << c.tokens_to_string(seg.ids);
  EXPECT_FALSE(seg.truncated);
}

TEST(CodecEncode, AbsoluteShiftsAndSplitting) {
  // MT3's run-length test: events after 3 and 6 single steps → shift 3, shift 6.
  Codec c(CodecConfig::mt3());
  std::vector<Note> notes = {make_note(0.03, 0.04, 36, 0, true), make_note(0.06, 0.07, 38, 0, true),
                             make_note(25.0, 25.01, 42, 0, true)};
  auto seg = encode_segment(c, notes, 0.0, -1.0);
  int tie = 1134, vel1 = 1133, eos = 1;
  auto shift = [&](int v) { return c.token_for(EventType::Shift, v); };
  auto drum = [&](int v) { return c.token_for(EventType::Drum, v); };
  std::vector<int> want = {tie, shift(3), vel1, drum(36), shift(6), drum(38),
                           shift(1000), shift(1000), shift(500), drum(42), eos};
  EXPECT_EQ(seg.ids, want) << c.tokens_to_string(seg.ids);
  // Decoding accumulates the pieces back to step 2500.
  NoteDecoder dec(c);
  dec.add_segment(seg.ids, 0.0);
  auto out = dec.finish();
  ASSERT_EQ(out.notes.size(), 3u);
  EXPECT_DOUBLE_EQ(out.notes[2].onset_s, 25.0);
  EXPECT_EQ(dec.invalid_tokens(), 0);

  // A smaller max shift (1 s): 2.5 s → 100 + 100 + 50 steps.
  CodecConfig small;
  small.max_shift_seconds = 1;
  Codec cs(small);
  auto seg2 = encode_segment(cs, {make_note(2.5, 2.6, 60)}, 0.0, -1.0);
  std::vector<int> want2 = {cs.token_for(EventType::Tie, 0),      cs.token_for(EventType::Shift, 100),
                            cs.token_for(EventType::Shift, 100),  cs.token_for(EventType::Shift, 50),
                            cs.token_for(EventType::Program, 0),  cs.token_for(EventType::Velocity, 1),
                            cs.token_for(EventType::Pitch, 60),   cs.token_for(EventType::Shift, 100),
                            cs.token_for(EventType::Shift, 100),  cs.token_for(EventType::Shift, 60),
                            cs.token_for(EventType::Velocity, 0), cs.token_for(EventType::Pitch, 60),
                            1};
  EXPECT_EQ(seg2.ids, want2) << cs.tokens_to_string(seg2.ids);
}

TEST(CodecEncode, EqualTimeOrderTieSectionAndRedundancy) {
  Codec c(CodecConfig::mt3());
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  // Active at the origin (1.00 s): prog 40 p76, prog 0 p67, prog 0 p60 (ends
  // exactly at the origin, so it is tied and its offset comes at time 0).
  // At +0.20: offsets (prog 0 p67, prog 40 p76) before onsets (prog 0 p62,
  // prog 40 p79), drums (p38 before p42... sorted by pitch) last.
  std::vector<Note> notes = {
      make_note(0.50, 1.00, 60, 0),  make_note(0.30, 1.20, 67, 0),  make_note(0.10, 1.20, 76, 40),
      make_note(1.20, 1.50, 62, 0),  make_note(1.20, 1.50, 79, 40), make_note(1.20, 1.21, 42, 0, true),
      make_note(1.20, 1.21, 38, 0, true), make_note(1.00, 1.10, 72, 33),  // onset at the origin: time 0
      make_note(0.00, 0.50, 50, 0),  // ended before the origin: not tied
  };
  auto seg = encode_segment(c, notes, 1.0, 2.0);
  std::vector<int> want = {
      T(E::Program, 0),  T(E::Pitch, 60), T(E::Pitch, 67), T(E::Program, 40), T(E::Pitch, 76), T(E::Tie, 0),
      // time 0: offset of p60 (prog 0), onset of prog33 p72
      T(E::Program, 0),  T(E::Velocity, 0), T(E::Pitch, 60), T(E::Program, 33), T(E::Velocity, 1),
      T(E::Pitch, 72),
      // +10: offset p72
      T(E::Shift, 10), T(E::Velocity, 0), T(E::Pitch, 72),
      // +20: offsets, onsets, drums
      T(E::Shift, 20), T(E::Program, 0), T(E::Pitch, 67), T(E::Program, 40), T(E::Pitch, 76), T(E::Program, 0),
      T(E::Velocity, 1), T(E::Pitch, 62), T(E::Program, 40), T(E::Pitch, 79), T(E::Drum, 38), T(E::Drum, 42),
      // +50: offsets
      T(E::Shift, 50), T(E::Program, 0), T(E::Velocity, 0), T(E::Pitch, 62), T(E::Program, 40), T(E::Pitch, 79),
      1};
  EXPECT_EQ(seg.ids, want) << "got:  " << c.tokens_to_string(seg.ids) << "\nwant: " << c.tokens_to_string(want);
}

TEST(CodecEncode, FlatProgramsAndNoTies) {
  Codec c(CodecConfig::ismir2021());
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  std::vector<Note> notes = {make_note(0.0, 3.0, 60, 0, false, 80), make_note(2.1, 2.2, 64, 40, false, 80),
                             make_note(2.1, 2.3, 67, 0, false, 90)};
  auto seg = encode_segment(c, notes, 2.048, -1.0);  // origin 2.04, C4 active but no tie section
  std::vector<int> want = {T(E::Shift, 6),  T(E::Velocity, 80), T(E::Pitch, 64), T(E::Velocity, 90),
                           T(E::Pitch, 67), T(E::Shift, 16),    T(E::Velocity, 0), T(E::Pitch, 64),
                           T(E::Shift, 26), T(E::Pitch, 67),    T(E::Shift, 96), T(E::Pitch, 60),
                           1};
  EXPECT_EQ(seg.ids, want) << c.tokens_to_string(seg.ids);
  // Empty segments: ismir2021 just EOS; mt3 an empty tie section.
  EXPECT_EQ(encode_segment(c, {}, 0.0, 2.0).ids, std::vector<int>{1});
  EXPECT_EQ(encode_segment(Codec(), {}, 0.0, 2.0).ids, (std::vector<int>{1134, 1}));
}

TEST(CodecEncode, TooLongSegmentsAreTruncatedWithAFlag) {
  Codec c;
  std::vector<Note> notes;
  for (int i = 0; i < 400; ++i) notes.push_back(make_note(i * 0.005, i * 0.005 + 0.5, 20 + i % 80, i % 3));
  auto seg = encode_segment(c, notes, 0.0, 2.0);
  EXPECT_TRUE(seg.truncated);
  EXPECT_EQ(seg.ids.size(), size_t(kMaxTargetTokens));
  EXPECT_EQ(seg.ids.back(), 1);
  auto small = encode_segment(c, notes, 0.0, 2.0, 10);
  EXPECT_EQ(small.ids.size(), 10u);
  EXPECT_TRUE(small.truncated);
  auto full = encode_segment(c, notes, 0.0, 2.0, 1 << 20);
  EXPECT_FALSE(full.truncated);
  EXPECT_GT(full.ids.size(), size_t(kMaxTargetTokens));
  EXPECT_TRUE(std::equal(seg.ids.begin(), seg.ids.end() - 1, full.ids.begin()));
  EXPECT_THROW(encode_segment(c, notes, 0.0, 2.0, 0), ConfigError);
  NoteSequence seq;
  seq.notes = notes;
  auto segs = encode_file(c, seq, {0.0, 2.0}, 4.0);
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].ids, seg.ids);
  EXPECT_EQ(segs[1].start_step, 200);
  EXPECT_THROW(encode_file(c, seq, {1.0, 0.5}), InputError);
}

TEST(CodecEncode, CanonicalNotes) {
  Codec c;
  CanonicalizeStats st;
  auto out = canonicalize_notes(c,
                                {make_note(1.001, 1.003, 60),           // shorter than a step: 1.00–1.01
                                 make_note(2.0, 3.0, 62), make_note(2.004, 2.5, 62),  // same step: longer kept
                                 make_note(4.0, 5.0, 64), make_note(4.5, 6.0, 64),    // overlap: first cut at 4.5
                                 make_note(7.0, 7.5, 36, 5, true),  // drum: program 0, one step
                                 make_note(1.0, 2.0, 200)},         // out of range: dropped
                                &st);
  EXPECT_EQ(st.extended, 1);
  EXPECT_EQ(st.merged, 1);
  EXPECT_EQ(st.trimmed, 1);
  EXPECT_EQ(st.dropped, 1);
  std::vector<Note> want = {make_note(1.0, 1.01, 60, 0, false, 127), make_note(2.0, 3.0, 62, 0, false, 127),
                            make_note(4.0, 4.5, 64, 0, false, 127), make_note(4.5, 6.0, 64, 0, false, 127),
                            make_note(7.0, 7.01, 36, 0, true, 127)};
  EXPECT_EQ(first_difference(want, out), "");
}

TEST(CodecReference, MatchesFrameIndexedMt3Pipeline) {
  // Targets from tests/data/codec/make_reference_targets.py: an independent
  // Python model of MT3's frame-indexed pipeline (single-step shifts, per-frame
  // start indices, state events, run-length encoding, redundancy removal).
  std::ifstream in(tunescribe::test::data_dir() + "/codec/reference_targets.json");
  ASSERT_TRUE(in.good());
  auto j = nlohmann::json::parse(in);
  int n_cases = 0, n_segments = 0;
  for (const auto& c : j["cases"]) {
    Codec codec(CodecConfig::from_json(c["codec"]));
    std::vector<Note> notes;
    for (const auto& n : c["notes"])
      notes.push_back(make_note(n["onset_s"], n["offset_s"], n["pitch"], n["program"], n["is_drum"], n["velocity"]));
    const long long frames = c["frames_per_segment"], n_frames = c["n_frames"];
    const long long count = (n_frames + frames - 1) / frames;
    ASSERT_EQ(c["segments"].size(), size_t(count));
    TargetEncoder enc(codec, notes);
    for (long long k = 0; k < count; ++k) {
      long long s0 = k * frames * 128 * 100 / 16000;
      long long s1 = k + 1 < count ? (k + 1) * frames * 128 * 100 / 16000 : -1;
      auto seg = enc.encode_segment_steps(s0, s1);
      auto want = c["segments"][size_t(k)].get<std::vector<int>>();
      ASSERT_EQ(seg.ids, want) << "case " << n_cases << " segment " << k << "\n got:  "
                               << codec.tokens_to_string(seg.ids) << "\n want: " << codec.tokens_to_string(want);
      ++n_segments;
    }
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 12);
  std::printf("[ codec    ] reference pipeline: %d cases, %d segments identical\n", n_cases, n_segments);
}

// ---------------------------------------------------------------------------
// Decoding

TEST(CodecDecode, ClipsStrictlyAfterMaxTime) {
  Codec c;
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  // Segment 0 (origin 0, next origin 2.04): an onset exactly at 2.04 is kept,
  // anything after a shift to 2.05 is dropped (3 tokens).
  std::vector<int> seg0 = {T(E::Tie, 0), T(E::Shift, 204), T(E::Program, 0), T(E::Velocity, 1), T(E::Pitch, 60),
                           T(E::Shift, 205), T(E::Pitch, 62), 1};
  std::vector<int> seg1 = {T(E::Program, 0), T(E::Pitch, 60), T(E::Tie, 0), T(E::Shift, 50), T(E::Velocity, 0),
                           T(E::Pitch, 60), 1};
  int invalid = -1, dropped = -1;
  auto seq = decode_segments(c, {seg0, seg1}, {0.0, 2.04}, &invalid, &dropped);
  EXPECT_EQ(invalid, 0);
  EXPECT_EQ(dropped, 2);  // shift 205 and pitch 62
  ASSERT_EQ(seq.notes.size(), 1u);
  EXPECT_DOUBLE_EQ(seq.notes[0].onset_s, 2.04);
  EXPECT_DOUBLE_EQ(seq.notes[0].offset_s, 2.54);
  EXPECT_EQ(seq.notes[0].velocity, 127);
}

TEST(CodecDecode, InvalidEventsAreCountedAndSkipped) {
  Codec c;
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  NoteDecoder dec(c);
  dec.add_segment({0, 2, 1391, 1535, -3,            // 5 invalid ids
                   T(E::Tie, 0), T(E::Tie, 0),       // second tie: outside the tie section
                   T(E::Velocity, 0), T(E::Pitch, 60),  // note-off of an inactive note
                   T(E::Drum, 36),                   // drum with velocity 0
                   T(E::Shift, 50), T(E::Velocity, 1), T(E::Program, 5), T(E::Pitch, 60),
                   T(E::Shift, 20), T(E::Velocity, 0), T(E::Pitch, 60),  // backwards: 2 invalid, not applied
                   T(E::Shift, 80), T(E::Pitch, 60),  // velocity 1 still current: restart at 0.80
                   T(E::Drum, 36),
                   1, T(E::Pitch, 70), 9999},        // after EOS: ignored
                  0.0);
  EXPECT_EQ(dec.invalid_tokens(), 5 + 1 + 1 + 1 + 2);
  EXPECT_EQ(dec.dropped_tokens(), 0);
  auto seq = dec.finish();
  // prog 5 p60 0.50–0.80 (restart), 0.80–0.81 (flushed dangling), drum at 0.80.
  std::vector<Note> want = {make_note(0.5, 0.8, 60, 5, false, 127), make_note(0.8, 0.81, 60, 5, false, 127),
                            make_note(0.8, 0.81, 36, 0, true, 127)};
  EXPECT_EQ(first_difference(want, seq.notes), "");
}

TEST(CodecDecode, TieSectionsDanglingNotesAndMissingTie) {
  Codec c;
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  std::vector<int> seg0 = {T(E::Tie, 0), T(E::Program, 0), T(E::Velocity, 1), T(E::Pitch, 60), T(E::Pitch, 64),
                           T(E::Pitch, 67), T(E::Shift, 100), T(E::Program, 40), T(E::Pitch, 76), 1};
  // Segment 1 ties p60 and (40, p76) only: p64, p67 end at its origin 2.04.
  std::vector<int> seg1 = {T(E::Program, 0), T(E::Pitch, 60), T(E::Program, 40), T(E::Pitch, 76),
                           T(E::Pitch, 76),  // already tied: invalid
                           T(E::Tie, 0), T(E::Shift, 10), T(E::Program, 0), T(E::Velocity, 0), T(E::Pitch, 60), 1};
  // Segment 2 omits the tie token: every pitch is a tie declaration.
  std::vector<int> seg2 = {T(E::Program, 40), T(E::Pitch, 76), T(E::Shift, 30), T(E::Velocity, 1),
                           T(E::Pitch, 50),  // not active: invalid declaration
                           1};
  int invalid = 0, dropped = 0;
  auto seq = decode_segments(c, {seg0, seg1, seg2}, {0.0, 2.04, 4.09}, &invalid, &dropped);
  EXPECT_EQ(invalid, 2);
  // (40, p76) is still active at the end: flushed at max(4.39 last event, 1.01).
  std::vector<Note> want = {make_note(0.0, 2.04, 64, 0, false, 127), make_note(0.0, 2.04, 67, 0, false, 127),
                            make_note(0.0, 2.14, 60, 0, false, 127), make_note(1.0, 4.39, 76, 40, false, 127)};
  EXPECT_EQ(first_difference(want, seq.notes), "");
  EXPECT_DOUBLE_EQ(seq.duration_s, 4.39);
}

// A violin (40) E5 held into the next segment, which re-declares it as a viola (41) and ends it
// there: the reference decoding cuts the note at the boundary and rejects the declaration and
// the note-off; with merging the note runs on to the viola's note-off, written as violin.
TEST(CodecDecode, MergeRelabelledTiesContinuesTheHeldNote) {
  Codec c;
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  const std::vector<int> seg0 = {T(E::Tie, 0), T(E::Program, 40), T(E::Velocity, 1), T(E::Pitch, 76),
                                 T(E::Program, 0), T(E::Pitch, 60), 1};
  const std::vector<int> seg1 = {T(E::Program, 41), T(E::Pitch, 76), T(E::Program, 0), T(E::Pitch, 60), T(E::Tie, 0),
                                 T(E::Shift, 50), T(E::Program, 41), T(E::Velocity, 0), T(E::Pitch, 76),
                                 T(E::Program, 0), T(E::Pitch, 60), 1};
  int invalid = 0, dropped = 0;
  const auto plain = decode_segments(c, {seg0, seg1}, {0.0, 2.04}, &invalid, &dropped);
  EXPECT_EQ(invalid, 2);  // the viola declaration and its note-off
  EXPECT_EQ(first_difference({make_note(0.0, 2.04, 76, 40, false, 127), make_note(0.0, 2.54, 60, 0, false, 127)},
                             plain.notes), "");
  NoteDecoder d(c);
  d.set_merge_relabelled_ties(true);
  d.add_segment(seg0, 0.0, 2.04);
  d.add_segment(seg1, 2.04);
  const auto merged = d.finish();
  EXPECT_EQ(d.invalid_tokens(), 0);
  EXPECT_EQ(d.merged_ties(), 1);
  EXPECT_EQ(first_difference({make_note(0.0, 2.54, 60, 0, false, 127), make_note(0.0, 2.54, 76, 40, false, 127)},
                             merged.notes), "");
  // A declaration with no held note of that pitch under any program stays invalid.
  NoteDecoder e(c);
  e.set_merge_relabelled_ties(true);
  e.add_segment(seg0, 0.0, 2.04);
  e.add_segment({T(E::Program, 41), T(E::Pitch, 77), T(E::Tie, 0), 1}, 2.04);
  EXPECT_EQ(e.invalid_tokens(), 1);
  EXPECT_EQ(e.merged_ties(), 0);
}

TEST(CodecDecode, NoTiesKeepsNotesAcrossSegmentsAndMinDuration) {
  Codec c(CodecConfig::ismir2021());
  auto T = [&](EventType t, int v) { return c.token_for(t, v); };
  using E = EventType;
  std::vector<int> seg0 = {T(E::Velocity, 90), T(E::Pitch, 60), T(E::Shift, 5), T(E::Pitch, 62),
                           T(E::Velocity, 0), T(E::Pitch, 62), 1};  // zero-length: 10 ms
  std::vector<int> seg1 = {T(E::Tie, 0),  // no tie sections in this spec: invalid
                           T(E::Shift, 100), T(E::Pitch, 60), 1};
  int invalid = 0;
  auto seq = decode_segments(c, {seg0, seg1}, {0.0, 4.09}, &invalid);
  EXPECT_EQ(invalid, 1);
  std::vector<Note> want = {make_note(0.0, 5.09, 60, 0, false, 90), make_note(0.05, 0.06, 62, 0, false, 90)};
  EXPECT_EQ(first_difference(want, seq.notes), "");
}

TEST(CodecDecode, Mt3GoldenFixture) {
  TS_REQUIRE_SHARED();
  // Tokens of the official mt3 checkpoint on shared/fixtures/mt3/clip.wav and
  // the notes that port decoded from them (10 invalid events, see README).
  std::string dir = tunescribe::test::shared_dir() + "/fixtures/mt3";
  std::ifstream tf(dir + "/tokens.json");
  ASSERT_TRUE(tf.good());
  auto j = nlohmann::json::parse(tf);
  std::vector<std::vector<int>> ids = j["tokens"].get<std::vector<std::vector<int>>>();
  std::vector<double> starts = j["start_times"].get<std::vector<double>>();
  int invalid = 0, dropped = 0;
  auto seq = decode_segments(Codec(CodecConfig::mt3()), ids, starts, &invalid, &dropped);
  std::ifstream nf(dir + "/notes.csv");
  std::string line;
  std::getline(nf, line);  // header
  std::vector<Note> want;
  while (std::getline(nf, line)) {
    if (line.empty()) continue;
    double on, off;
    int pitch, vel, prog, drum;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf,%d,%d,%d,%d", &on, &off, &pitch, &vel, &prog, &drum), 6) << line;
    want.push_back(make_note(on, off, pitch, prog, drum != 0, vel));
  }
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(first_difference(want, seq.notes), "");
  auto meta = nlohmann::json::parse(std::ifstream(dir + "/meta.json"));
  EXPECT_EQ(invalid, meta["invalid_events"].get<int>());
  EXPECT_EQ(dropped, meta["dropped_events"].get<int>());
}

// ---------------------------------------------------------------------------
// Round trips

namespace {

std::vector<Note> random_notes(std::mt19937& rng, int count, double length_s, bool with_drums) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int programs[] = {0, 0, 33, 40, 48, 73};
  std::vector<Note> notes;
  for (int i = 0; i < count; ++i) {
    Note n;
    double r = u(rng);
    // Half on a 1/8 s grid (equal-time events, exact half steps), half anywhere.
    n.onset_s = r < 0.5 ? std::floor(u(rng) * length_s * 8) / 8 : u(rng) * length_s;
    double d = u(rng);
    double dur = d < 0.15 ? u(rng) * 0.03 : d < 0.8 ? 0.05 + u(rng) * 1.0 : 1.0 + u(rng) * 9.0;  // up to 10 s
    if (r < 0.5 && d >= 0.15) dur = std::ceil(dur * 8) / 8;
    n.offset_s = n.onset_s + dur;
    n.pitch = 36 + int(u(rng) * 40);
    n.velocity = 1 + int(u(rng) * 127);
    n.is_drum = with_drums && u(rng) < 0.15;
    n.program = n.is_drum ? 0 : programs[int(u(rng) * 6)];
    notes.push_back(n);
  }
  return notes;
}

std::vector<double> random_grid(std::mt19937& rng, double length_s) {
  std::uniform_int_distribution<int> gap(1, 400);
  std::vector<double> s = {0.0};
  long long step = 0;
  while (step < length_s * 100) {
    step += gap(rng);
    s.push_back(step / 100.0);
  }
  return s;
}

}  // namespace

TEST(CodecRoundTrip, RandomNotesAreExactAtStepResolution) {
  std::vector<std::pair<std::string, CodecConfig>> configs;
  configs.emplace_back("mt3", CodecConfig::mt3());
  configs.emplace_back("ismir2021", CodecConfig::ismir2021());
  CodecConfig v7;
  v7.num_velocity_bins = 7;
  v7.max_shift_seconds = 1;  // shifts split into pieces inside long segments
  configs.emplace_back("v7-shift1s", v7);
  CodecConfig noties;
  noties.use_ties = false;
  configs.emplace_back("full-noties", noties);
  std::mt19937 rng(1234);
  long long total_notes = 0, total_segments = 0;
  for (const auto& [name, cfg] : configs) {
    Codec codec(cfg);
    for (int trial = 0; trial < 60; ++trial) {
      const double length_s = 5 + trial % 40;
      auto notes = random_notes(rng, 5 + trial * 4, length_s, !cfg.flat_programs() || trial % 2);
      for (int g = 0; g < 3; ++g) {
        std::vector<double> starts = g == 0   ? grid_starts(256, length_s + 10)
                                     : g == 1 ? grid_starts(512, length_s + 10)
                                              : random_grid(rng, length_s + 10);
        auto r = round_trip(codec, notes, starts);
        ASSERT_EQ(r.invalid, 0) << name << " trial " << trial << " grid " << g;
        ASSERT_EQ(r.dropped, 0) << name << " trial " << trial << " grid " << g;
        ASSERT_EQ(first_difference(r.canonical, r.decoded.notes), "") << name << " trial " << trial << " grid " << g;
        total_notes += long(r.canonical.size());
        total_segments += long(starts.size());
      }
    }
  }
  std::printf("[ codec    ] random round trip: %lld notes, %lld segments, exact\n", total_notes, total_segments);
}

TEST(CodecRoundTrip, NotesOnSegmentBoundaries) {
  Codec codec;
  // Every event exactly on an origin of the 2.048 s grid (0, 2.04, 4.09, 6.14).
  std::vector<Note> notes = {make_note(2.04, 4.09, 60), make_note(0.0, 2.04, 62), make_note(4.09, 6.14, 64, 40),
                             make_note(2.04, 6.14, 67, 40), make_note(4.09, 4.10, 36, 0, true),
                             make_note(2.03, 2.05, 69), make_note(4.08, 4.1, 71)};
  auto starts = grid_starts(256, 8.0);
  auto r = round_trip(codec, notes, starts);
  EXPECT_EQ(r.invalid, 0);
  EXPECT_EQ(first_difference(r.canonical, r.decoded.notes), "");
}

// ---------------------------------------------------------------------------
// Robustness: random and malformed token streams

TEST(CodecRobustness, RandomAndMalformedTokenStreamsNeverCrash) {
  for (auto cfg : {CodecConfig::mt3(), CodecConfig::ismir2021()}) {
    Codec codec(cfg);
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> any_id(-3, codec.embedding_rows() + 3);
    std::uniform_int_distribution<int> len(0, 300);
    long long total_invalid = 0;
    // 1. Uniformly random ids, several segments per file.
    for (int file = 0; file < 1500; ++file) {
      NoteDecoder dec(codec);
      int segments = 1 + file % 5;
      const bool clip = file % 2 == 0;  // with max_time (tails dropped) or without
      int expected_invalid_ids = 0;
      for (int s = 0; s < segments; ++s) {
        std::vector<int> ids(size_t(len(rng)));
        for (int& id : ids) id = any_id(rng);
        for (int id : ids) {
          if (id == 1) break;
          if (!codec.decode_id(id).is_event()) ++expected_invalid_ids;
        }
        dec.add_segment(ids, s * 2.04, clip && s + 1 < segments ? (s + 1) * 2.04 : -1.0);
      }
      // Without clipping every invalid id is counted (plus rejected events).
      if (!clip) ASSERT_GE(dec.invalid_tokens(), expected_invalid_ids);
      if (!clip) ASSERT_EQ(dec.dropped_tokens(), 0);
      auto seq = dec.finish();
      for (const Note& n : seq.notes) {
        ASSERT_GE(n.offset_s - n.onset_s, 0.01 - 1e-9);
        ASSERT_GE(n.onset_s, 0.0);
        ASSERT_TRUE(n.pitch >= 0 && n.pitch <= 127);
        ASSERT_TRUE(n.program >= 0 && n.program <= 127);
        ASSERT_TRUE(n.velocity >= 1 && n.velocity <= 127);
      }
      total_invalid += dec.invalid_tokens();
    }
    // 2. Only non-event ids: every one counted.
    for (int file = 0; file < 200; ++file) {
      std::vector<int> ids;
      for (int i = 0; i < 50; ++i) ids.push_back(i % 2 ? 0 : codec.first_extra_id() + i);
      NoteDecoder dec(codec);
      dec.add_segment(ids, 0.0);
      ASSERT_EQ(dec.invalid_tokens(), 50);
      ASSERT_TRUE(dec.finish().notes.empty());
    }
    // 3. Valid encodings with random mutations (delete, duplicate, swap, replace).
    std::mt19937 rng2(7);
    std::uniform_real_distribution<double> u(0, 1);
    for (int file = 0; file < 1000; ++file) {
      auto notes = random_notes(rng2, 30, 12.0, true);
      NoteSequence seq;
      seq.notes = notes;
      auto starts = grid_starts(256, 14.0);
      auto segs = encode_file(codec, seq, starts);
      NoteDecoder dec(codec);
      for (size_t k = 0; k < segs.size(); ++k) {
        auto ids = segs[k].ids;
        int mutations = int(u(rng2) * 4);
        for (int m = 0; m < mutations && !ids.empty(); ++m) {
          size_t i = size_t(u(rng2) * ids.size());
          double op = u(rng2);
          if (op < 0.25) ids.erase(ids.begin() + long(i));
          else if (op < 0.5) ids.insert(ids.begin() + long(i), ids[i]);
          else if (op < 0.75) std::swap(ids[i], ids[size_t(u(rng2) * ids.size())]);
          else ids[i] = int(u(rng2) * codec.embedding_rows());
        }
        dec.add_segment(ids, starts[k], k + 1 < starts.size() ? starts[k + 1] : -1.0);
      }
      auto out = dec.finish();
      for (const Note& n : out.notes) ASSERT_GE(n.offset_s - n.onset_s, 0.01 - 1e-9);
      total_invalid += dec.invalid_tokens();
    }
    EXPECT_GT(total_invalid, 0);
    std::printf("[ codec    ] %s: %lld invalid tokens counted over 2700 random/malformed files\n",
                cfg.flat_programs() ? "ismir2021" : "mt3", total_invalid);
  }
}

// ---------------------------------------------------------------------------
// Corpus: notes → tokens → notes on every MIDI file in shared/corpora

TEST(CodecRoundTrip, EveryCorpusMidiFileIsExact) {
  TS_REQUIRE_SHARED();
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(tunescribe::test::shared_dir() + "/corpora"))
    if (e.is_regular_file() && is_midi_path(e.path().string())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  try {
    read_midi_file(files[0]);
  } catch (const NotAvailableError& e) {
    GTEST_SKIP() << "MIDI reader not available yet: " << e.what();
  } catch (const InputError&) {
  }
  Codec codec(CodecConfig::mt3());
  Codec ismir(CodecConfig::ismir2021());
  long long n_files = 0, n_unreadable = 0, n_notes = 0, n_canonical = 0, n_segments = 0, n_tokens = 0;
  long long n_long = 0, n_ismir_notes = 0;
  CanonicalizeStats total;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    NoteSequence seq;
    try {
      seq = read_midi_file(f);
    } catch (const InputError& e) {
      ++n_unreadable;
      std::printf("[ codec    ] unreadable: %s\n", e.what());
      continue;
    }
    ++n_files;
    n_notes += long(seq.notes.size());
    auto starts = grid_starts(256, seq.end_time());
    auto r = round_trip(codec, seq.notes, starts);
    ASSERT_EQ(r.invalid, 0) << f;
    ASSERT_EQ(r.dropped, 0) << f;
    ASSERT_EQ(first_difference(r.canonical, r.decoded.notes), "") << f;
    n_canonical += long(r.canonical.size());
    n_segments += long(starts.size());
    n_tokens += long(r.tokens);
    n_long += r.over_limit;  // segments over the 1024-token limit of the released models
    total.dropped += r.stats.dropped;
    total.merged += r.stats.merged;
    total.trimmed += r.stats.trimmed;
    total.extended += r.stats.extended;
    // ismir2021 (flat, 127 velocity bins, no ties) on the 4.096 s grid.
    auto starts2 = grid_starts(512, seq.end_time());
    auto r2 = round_trip(ismir, seq.notes, starts2);
    ASSERT_EQ(r2.invalid, 0) << f;
    ASSERT_EQ(first_difference(r2.canonical, r2.decoded.notes), "") << f << " (ismir2021)";
    n_ismir_notes += long(r2.canonical.size());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ codec    ] corpus round trip: %lld MIDI files (%lld unreadable), %lld notes read, "
              "%lld canonical notes (mt3) exact, %lld (ismir2021) exact; %lld segments, %lld tokens, "
              "%lld segments over 1024 tokens; canonicalisation: %d merged, %d trimmed, %d extended, %d dropped; "
              "%.1f s\n",
              n_files, n_unreadable, n_notes, n_canonical, n_ismir_notes, n_segments, n_tokens, n_long, total.merged,
              total.trimmed, total.extended, total.dropped, secs);
  EXPECT_GT(n_files, 0);
}

// ---------------------------------------------------------------------------
// `tunescribe tokens` (hidden CLI command for the trainer)

namespace {

// A tiny SMF (format 0, 100 ticks per quarter, 120 bpm → 5 ms per tick):
// piano C4 0.00–0.50 s, kick (channel 10, key 36) at 0.25 s, E4 1.90–2.30 s.
std::string write_small_midi(const std::string& dir) {
  const unsigned char bytes[] = {
      'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0, 100,   // header
      'M', 'T', 'r', 'k', 0, 0, 0, 39,                       // track, 39 bytes
      0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,              // tempo 500000 us/quarter
      0x00, 0xC0, 0x00,                                      // program 0
      0x00, 0x90, 60, 100,                                   // t=0   C4 on
      0x32, 0x99, 36, 100,                                   // t=50  kick on
      0x0A, 0x89, 36, 0,                                     // t=60  kick off
      0x28, 0x80, 60, 64,                                    // t=100 C4 off
      0x82, 0x18, 0x90, 64, 100,                             // t=380 E4 on
      0x50, 0x80, 64, 64,                                    // t=460 E4 off
      0x00, 0xFF, 0x2F, 0x00};                               // end of track
  static_assert(sizeof(bytes) == 22 + 39, "track length");
  std::string path = dir + "/small.mid";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof(bytes));
  return path;
}

}  // namespace

TEST(CodecCli, TokensCommandExportsSegmentTargets) {
  std::string dir = tunescribe::test::temp_dir("codec_cli");
  std::string mid = write_small_midi(dir);
  const std::string bin = tunescribe::test::tunescribe_bin();
  auto r = tunescribe::test::run_command("'" + bin + "' tokens '" + mid + "' --segment-frames 256 --hop 128");
  if (r.exit_code == 2 && r.err.find("not available") != std::string::npos)
    GTEST_SKIP() << "MIDI reader not available yet: " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["file"], mid);
  EXPECT_EQ(j["vocab_size"], 1491);
  EXPECT_EQ(j["embedding_rows"], 1536);
  EXPECT_DOUBLE_EQ(j["segment_s"].get<double>(), 2.048);
  ASSERT_EQ(j["segments"].size(), 2u);  // 2.3 s → 288 frames → 2 segments of 256
  EXPECT_DOUBLE_EQ(j["segments"][0]["start_s"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["segments"][1]["start_s"].get<double>(), 2.04);
  EXPECT_EQ(j["segments"][1]["start_sample"], 32768);
  // Segment 0: tie | prog0 vel1 C4 | +25 kick | +50 vel0 C4 | +190 vel1 E4 | EOS.
  std::vector<int> seg0 = {1134, 1135, 1133, 1064, 28, 1299, 53, 1132, 1064, 193, 1133, 1068, 1};
  // Segment 1 (origin 2.04): E4 tied | +26 vel0 E4 | EOS.
  std::vector<int> seg1 = {1135, 1068, 1134, 29, 1132, 1068, 1};
  EXPECT_EQ(j["segments"][0]["tokens"].get<std::vector<int>>(), seg0);
  EXPECT_EQ(j["segments"][1]["tokens"].get<std::vector<int>>(), seg1);
  EXPECT_EQ(j["segments"][0]["truncated"], false);

  // ismir2021-style codec: 127 velocity bins, no ties, no programs.
  auto r2 = tunescribe::test::run_command("'" + bin + "' tokens '" + mid +
                                          "' --segment-frames 512 --velocity-bins 127 --no-ties --flat-programs");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  auto j2 = nlohmann::json::parse(r2.out);
  EXPECT_EQ(j2["vocab_size"], 1617);
  ASSERT_EQ(j2["segments"].size(), 1u);
  // vel100 C4 | +25 kick | +50 vel0 C4 | +190 vel100 E4 | +230 vel0 E4 | EOS
  std::vector<int> flat = {1232, 1064, 28, 1389 + 36, 53, 1132, 1064, 193, 1232, 1068, 233, 1132, 1068, 1};
  EXPECT_EQ(j2["segments"][0]["tokens"].get<std::vector<int>>(), flat);
  // The same codec from a model's config.json.
  {
    std::ofstream cfg(dir + "/config.json");
    cfg << R"({"model_type":"mt3","codec":{"num_velocity_bins":127,"use_ties":false,"program_granularity":"flat"}})";
  }
  auto r2b = tunescribe::test::run_command("'" + bin + "' tokens '" + mid + "' --segment-frames 512 --codec-json '" +
                                           dir + "/config.json'");
  ASSERT_EQ(r2b.exit_code, 0) << r2b.err;
  EXPECT_EQ(nlohmann::json::parse(r2b.out)["segments"], j2["segments"]);

  // An offset crop: origins relative to 1.00 s; a missing file is reported as
  // a JSON error line and the batch goes on (exit code 1).
  auto r3 = tunescribe::test::run_command("'" + bin + "' tokens --offset-s 1.0 '" + mid + "' '" + dir +
                                          "/missing.mid'");
  EXPECT_EQ(r3.exit_code, 1) << r3.err;
  std::istringstream lines(r3.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  auto j3 = nlohmann::json::parse(l1);
  EXPECT_DOUBLE_EQ(j3["offset_s"].get<double>(), 1.0);
  ASSERT_EQ(j3["segments"].size(), 1u);
  EXPECT_EQ(j3["segments"][0]["start_sample"], 16000);
  std::vector<int> crop = {1134, 93, 1135, 1133, 1068, 133, 1132, 1068, 1};
  EXPECT_EQ(j3["segments"][0]["tokens"].get<std::vector<int>>(), crop);
  auto e = nlohmann::json::parse(l2);
  EXPECT_TRUE(e.contains("error"));

  // Hidden from the main help; bad configuration is a usage error.
  auto help = tunescribe::test::run_command("'" + bin + "' --help");
  EXPECT_EQ(help.out.find("tokens"), std::string::npos);
  auto bad = tunescribe::test::run_command("'" + bin + "' tokens '" + mid + "' --velocity-bins 0");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("num_velocity_bins"), std::string::npos) << bad.err;
  std::error_code ec;
  fs::remove_all(dir, ec);
}
