// frames_decoder.h — notes from the dense heads of an hconv model (the "frames" decoding path).
//
// What it does: the port of tools/train/tunescribe_train/hconv.py decode_frames. The valid
// frames of consecutive segments form one frame sequence; per key, an onset starts a note at a
// local peak of the onset head at or above onset_threshold (a frame is not a peak when
// the frame before is higher, or the frame after is at least as high — unless that
// one starts the next segment); the onset time is refined to a sub-frame by a
// parabola through the neighbours (not across segment joins), and onsets at a
// segment's frame 0 (which holds every onset of [0, n_fft/2/sr + hop/sr/2) in the
// labels) are placed mid-range, at segment start + (n_fft/2/sr + hop/2/sr) / 2
// (36 ms for hop 256, n_fft 2048 at 16 kHz). The note continues while the frame head
// stays at or above frame_threshold, until a new onset peak; it ends at the end of
// its last frame (so it lasts at least to the end of its onset frame). Velocity =
// round(velocity head x 127) (at least 1); program = the GM program of the family
// with the highest mean logit over the note's frames (kFamilyPrograms); confidence =
// the onset peak's value. Then notes shorter than min_note_ms are dropped, and notes
// whose fundamental is outside [min_freq_hz, max_freq_hz] (0 = no limit).
// What it does not: run the model (model.h front_heads), clip notes to the audio's
// duration (the transcriber does).
// Units: seconds, Hz, milliseconds; heads are probabilities (channels 0..3: onset,
// frame, offset, velocity) and raw logits (4..: instrument families).
// Streaming: FramesDecoder takes one segment at a time and keeps only the last two
// frames and the open notes, so memory does not grow with the recording's length;
// the notes equal decode_frames() on all segments at once.
// Thread-safety: one FramesDecoder per thread.
//
//   FramesDecoder dec(cfg, FrameGeometry::from_frontend(fe), model.hconv_config().num_families);
//   for (each segment k) dec.add_segment(heads_k, k * 2.048, geometry.real_frames(n_samples_k));
//   std::vector<Note> notes = dec.finish();
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tunescribe/notes.h"

namespace tunescribe {

struct LogMelConfig;

// GM program written for each instrument family (program / 8) by the frames decoder.
extern const int kFamilyPrograms[16];

struct FramesDecoderConfig {
  double onset_threshold = 0.5;  // onset-head peaks at or above this start notes, in [0, 1]
  double frame_threshold = 0.3;  // a note goes on while the frame head is at or above this, in [0, 1]
  double min_note_ms = 0.0;      // notes shorter than this are dropped, ms in [0, 10000] (0 = keep all)
  double min_freq_hz = 0.0;      // notes whose fundamental is below are dropped, Hz (0 = no limit)
  double max_freq_hz = 0.0;      // notes whose fundamental is above are dropped, Hz (0 = no limit)
  // Weight in [0, 1] of the input's loudness in the velocity: per recording, the velocity head's
  // values and the log-frequency features' peak at each note's start (the note's first 3 frames,
  // the pitch's bin +-1) are z-scored and blended (1 - w) : w, then mapped back onto the head's
  // mean and spread. 0 = the velocity head alone. Needs add_segment's features.
  double velocity_loudness = 0.0;

  void validate() const;  // throws ConfigError naming field, value and range
  nlohmann::json to_json() const;
  // A model's "decoding" section: onset_threshold, frame_threshold, min_note_ms,
  // min_freq_hz, max_freq_hz (missing keys keep the defaults; "default" is ignored).
  static FramesDecoderConfig from_json(const nlohmann::json& decoding);
};

// Fields a user set (unset ones keep the model's "decoding" values).
struct FramesDecoderOverrides {
  std::optional<double> onset_threshold, frame_threshold, min_note_ms, min_freq_hz, max_freq_hz, velocity_loudness;
  FramesDecoderConfig apply(FramesDecoderConfig base) const;
};

// Frame times of a front end (hconv.frame_geometry): frame j of a segment is
// centred at segment start + centre0_s + j * period_s.
struct FrameGeometry {
  int sample_rate_hz = 16000;
  int hop_length = 256;
  int n_fft = 2048;
  int segment_frames = 128;  // rows per segment
  int valid_frames = 125;    // frames whose centre lies inside a full segment
  // Log-frequency features (velocity_loudness): bin of MIDI pitch p = (p - min_midi) * bins_per_semitone.
  double min_midi = 20.0;
  int bins_per_semitone = 3;
  int n_bins = 0;  // features per frame (0: not a log-frequency front end)

  double period_s() const { return double(hop_length) / sample_rate_hz; }
  double centre0_s() const { return (double(n_fft) / 2.0) / sample_rate_hz; }
  static FrameGeometry from_frontend(const LogMelConfig& fe);
  // Frames of a segment holding n_samples samples of signal that take part in
  // decoding: valid_frames for a full segment, those centred inside the signal for
  // a short last one (at least 1 when n_samples > 0: frame 0 holds the onsets of the
  // first half window), 0 for an empty one.
  int real_frames(size_t n_samples) const;
};

class FramesDecoder {
 public:
  // num_families: family channels after the 4 probability heads (1..16).
  FramesDecoder(const FramesDecoderConfig& cfg, const FrameGeometry& geometry, int num_families);
  ~FramesDecoder();
  FramesDecoder(const FramesDecoder&) = delete;
  FramesDecoder& operator=(const FramesDecoder&) = delete;

  // One segment, in time order: heads [4 + num_families, segment_frames, 88] row-major
  // (as Model::front_heads gives per item), its start time (s) and how many of its
  // first frames to use (0..valid_frames; fewer for the signal's last segment).
  // features: the segment's model input [segment_frames, geometry.n_bins] row-major, for
  // velocity_loudness (nullptr: velocities from the head alone).
  void add_segment(const float* heads, double start_s, int n_frames, const float* features = nullptr);
  // The notes, sorted by (onset, offset, pitch, velocity, program, confidence)
  // like hconv.decode_frames. The decoder is spent afterwards.
  std::vector<Note> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// All segments at once.
struct HeadsSegment {
  const float* heads = nullptr;  // [4 + num_families, segment_frames, 88]
  double start_s = 0.0;
  int n_frames = 0;
  const float* features = nullptr;  // [segment_frames, n_bins] or nullptr (see add_segment)
};
std::vector<Note> decode_frames(const std::vector<HeadsSegment>& segments, int num_families,
                                const FrameGeometry& geometry, const FramesDecoderConfig& cfg);

}  // namespace tunescribe
