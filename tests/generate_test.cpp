// Tests of the generator (generator.h) and `tunescribe generate`, on the tiny
// random-weights model in models/tiny: machinery and controls, not musical quality.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tunescribe/abc_reader.h"
#include "tunescribe/audio.h"
#include "tunescribe/codec.h"
#include "tunescribe/errors.h"
#include "tunescribe/generator.h"
#include "tunescribe/midi.h"
#include "tunescribe/model.h"
#include "tunescribe/render.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

std::string tiny_dir() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny"; }
using tunescribe::test::q;
std::string prompt_abc() { return test::data_dir() + "/generate/prompt.abc"; }

const Model& tiny() {
  static std::unique_ptr<Model> m = Model::load(tiny_dir());
  return *m;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

GeneratorConfig short_cfg(uint64_t seed, double seconds = 2.0) {
  GeneratorConfig c;
  c.seed = seed;
  c.seconds = seconds;
  c.sampling.top_p = 0.95;
  c.max_segment_tokens = 256;  // fast
  return c;
}

// Notes of one program never overlap in time (mono check: across all notes).
bool overlapping(std::vector<Note> notes) {
  std::sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) { return a.onset_s < b.onset_s; });
  double end = -1;
  for (const Note& n : notes) {
    if (n.onset_s < end - 1e-6) return true;
    end = std::max(end, n.offset_s);
  }
  return false;
}

std::string generate_cli(const std::string& dir, const std::string& args) {
  return q(tunescribe_bin()) + " generate -q -m " + q(tiny_dir()) + " -o " + q(dir) + " " + args;
}

}  // namespace

// ------------------------------------------------------------------ sampling

TEST(GenerateSampling, TopK1IsArgmaxAndNeverPicksMaskedTokens) {
  std::mt19937_64 src(5);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> lg(300);
    for (auto& v : lg) v = nd(src);
    const int masked = int(std::max_element(lg.begin(), lg.end()) - lg.begin());
    lg[size_t(masked)] = -std::numeric_limits<float>::infinity();
    const int argmax = int(std::max_element(lg.begin(), lg.end()) - lg.begin());
    SamplingConfig s;
    s.top_k = 1;
    s.temperature = 2.0;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      std::mt19937_64 rng(seed);
      EXPECT_EQ(sample_from_logits(lg, s, rng), argmax);
    }
    SamplingConfig full;
    std::mt19937_64 rng(trial);
    for (int i = 0; i < 20; ++i) EXPECT_NE(sample_from_logits(lg, full, rng), masked);
  }
  std::vector<float> none(10, -std::numeric_limits<float>::infinity());
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_from_logits(none, SamplingConfig(), rng), -1);
}

TEST(GenerateSampling, FrequenciesFollowSoftmaxTemperatureAndNucleus) {
  const std::vector<float> lg = {2.0f, 1.0f, 0.0f, -1.0f};
  auto freqs = [&](const SamplingConfig& s) {
    std::mt19937_64 rng(42);
    std::vector<double> f(4, 0.0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) f[size_t(sample_from_logits(lg, s, rng))] += 1.0 / n;
    return f;
  };
  SamplingConfig t1;
  auto f1 = freqs(t1);
  double z = 0;
  for (float v : lg) z += std::exp(double(v));
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(f1[i], std::exp(double(lg[i])) / z, 0.01) << i;
  SamplingConfig cold;
  cold.temperature = 0.25;  // sharper: the top token dominates
  EXPECT_GT(freqs(cold)[0], 0.97);
  SamplingConfig hot;
  hot.temperature = 10.0;  // flatter
  EXPECT_GT(freqs(hot)[3], 0.2);
  SamplingConfig nucleus;
  nucleus.top_p = 0.8;  // p = .644 .237 .087 .032: the first two hold 0.88 ≥ 0.8
  auto fp = freqs(nucleus);
  EXPECT_EQ(fp[2] + fp[3], 0.0);
  EXPECT_NEAR(fp[0], 0.644 / 0.881, 0.01);
  SamplingConfig k2;
  k2.top_k = 2;
  auto fk = freqs(k2);
  EXPECT_EQ(fk[2] + fk[3], 0.0);
}

