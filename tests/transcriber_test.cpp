// Tests of the engine (transcriber.h) on the tiny random-weights model in
// models/tiny: the streaming path (AudioStream pulled segment by segment)
// gives exactly the notes of the whole-signal path, including the segment
// count at the §1.3 padding edge (a length that is an exact multiple of a
// segment gets one more, one-frame segment).
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"
#include "tunescribe/transcriber.h"

namespace ts = tunescribe;
namespace fs = std::filesystem;

namespace {
using tunescribe::test::write_audio_file;


std::string tiny_dir() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny"; }

// A few seconds of piano-like tones (a new pitch every 0.37 s, decaying),
// interleaved `channels` channels at `rate`.
std::vector<float> tones(size_t frames, int channels, int rate) {
  std::vector<float> v(frames * size_t(channels));
  for (size_t i = 0; i < frames; ++i) {
    const double t = double(i) / rate;
    const int k = int(t / 0.37);
    const double local = t - 0.37 * k;
    const double hz = 440.0 * std::pow(2.0, double((k * 5) % 17 - 8) / 12.0);
    const double s = 0.5 * std::exp(-4.0 * local) * std::sin(2.0 * M_PI * hz * t);
    for (int c = 0; c < channels; ++c) v[i * size_t(channels) + size_t(c)] = float(c == 0 ? s : 0.8 * s);
  }
  return v;
}

ts::Transcriber& tiny() {
  static ts::Transcriber* t = [] {
    ts::TranscriberConfig cfg;
    cfg.model_dir = tiny_dir();
    cfg.n_threads = 1;
    cfg.batch_size = 2;         // several batches, one of them partial
    cfg.max_decode_steps = 96;  // random weights never emit EOS: keep the test fast
    return new ts::Transcriber(cfg);
  }();
  return *t;
}

void expect_same_notes(const ts::NoteSequence& a, const ts::NoteSequence& b) {
  EXPECT_EQ(a.duration_s, b.duration_s);
  ASSERT_EQ(a.notes.size(), b.notes.size());
  for (size_t i = 0; i < a.notes.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.notes[i].onset_s, b.notes[i].onset_s);
    EXPECT_EQ(a.notes[i].offset_s, b.notes[i].offset_s);
    EXPECT_EQ(a.notes[i].pitch, b.notes[i].pitch);
    EXPECT_EQ(a.notes[i].velocity, b.notes[i].velocity);
    EXPECT_EQ(a.notes[i].program, b.notes[i].program);
    EXPECT_EQ(a.notes[i].is_drum, b.notes[i].is_drum);
  }
}

// What the model saw and said for one segment.
struct SegmentRecord {
  int index = 0;
  double start_s = 0.0;
  std::vector<float> mel;
  std::vector<int> ids;
};

struct TranscribeRun {
  ts::NoteSequence seq;
  std::vector<std::pair<int, int>> progress;
  std::vector<SegmentRecord> segs;
  int64_t segments = 0;
};

void observe(TranscribeRun& r) {
  tiny().set_segment_observer([&r](int index, double start_s, const float* mel, size_t n, const std::vector<int>& ids) {
    r.segs.push_back({index, start_s, std::vector<float>(mel, mel + n), ids});
  });
}

// The model inputs (log-mel, bit for bit) and outputs of every segment agree:
// with the tiny model's random weights the notes are often empty, so this is
// the comparison that can fail.
void expect_same_segments(const TranscribeRun& a, const TranscribeRun& b) {
  ASSERT_EQ(a.segs.size(), b.segs.size());
  for (size_t i = 0; i < a.segs.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    EXPECT_EQ(a.segs[i].index, int(i));
    EXPECT_EQ(b.segs[i].index, int(i));
    EXPECT_EQ(a.segs[i].start_s, b.segs[i].start_s);
    EXPECT_TRUE(a.segs[i].mel == b.segs[i].mel);
    EXPECT_EQ(a.segs[i].ids, b.segs[i].ids);
  }
}

TranscribeRun run_whole(const std::string& path) {
  TranscribeRun r;
  ts::TranscribeProfile prof;
  tiny().set_profile(&prof);
  observe(r);
  const ts::Audio audio = ts::load_audio(path);
  r.seq = tiny().transcribe(audio, [&](int done, int total) { r.progress.push_back({done, total}); });
  tiny().set_profile(nullptr);
  tiny().set_segment_observer({});
  r.segments = prof.segments;
  return r;
}

TranscribeRun run_stream(const std::string& path) {
  TranscribeRun r;
  ts::TranscribeProfile prof;
  tiny().set_profile(&prof);
  observe(r);
  ts::AudioStream stream(path);
  r.seq = tiny().transcribe(stream, [&](int done, int total) { r.progress.push_back({done, total}); });
  tiny().set_profile(nullptr);
  tiny().set_segment_observer({});
  EXPECT_TRUE(stream.at_end());
  r.segments = prof.segments;
  return r;
}

}  // namespace

