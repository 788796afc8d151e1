// analysis.h — music analysis of performed notes: beats, tempo, meter, rhythmic grid, key.
//
// What it does: groups onsets into clusters, maps seconds to beats (a fixed tempo, a MIDI
// tempo map or Ellis (2007) dynamic-programming beat tracking), scores meter hypotheses
// (2/4 3/4 4/4 6/8 9/8 12/8 and their downbeat phase), chooses a grid per beat (straight
// 1/2^k or triplet subdivisions) and estimates the key (duration-weighted
// Krumhansl–Schmuckler with a choice of profiles). Overrides and MIDI metadata take the
// place of an estimate where given.
// What it does not: write notation (abc_writer.h), quantise notes or split voices.
// Units: seconds for input times; beat-map "units" (a written beat, a quarter or a tracked
// beat, see BeatUnit); exact fractions of a whole note for written values.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tunescribe/music.h"
#include "tunescribe/notes.h"

namespace tunescribe {

enum class KeyProfile { kAlbrechtShanahan, kKrumhanslKessler, kTemperley, kAardenEssen };
// "albrecht_shanahan" | "krumhansl_kessler" | "temperley" | "aarden_essen"; throws ConfigError.
KeyProfile key_profile_from_string(const std::string& s);

// ---------------------------------------------------------------- input
// The notes the analysis reads: valid ones (offset > onset, pitch 0..127), pitched notes at
// least min_note_s long, overlapping repeats of one pitch of one instrument merged; sorted by
// onset (then drums last, program, pitch).
std::vector<Note> prepare_notes(const std::vector<Note>& notes, double min_note_s);

struct OnsetCluster {
  double time_s = 0;    // the median onset of the cluster
  double salience = 0;  // 0.3 per drum hit, 0.3 + min(duration, 1 s) per pitched note
};
// Onsets within chord_cluster_s of a cluster's first onset join it. `notes` sorted by onset.
std::vector<OnsetCluster> onset_clusters(const std::vector<Note>& notes, double chord_cluster_s);

// ---------------------------------------------------------------- beats
// Piecewise-linear map from seconds to units through a list of unit times.
struct BeatMap {
  std::vector<double> times;  // strictly increasing, >= 2 entries
  double beta(double t) const;     // seconds → units
  double time_of(double b) const;  // units → seconds
};
BeatMap fixed_beat_map(double period_s, double t0, double t_end);
// Quarter-note units from a MIDI tempo map (exact integration).
BeatMap midi_tempo_map(const std::vector<TempoChange>& tempos, double t_end);
// Global period by autocorrelation + Ellis (2007) DP beat tracking. `clusters` not empty.
BeatMap track_beats(const std::vector<OnsetCluster>& clusters, double t_end);

// What a unit of the beat map is.
enum class BeatUnit { kWrittenBeat, kQuarter, kTracked };
struct BeatEstimate {
  BeatMap map;
  BeatUnit unit = BeatUnit::kQuarter;
  double sec_per_unit = 0.5;  // mean unit length over the notes
};
// tempo_bpm > 0: a fixed grid of written beats at that tempo, its phase fitted to the onsets;
// else the MIDI tempo map when `midi_tempos` is not empty; else tracked beats (>= 4 clusters);
// else quarters at 120 bpm from the first onset.
BeatEstimate estimate_beats(const std::vector<OnsetCluster>& clusters, double t_end, double tempo_bpm,
                            const std::vector<TempoChange>& midi_tempos);

// ---------------------------------------------------------------- meter
constexpr int kMeterSteps = 48;  // grid steps per beat-map unit for the meter search
struct MeterEstimate {
  Meter meter;
  bool given = false;         // from an override or MIDI metadata, not estimated
  Fraction beat_units{1};     // the written beat in beat-map units
  int phase_steps = 0;        // downbeat offset in 1/kMeterSteps of a unit
  double score = -1e300;      // log score of the chosen hypothesis (-1e300: none scored)
  double units_per_beat() const { return beat_units.value(); }
  double phase_units() const { return static_cast<double>(phase_steps) / kMeterSteps; }
  // Seconds → written beats from the first downbeat.
  double beats_of(const BeatMap& map, double t) const { return (map.beta(t) - phase_units()) / units_per_beat(); }
};
// Scores bar/beat/phase hypotheses of `given` (or of 2/4 3/4 4/4 6/8 9/8 12/8 when null)
// against the cluster positions.
MeterEstimate estimate_meter(const std::vector<OnsetCluster>& clusters, const BeatEstimate& beats, const Meter* given);
// The written tempo (Q: value, beats of meter.beat per minute, 20..400, rounded).
double written_tempo_bpm(const BeatEstimate& beats, const MeterEstimate& meter, double tempo_bpm,
                         const std::vector<TempoChange>& midi_tempos);

// ---------------------------------------------------------------- per-beat grid
struct GridOption {
  int G = 1;            // divisions of the beat
  double lambda = 0;    // complexity cost
  bool triplet = false; // triplet subdivision of a simple beat
};
struct BeatGrids {
  std::vector<GridOption> options;
  int finest = 1;                         // the largest G among the options
  std::map<int64_t, GridOption> per_beat;  // beat index → chosen grid (beats holding notes)
  int64_t beat_index(double b) const;     // the beat a position (in beats) snaps into
  GridOption at(int64_t k) const;         // options.front() for a beat without notes
  std::set<int64_t> triplet_beats() const;
};
// Note onsets and offsets in written beats (MeterEstimate::beats_of).
struct NoteBeats {
  std::vector<double> onset, offset;
};
NoteBeats note_beats(const std::vector<Note>& notes, const BeatMap& map, const MeterEstimate& meter);
// Per beat, the grid minimising complexity + squared distance of the onsets (weight 1) and
// pitched offsets (weight 0.1) to it; a triplet grid needs an onset in the beat.
BeatGrids choose_beat_grids(const std::vector<Note>& notes, const NoteBeats& at, const Meter& meter,
                            int grid_denominator, bool triplets);
// An estimated simple x/4 meter whose beats are mostly triplets is compound with the same beat
// (3/4 → 9/8, else 6/8): the grids are chosen again for it. False when nothing changed.
bool prefer_compound_meter(const std::vector<Note>& notes, const NoteBeats& at, int grid_denominator, bool triplets,
                           MeterEstimate* meter, BeatGrids* grids);

// ---------------------------------------------------------------- key
struct KeyEstimate {
  Key key;
  bool given = false;        // from an override or MIDI metadata
  double correlation = -3;   // Pearson correlation of the chosen profile (estimates only)
};
// Duration-weighted pitch-class histogram of the pitched notes (sqrt of the duration; notes in
// the first 10 % of the piece count 3x, in the last 10 % 1.5x) correlated with the 24 rotated
// profiles. C major for no pitched notes.
KeyEstimate estimate_key(const std::vector<Note>& notes, KeyProfile profile);

// ---------------------------------------------------------------- everything at once
struct AnalysisOptions {
  double tempo_bpm = 0.0;       // > 0: given (written beats per minute)
  std::string meter;            // "" = estimate (else parse_meter)
  std::string key;              // "" = estimate (else parse_key)
  bool use_midi_metadata = true;  // tempo/time/key signatures carried by the NoteSequence
  KeyProfile key_profile = KeyProfile::kAlbrechtShanahan;
  double chord_cluster_s = 0.04;
  int grid_denominator = 16;
  bool triplets = true;
};
struct Analysis {
  std::vector<OnsetCluster> clusters;
  double end_s = 0;  // last offset
  BeatEstimate beats;
  MeterEstimate meter;
  double tempo_bpm = 120;  // written
  NoteBeats at;
  BeatGrids grids;
  KeyEstimate key;
};
// `notes` as prepare_notes returns them; `meta` supplies the MIDI tempo/time/key signatures.
// An invalid options.meter or options.key is ignored (validate them first).
Analysis analyse(const std::vector<Note>& notes, const NoteSequence& meta, const AnalysisOptions& options);

// ---------------------------------------------------------------- results for other outputs
// The written tempo in quarter notes per minute (MIDI's unit): tempo_bpm x beat / (1/4), e.g.
// Q:3/8=64 → 96.
double quarter_bpm(const Analysis& an);
// The analysis as NoteSequence metadata at 0 s, replacing any there: one tempo (quarter_bpm),
// one time signature (the meter; none when its denominator is not a power of two, which MIDI
// cannot write) and one key signature (the key's signature and Key::minor).
void set_analysis_metadata(const Analysis& an, NoteSequence* seq);

}  // namespace tunescribe