TEST(GenerateSampling, ConfigValuesAreChecked) {
  SamplingConfig s;
  s.temperature = 0;
  EXPECT_THROW(s.validate(), ConfigError);
  s = SamplingConfig();
  s.top_p = 1.5;
  EXPECT_THROW(s.validate(), ConfigError);
  GeneratorConfig g;
  g.instrument = 128;
  EXPECT_THROW(g.validate(), ConfigError);
}

// ------------------------------------------------------------------ helpers

TEST(GenerateHelpers, BarsKeysAndMeters) {
  EXPECT_DOUBLE_EQ(bars_to_seconds(4, "4/4", 120), 8.0);
  EXPECT_DOUBLE_EQ(bars_to_seconds(2, "6/8", 90), 4.0);  // 3 quarters per bar
  EXPECT_DOUBLE_EQ(bars_to_seconds(3, "C|", 60), 12.0);
  EXPECT_THROW(bars_to_seconds(4, "7/x", 120), ConfigError);
  EXPECT_THROW(bars_to_seconds(4, "4/4", 5), ConfigError);
  EXPECT_EQ(parse_key_name("G").fifths, 1);
  EXPECT_EQ(parse_key_name("Em").fifths, 1);
  EXPECT_TRUE(parse_key_name("Em").minor);
  EXPECT_EQ(parse_key_name("Bb").fifths, -2);
  EXPECT_EQ(parse_key_name("F#m").fifths, 3);
  EXPECT_EQ(parse_key_name("Ddor").fifths, 0);
  EXPECT_EQ(parse_key_name("Amix").fifths, 2);
  EXPECT_THROW(parse_key_name("H"), ConfigError);
  EXPECT_THROW(parse_key_name("Gxyz"), ConfigError);
}

TEST(GenerateHelpers, TransposeMovesAScaleIntoTheRequestedKey) {
  NoteSequence seq;  // D major scale and a D major chord: clearly D major
  const int d_major[] = {62, 64, 66, 67, 69, 71, 73, 74, 62, 66, 69};
  double t = 0;
  for (int p : d_major) {
    seq.notes.push_back(Note{t, t + 0.5, p, 90, 0, false});
    t += 0.5;
  }
  EXPECT_LT(in_key_ratio(seq, -1), 0.8);  // not in F
  std::string est;
  int d = transpose_to_key(seq, "F", &est);
  EXPECT_EQ(est, "D");
  EXPECT_EQ(d, 3);  // D → F: +3 (the smallest interval)
  EXPECT_DOUBLE_EQ(in_key_ratio(seq, -1), 1.0);
  EXPECT_EQ(seq.notes.front().pitch, 65);
}

// ------------------------------------------------------------------ generator (library)

TEST(Generator, SameSeedSameTokensOtherSeedDiffers) {
  Generator gen(tiny());
  EXPECT_NEAR(gen.segment_seconds(), 2.048, 1e-12);
  EXPECT_EQ(gen.prefix_end_id(), gen.codec().first_extra_id());
  auto a = gen.generate(short_cfg(7, 4.0));
  auto b = gen.generate(short_cfg(7, 4.0));
  auto c = gen.generate(short_cfg(8, 4.0));
  EXPECT_EQ(a.segment_tokens, b.segment_tokens);
  EXPECT_EQ(a.notes.notes, b.notes.notes);
  EXPECT_NE(a.segment_tokens, c.segment_tokens);
  EXPECT_EQ(a.segment_tokens.size(), 2u);  // 4 s = two 2.048 s segments
  EXPECT_GT(a.tokens_sampled, 0);
}