TEST(TranscriberStream, SameNotesAsWholeSignal44kStereo) {
  const std::string dir = ts::test::temp_dir("transcriber_stream");
  // 5.3 segments of 2.048 s at 44.1 kHz stereo: resampled and downmixed on the way.
  const size_t frames = size_t(5.3 * 2.048 * 44100);
  const std::string path =
      write_audio_file(dir + "/tones.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, tones(frames, 2, 44100));
  const TranscribeRun whole = run_whole(path), streamed = run_stream(path);
  EXPECT_EQ(whole.segments, 6);
  EXPECT_EQ(streamed.segments, 6);
  expect_same_segments(whole, streamed);
  expect_same_notes(whole.seq, streamed.seq);
  EXPECT_NEAR(streamed.seq.duration_s, double(frames) / 44100.0, 1e-4);
  // Progress: batches of 2, totals known up front (estimated from the header for the stream).
  const std::vector<std::pair<int, int>> want = {{2, 6}, {4, 6}, {6, 6}};
  EXPECT_EQ(whole.progress, want);
  EXPECT_EQ(streamed.progress, want);
  fs::remove_all(dir);
}

TEST(TranscriberStream, ExactMultipleOfASegmentGetsTheExtraPaddingSegment) {
  const std::string dir = ts::test::temp_dir("transcriber_stream_edge");
  ts::LogMelConfig mel;  // the tiny model's front end is the default one
  const size_t seg = size_t(mel.segment_samples());
  // 16 kHz mono (no resampling): exactly 3 segments of samples -> 4 segments
  // (§1.3.1 always pads 1..hop zeros); and one sample less -> 3.
  for (const size_t n : {3 * seg, 3 * seg - 1}) {
    SCOPED_TRACE(n);
    const std::string path = write_audio_file(dir + "/edge" + std::to_string(n) + ".wav",
                                        SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, tones(n, 1, 16000));
    const ts::LogMel lm(mel);
    const int expect_segments = lm.num_segments(n);
    EXPECT_EQ(expect_segments, n == 3 * seg ? 4 : 3);
    const TranscribeRun whole = run_whole(path), streamed = run_stream(path);
    EXPECT_EQ(whole.segments, expect_segments);
    EXPECT_EQ(streamed.segments, expect_segments);
    expect_same_segments(whole, streamed);
    expect_same_notes(whole.seq, streamed.seq);
    ASSERT_FALSE(streamed.progress.empty());
    EXPECT_EQ(streamed.progress.back(), std::make_pair(expect_segments, expect_segments));
  }
  fs::remove_all(dir);
}

TEST(TranscriberStream, SegmentFromChunkEqualsSegment) {
  // The front end's streaming entry point against the whole-signal one, for
  // full, short and empty last chunks.
  ts::LogMelConfig cfg;
  cfg.n_mels = 64;
  cfg.segment_frames = 16;
  const ts::LogMel lm(cfg);
  const size_t seg = size_t(cfg.segment_samples());
  for (const size_t n : {seg * 2, seg * 2 + 1, seg * 2 + 127, seg * 2 + 128, seg * 3 - 1, size_t(5)}) {
    SCOPED_TRACE(n);
    const std::vector<float> x = tones(n, 1, 16000);
    const int count = lm.num_segments(n);
    for (int k = 0; k < count; ++k) {
      const size_t begin = size_t(k) * seg;
      const ts::MelSegment a = lm.segment(x.data(), n, k);
      const ts::MelSegment b = lm.segment_from_chunk(x.data() + begin, std::min(seg, n - begin), k);
      EXPECT_EQ(a.n_frames, b.n_frames);
      EXPECT_EQ(a.start_s, b.start_s);
      EXPECT_EQ(a.start_exact_s, b.start_exact_s);
      EXPECT_EQ(a.data, b.data);
    }
  }
  EXPECT_THROW(lm.segment_from_chunk(nullptr, seg + 1, 0), ts::ConfigError);
}

TEST(TranscriberStream, RejectsAStreamAtTheWrongRate) {
  const std::string dir = ts::test::temp_dir("transcriber_stream_rate");
  const std::string path =
      write_audio_file(dir + "/a.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, tones(8000, 1, 16000));
  ts::AudioConfig cfg;
  cfg.target_rate_hz = 22050;
  ts::AudioStream stream(path, cfg);
  EXPECT_THROW(tiny().transcribe(stream), ts::ConfigError);
  fs::remove_all(dir);
}

// batch_size 0 (the default) resolves per decoding path: 16 segments for the token decoder
// (weights streamed once per step for more rows), 8 for the frames decoder; a set value is kept.
TEST(TranscriberConfig, AutoBatchSizeFollowsTheDecodingPath) {
  ts::TranscriberConfig cfg;
  EXPECT_EQ(cfg.batch_size, 0);
  cfg.model_dir = tiny_dir();
  cfg.n_threads = 1;
  EXPECT_EQ(ts::Transcriber(cfg).batch_size(), 16);
  cfg.model_dir = std::string(TUNESCRIBE_SOURCE_DIR) + "/models/default";
  ts::Transcriber frames(cfg);
  ASSERT_EQ(frames.decoder(), "frames");
  EXPECT_EQ(frames.batch_size(), 8);
  cfg.decoder = "tokens";
  EXPECT_EQ(ts::Transcriber(cfg).batch_size(), 16);
  cfg.batch_size = 3;
  EXPECT_EQ(ts::Transcriber(cfg).batch_size(), 3);
  cfg.batch_size = -1;
  EXPECT_THROW(cfg.validate(), ts::ConfigError);
}