// Whatever the random model prefers, the grammar keeps every token valid for
// the note decoder, shifts move forward inside their segment, and notes stay
// inside the requested length.
TEST(Generator, GrammarKeepsEveryTokenValid) {
  Generator gen(tiny());
  const Codec& codec = gen.codec();
  for (uint64_t seed = 0; seed < 6; ++seed) {
    GeneratorConfig cfg = short_cfg(seed, 5.0);
    cfg.sampling.temperature = 3.0;  // flat: the model alone would emit anything
    cfg.sampling.top_p = 1.0;
    auto r = gen.generate(cfg);
    EXPECT_EQ(r.invalid_tokens, 0) << seed;
    ASSERT_EQ(r.segment_tokens.size(), 3u);
    for (size_t k = 0; k < r.segment_tokens.size(); ++k) {
      const auto& seg = r.segment_tokens[k];
      ASSERT_FALSE(seg.empty());
      EXPECT_EQ(seg.back(), Codec::kEos);
      EXPECT_LE(int(seg.size()), cfg.max_segment_tokens);
      int last_shift = 0;
      bool after_tie = false;
      for (size_t i = 0; i + 1 < seg.size(); ++i) {
        DecodedToken d = codec.decode_id(seg[i]);
        ASSERT_TRUE(d.is_event()) << codec.token_to_string(seg[i]);
        if (d.type == EventType::Tie) {
          EXPECT_FALSE(after_tie);
          after_tie = true;
        }
        if (d.type == EventType::Shift) {
          EXPECT_TRUE(after_tie);
          EXPECT_GT(d.value, last_shift);
          last_shift = d.value;
          EXPECT_LT(k * 2.048 * 100 + d.value, 500.0 + 1e-9);
        }
      }
      EXPECT_TRUE(after_tie);
    }
    // Decoding the segments again gives the same notes (before the end clip).
    for (const Note& n : r.notes.notes) {
      EXPECT_LT(n.onset_s, 5.0);
      EXPECT_LE(n.offset_s, 5.0 + 1e-9);
      EXPECT_GT(n.offset_s, n.onset_s);
    }
  }
}

TEST(Generator, MonophonicNeverOverlapsAndInstrumentIsForced) {
  Generator gen(tiny());
  for (uint64_t seed = 0; seed < 4; ++seed) {
    GeneratorConfig cfg = short_cfg(seed, 4.0);
    cfg.monophonic = true;
    cfg.instrument = 40;  // violin
    auto r = gen.generate(cfg);
    EXPECT_EQ(r.invalid_tokens, 0);
    EXPECT_FALSE(overlapping(r.notes.notes)) << seed;
    for (const Note& n : r.notes.notes) {
      EXPECT_EQ(n.program, 40);
      EXPECT_FALSE(n.is_drum);
    }
  }
  // Without the controls the random model overlaps notes and mixes programs.
  auto free_run = gen.generate(short_cfg(0, 4.0));
  std::set<int> programs;
  for (const Note& n : free_run.notes.notes) programs.insert(n.program);
  EXPECT_TRUE(overlapping(free_run.notes.notes));
  EXPECT_GT(programs.size(), 1u);
}

TEST(Generator, ProgramAndPolyphonyCapsHold) {
  Generator gen(tiny());
  GeneratorConfig cfg = short_cfg(2, 4.0);
  cfg.max_programs = 3;
  cfg.max_polyphony = 4;
  auto r = gen.generate(cfg);
  EXPECT_EQ(r.invalid_tokens, 0);
  std::set<int> programs;
  for (const Note& n : r.notes.notes)
    if (!n.is_drum) programs.insert(n.program);
  EXPECT_LE(programs.size(), 3u);
  EXPECT_GE(programs.size(), 1u);
  // Sounding notes of the same program at every onset.
  for (const Note& a : r.notes.notes) {
    int sounding = 0;
    for (const Note& b : r.notes.notes)
      if (!b.is_drum && b.program == a.program && b.onset_s <= a.onset_s + 1e-9 && b.offset_s > a.onset_s + 1e-9)
        ++sounding;
    EXPECT_LE(sounding, 4) << a.onset_s;
  }
  // The defaults cap a random model at 8 programs.
  auto free_run = gen.generate(short_cfg(0, 4.0));
  std::set<int> all;
  for (const Note& n : free_run.notes.notes)
    if (!n.is_drum) all.insert(n.program);
  EXPECT_LE(all.size(), 8u);
}

TEST(Generator, PromptAppearsUnchangedAndIsContinued) {
  Generator gen(tiny());
  auto tunes = read_abc_file(prompt_abc());
  ASSERT_EQ(tunes.size(), 1u);
  const NoteSequence& prompt = tunes[0].sequence;
  GeneratorConfig cfg = short_cfg(3, 3.0);
  auto r = gen.generate(cfg, &prompt);
  EXPECT_NEAR(r.prompt_s, 4.0, 1e-9);
  EXPECT_NEAR(r.seconds, 7.0, 1e-9);
  auto canon = canonicalize_notes(gen.codec(), prompt.notes);
  ASSERT_EQ(canon.size(), 12u);
  for (const Note& p : canon) {
    bool found = std::any_of(r.notes.notes.begin(), r.notes.notes.end(), [&](const Note& n) {
      return n.pitch == p.pitch && n.program == p.program && std::abs(n.onset_s - p.onset_s) < 1e-9 &&
             std::abs(n.offset_s - p.offset_s) < 1e-9;
    });
    EXPECT_TRUE(found) << "prompt note " << p.pitch << " at " << p.onset_s;
  }
  // Before the prompt's end only the prompt sounds; after it there is new music.
  int after = 0;
  for (const Note& n : r.notes.notes) {
    if (n.onset_s < 4.0 - 1e-9 && n.onset_s < 4.0 - 0.01) {
      bool is_prompt = std::any_of(canon.begin(), canon.end(), [&](const Note& p) {
        return p.pitch == n.pitch && std::abs(n.onset_s - p.onset_s) < 1e-9;
      });
      EXPECT_TRUE(is_prompt) << n.pitch << " at " << n.onset_s;
    }
    if (n.onset_s >= 4.0 - 0.01) ++after;
  }
  EXPECT_GT(after, 0);
  // The prompt's segments are its own encoding (the first one completely).
  auto enc = encode_file(gen.codec(), prompt, {0.0, 2.048});
  EXPECT_EQ(r.segment_tokens[0], enc[0].ids);
  EXPECT_EQ(r.invalid_tokens, 0);
}

TEST(Generator, FromAudioSamplesConditionedOnTheRecording) {
  Generator gen(tiny());
  AudioConfig ac;
  ac.target_rate_hz = gen.sample_rate_hz();
  Audio audio = load_audio(test::data_dir() + "/e2e/waltz-start.flac", ac);
  GeneratorConfig cfg = short_cfg(1, 3600.0);
  auto a = gen.generate(cfg, nullptr, &audio);
  auto b = gen.generate(cfg, nullptr, &audio);
  cfg.seed = 2;
  auto c = gen.generate(cfg, nullptr, &audio);
  EXPECT_NEAR(a.seconds, audio.duration_s(), 1e-9);
  EXPECT_EQ(a.segment_tokens.size(), 2u);  // 2.5 s
  EXPECT_EQ(a.segment_tokens, b.segment_tokens);
  EXPECT_NE(a.segment_tokens, c.segment_tokens);
  auto n = gen.generate(short_cfg(1, 2.5));  // the null memory gives other music
  EXPECT_NE(a.segment_tokens, n.segment_tokens);
  NoteSequence p;
  p.notes.push_back(Note{0, 1, 60, 80, 0, false});
  EXPECT_THROW(gen.generate(cfg, &p, &audio), ConfigError);
}

TEST(Generator, ModelWithoutNullMemoryIsAModelError) {
  ModelConfig mc;
  mc.d_model = 32;
  mc.num_heads = 2;
  mc.head_dim = 16;
  mc.mlp_dim = 64;
  mc.num_encoder_layers = 1;
  mc.num_decoder_layers = 1;
  nlohmann::json cfg = tiny().raw_config();
  cfg["model"] = mc.to_json();
  auto m = Model::from_tensors(cfg, random_model_tensors(mc, 3, /*with_null_memory=*/false));
  Generator gen(*m);
  try {
    gen.generate(short_cfg(0));
    FAIL() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("null memory"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------ CLI

TEST(CliGenerate, SameSeedSameBytesOtherSeedDiffers) {
  std::string d1 = test::temp_dir("gen_a"), d2 = test::temp_dir("gen_b");
  auto r1 = run_command(generate_cli(d1, "--seconds 3 --seed 5 --json --max-segment-tokens 256"));
  auto r2 = run_command(generate_cli(d2, "--seconds 3 --seed 5 --num 2 --max-segment-tokens 256"));
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_TRUE(slurp(d1 + "/generated-5.abc") == slurp(d2 + "/generated-5.abc"));
  EXPECT_TRUE(slurp(d1 + "/generated-5.mid") == slurp(d2 + "/generated-5.mid"));
  ASSERT_TRUE(fs::exists(d2 + "/generated-6.mid"));  // --num 2: seeds 5 and 6
  EXPECT_FALSE(slurp(d1 + "/generated-5.mid") == slurp(d2 + "/generated-6.mid"));
  auto j = nlohmann::json::parse(r1.out.substr(0, r1.out.find('\n')));
  EXPECT_EQ(j["seed"], 5);
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), 3.0);
  EXPECT_GT(j["tokens"].get<int>(), 0);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0.0);
  EXPECT_EQ(j["files"].size(), 2u);
  auto seq = read_midi_file(d1 + "/generated-5.mid");  // valid MIDI (shared channels may merge notes)
  EXPECT_GT(seq.notes.size(), 0u);
  EXPECT_LE(seq.notes.size(), j["notes"].get<size_t>());
  // Never overwritten without --force.
  auto again = run_command(generate_cli(d1, "--seconds 3 --seed 5 --max-segment-tokens 256"));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(run_command(generate_cli(d1, "--seconds 3 --seed 5 --force --max-segment-tokens 256")).exit_code, 0);
  fs::remove_all(d1);
  fs::remove_all(d2);
}

TEST(CliGenerate, SamplingOptionsChangeTheOutput) {
  std::string d = test::temp_dir("gen_opts");
  auto mid = [&](const std::string& name, const std::string& args) {
    auto r = run_command(generate_cli(d, "--seconds 2 --max-segment-tokens 256 --name " + name + " " + args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return slurp(d + "/" + name + ".mid");
  };
  const std::string base = mid("base", "--seed 1");
  EXPECT_TRUE(base == mid("base2", "--seed 1"));
  EXPECT_FALSE(base == mid("cold", "--seed 1 --temperature 0.3"));
  EXPECT_FALSE(base == mid("nucleus", "--seed 1 --top-p 0.3"));
  // top-k 1 is greedy: the seed no longer matters.
  const std::string greedy = mid("greedy1", "--seed 1 --top-k 1");
  EXPECT_TRUE(greedy == mid("greedy2", "--seed 99 --top-k 1"));
  EXPECT_FALSE(base == greedy);
  fs::remove_all(d);
}

TEST(CliGenerate, ControlsAppearInAbcAndMidi) {
  std::string d = test::temp_dir("gen_ctl");
  auto r = run_command(generate_cli(d, "--seconds 4 --seed 2 --tempo 90 --meter 3/4 --key Bb "
                                       "--instrument violin --polyphony mono --name c --json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string abc = slurp(d + "/c.abc");
  EXPECT_NE(abc.find("\nQ:1/4=90\n"), std::string::npos) << abc;
  EXPECT_NE(abc.find("\nM:3/4\n"), std::string::npos) << abc;
  EXPECT_NE(abc.find("\nK:Bb\n"), std::string::npos) << abc;
  auto seq = read_midi_file(d + "/c.mid");
  ASSERT_FALSE(seq.notes.empty());
  for (const Note& n : seq.notes) EXPECT_EQ(n.program, 40);
  EXPECT_FALSE(overlapping(seq.notes));
  ASSERT_FALSE(seq.tempos.empty());
  EXPECT_NEAR(seq.tempos[0].bpm, 90.0, 1e-3);
  ASSERT_FALSE(seq.time_signatures.empty());
  EXPECT_EQ(seq.time_signatures[0].numerator, 3);
  // --key transposes: the notes fit Bb at least as well as any other signature.
  const double in_bb = in_key_ratio(seq, -2);
  for (int f = -6; f <= 6; ++f) EXPECT_GE(in_bb + 1e-9, in_key_ratio(seq, f) - 0.25) << f;
  auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(j["abc"]["key"], "Bb");
  fs::remove_all(d);
}

TEST(CliGenerate, BarsSetTheLength) {
  std::string d = test::temp_dir("gen_bars");
  auto r = run_command(generate_cli(d, "--bars 3 --tempo 120 --meter 4/4 --seed 4 --json --max-segment-tokens 200"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), 6.0);
  EXPECT_EQ(j["segments"], 3);
  auto seq = read_midi_file(d + "/generated-4.mid");
  for (const Note& n : seq.notes) EXPECT_LE(n.offset_s, 6.0 + 0.002);
  auto r2 = run_command(generate_cli(d, "--bars 2 --tempo 90 --meter 6/8 --seed 4 --name b68 --json --max-segment-tokens 200"));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  auto j2 = nlohmann::json::parse(r2.out.substr(0, r2.out.find('\n')));
  EXPECT_DOUBLE_EQ(j2["seconds"].get<double>(), 4.0);
  fs::remove_all(d);
}

TEST(CliGenerate, PromptIsContinuedUnchanged) {
  std::string d = test::temp_dir("gen_prompt");
  auto r = run_command(generate_cli(d, "--prompt " + q(prompt_abc()) + " --seconds 2 --seed 9 --json --max-segment-tokens 256"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_DOUBLE_EQ(j["prompt_seconds"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), 6.0);
  auto out = read_midi_file(d + "/generated-9.mid");
  auto prompt = read_abc_file(prompt_abc())[0].sequence;
  ASSERT_FALSE(out.tempos.empty());
  EXPECT_NEAR(out.tempos[0].bpm, 120.0, 1e-3);  // the prompt's tempo is kept
  for (const Note& p : prompt.notes) {
    bool found = std::any_of(out.notes.begin(), out.notes.end(), [&](const Note& n) {
      return n.pitch == p.pitch && std::abs(n.onset_s - p.onset_s) < 0.006 && std::abs(n.offset_s - p.offset_s) < 0.006;
    });
    EXPECT_TRUE(found) << p.pitch << " at " << p.onset_s;
  }
  fs::remove_all(d);
}

TEST(CliGenerate, WavIsRendered) {
  if (!have_fluidsynth() || default_soundfont().empty()) GTEST_SKIP() << "no FluidSynth or soundfont";
  std::string d = test::temp_dir("gen_wav");
  auto r = run_command(generate_cli(d, "--seconds 2 --seed 1 --instrument 0 --polyphony mono --wav"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  AudioInfo info = probe_audio(d + "/generated-1.wav");
  EXPECT_EQ(info.input_rate_hz, 44100);
  EXPECT_EQ(info.channels, 1);
  EXPECT_GT(info.duration_s(), 1.0);
  EXPECT_LT(info.duration_s(), 3.5);  // 2 s + 1 s release at most
  Audio a = load_audio(d + "/generated-1.wav");
  float peak = 0;
  for (float s : a.samples) peak = std::max(peak, std::abs(s));
  auto seq = read_midi_file(d + "/generated-1.mid");
  if (!seq.notes.empty()) EXPECT_GT(peak, 0.001f);
  fs::remove_all(d);
}

TEST(CliGenerate, BadValuesAreUsageErrorsNamingTheOption) {
  std::string d = test::temp_dir("gen_bad");
  const std::pair<std::string, std::string> cases[] = {
      {"--key H", "--key"},
      {"--meter 7/x", "--meter"},
      {"--instrument kazoo-deluxe", "--instrument"},
      {"--instrument 200", "--instrument"},
      {"--tempo fast", "--tempo"},
      {"--tempo 1000", "--tempo"},
      {"--temperature 0", "--temperature"},
      {"--top-p 2", "--top-p"},
      {"--polyphony trio", "--polyphony"},
      {"--prompt x.abc --from-audio y.wav", "--from-audio"},
  };
  for (const auto& [args, name] : cases) {
    auto r = run_command(generate_cli(d, args));
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(name), std::string::npos) << args << ": " << r.err;
  }
  fs::remove_all(d);
}

TEST(CliGenerate, UsesTheDefaultModelWithoutModelAndAMissingModelIsExit3) {
  ASSERT_FALSE(default_generate_model_dir().empty()) << "models/generate and models/default are missing";
  std::string d = test::temp_dir("gen_default");
  auto r = run_command(q(tunescribe_bin()) + " generate -o " + q(d) + " --seconds 2 --seed 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  std::ifstream cfg(default_generate_model_dir() + "/config.json");
  EXPECT_EQ(j["model"], nlohmann::json::parse(cfg)["name"]);
  EXPECT_TRUE(fs::exists(d + "/generated-1.abc"));
  EXPECT_TRUE(fs::exists(d + "/generated-1.mid"));
  auto m = run_command(q(tunescribe_bin()) + " generate -o " + q(d + "/x") + " --seconds 2 --model " +
                       q(d + "/no-such-model"));
  EXPECT_EQ(m.exit_code, 3) << m.err;
  EXPECT_NE(m.err.find("no-such-model"), std::string::npos) << m.err;
  fs::remove_all(d);
}
