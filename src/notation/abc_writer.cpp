// abc_writer.cpp — performed notes → one ABC 2.1 tune (see abc_writer.h and
// ../shared/specs/abc.md for the rules followed here).
#include "tunescribe/abc_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"

namespace tunescribe {

std::string abc_title_from_path(const std::string& path) { return path_stem(path); }

namespace {

const char* kComponent = "abc";

using Spelled = SpelledPitch;
Spelled spell(int midi, int tonic_q) { return spell_pitch(midi, tonic_q); }

std::string octave_letter(const Spelled& s) {
  std::string out;
  if (s.octave >= 5) {
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s.letter)));
    out += std::string(s.octave - 5, '\'');
  } else {
    out += s.letter;
    out += std::string(4 - s.octave, ',');
  }
  return out;
}

std::string accidental_text(int alter) {
  switch (alter) {
    case -2: return "__";
    case -1: return "_";
    case 0: return "=";
    case 1: return "^";
    case 2: return "^^";
    default: return "";
  }
}

std::string length_text(const Fraction& written, const Fraction& unit) {
  Fraction m = written / unit;
  if (m.num == 1 && m.den == 1) return "";
  if (m.den == 1) return std::to_string(m.num);
  if (m.num == 1 && m.den == 2) return "/";
  if (m.num == 1) return "/" + std::to_string(m.den);
  return std::to_string(m.num) + "/" + std::to_string(m.den);
}

struct VoiceOut {
  AbcVoiceInfo info;
  const ScoreVoice* voice = nullptr;
  std::vector<std::string> bars;
  // Per bar: places where a line may break inside the bar (position from the start of the
  // written music, character offset in the bar's text): before a piece or tuplet group that
  // starts on a beat.
  std::vector<std::vector<std::pair<Fraction, size_t>>> bar_breaks;
};

}  // namespace


void AbcWriterConfig::validate() const {
  auto bad = [](const std::string& field, const std::string& value, const std::string& range) {
    throw ConfigError("abc: " + field + " = " + value + " is out of range (" + range + ")");
  };
  if (reference_number < 1) bad("reference_number", std::to_string(reference_number), ">= 1");
  if (!(tempo_bpm == 0.0 || (tempo_bpm >= 20.0 && tempo_bpm <= 400.0)))
    bad("tempo_bpm", std::to_string(tempo_bpm), "0 or 20..400");
  Meter m;
  if (!meter.empty() && !parse_meter(meter, &m))
    bad("meter", "'" + meter + "'", "'' or C, C| or n/d with n 1..16, d 2,4,8,16");
  Key k;
  if (!key.empty() && !parse_key(key, &k))
    bad("key", "'" + key + "'", "'' or A-G[#|b][m|min|maj|dor|phr|lyd|mix|loc|aeo|ion], <= 7 accidentals");
  if (!(unit_denominator == 0 || unit_denominator == 4 || unit_denominator == 8 || unit_denominator == 16 ||
        unit_denominator == 32))
    bad("unit_denominator", std::to_string(unit_denominator), "0, 4, 8, 16 or 32");
  if (!(grid_denominator == 16 || grid_denominator == 32))
    bad("grid_denominator", std::to_string(grid_denominator), "16 or 32");
  if (bars_per_line < 1 || bars_per_line > 32) bad("bars_per_line", std::to_string(bars_per_line), "1..32");
  if (!(max_line_chars == 0 || (max_line_chars >= 30 && max_line_chars <= 1000)))
    bad("max_line_chars", std::to_string(max_line_chars), "0 or 30..1000");
  if (!(chord_cluster_s >= 0 && chord_cluster_s <= 0.2))
    bad("chord_cluster_s", std::to_string(chord_cluster_s), "0..0.2");
  if (!(min_note_s >= 0 && min_note_s <= 0.5)) bad("min_note_s", std::to_string(min_note_s), "0..0.5");
  if (title.find('\n') != std::string::npos || title.find('\r') != std::string::npos)
    bad("title", "(contains a line break)", "one line");
}

namespace {

// ================================================================ the text
// The score layout (score_layout.h: quantised parts, voices, bars, ties, written pieces) →
// bar text per voice → text layout.

// ---- Bar text per voice.
// Writes the notes, chords and rests of one bar: spelling for the key and the accidentals
// that the bar's accidental state needs.
class BarWriter {
 public:
  BarWriter(const Key& key, const Fraction& unit) : key(key), unit(unit) {}
  std::string piece(const ScorePiece& p);

 private:
  const Key& key;
  const Fraction unit;
  std::map<std::pair<char, int>, int> acc_oct;
  std::map<char, int> acc_any;
  // Letters whose accidental state differs between the tools for the rest of the bar: an
  // accidental written on a tie continuation is recorded by abc2midi but not by abcjs, so
  // every later note of that letter in the bar carries its accidental.
  std::set<char> ambiguous;
};

std::string BarWriter::piece(const ScorePiece& p) {
  const Fraction& written = p.written;
  const bool cont = p.tie_in, tie = p.tie_out;
  if (p.pitches.empty()) return "z" + length_text(written, unit);
  std::string t;
  bool chord = p.pitches.size() > 1;
  if (chord) t += "[";
  std::vector<Spelled> sps;
  for (int m : p.pitches) sps.push_back(spell(m, key.tonic_q));
  for (size_t i = 0; i < sps.size(); ++i) {
    const Spelled& sp = sps[i];
    auto ok = std::make_pair(sp.letter, sp.octave);
    // abc2midi 4.84 looks up the accidental state of the lowest octave (C,,,,, to B,,,,,,
    // MIDI 0-11) under the previous letter (after `^C`, `D,,,,,` plays D sharp): notes there
    // always carry their accidental ('=' included), continuations too.
    const bool lowest_octave = sp.octave < 0;
    if (!cont) {
      int impl_pitch = acc_any.count(sp.letter) ? acc_any[sp.letter] : signature_alter(key.fifths, sp.letter);
      int impl_oct = acc_oct.count(ok) ? acc_oct[ok] : signature_alter(key.fifths, sp.letter);
      if (lowest_octave || ambiguous.count(sp.letter) || !(sp.alter == impl_pitch && sp.alter == impl_oct)) {
        t += accidental_text(sp.alter);
        acc_any[sp.letter] = sp.alter;
        acc_oct[ok] = sp.alter;
      }
    } else {
      // A tie continuation carries no accidental and keeps the tied pitch (spec §1.8), as
      // long as every tool reads the bare letter as that pitch. Within a bar abc2midi reads
      // it with the accidental state (an earlier note of the chord, `[^C=c]4- [Cc]4`, makes
      // its C natural: "Could not find note to be tied"), and a chord holding the same
      // letter and octave twice (`[_E=E]`) cannot be told apart without accidentals. Such
      // continuations are written with their accidentals.
      bool twin = false;
      for (size_t j = 0; j < sps.size(); ++j)
        twin = twin || (j != i && sps[j].letter == sp.letter && sps[j].octave == sp.octave);
      bool misread = ambiguous.count(sp.letter) || (acc_any.count(sp.letter) && acc_any[sp.letter] != sp.alter) ||
                     (acc_oct.count(ok) && acc_oct[ok] != sp.alter);
      if (twin || misread || lowest_octave) {
        t += accidental_text(sp.alter);
        ambiguous.insert(sp.letter);
      }
    }
    t += octave_letter(sp);
  }
  if (chord) t += "]";
  t += length_text(written, unit);
  if (tie) t += "-";
  return t;
}

struct BarText {
  std::string out;
  std::vector<std::pair<Fraction, size_t>> breaks;  // see VoiceOut::bar_breaks
};

// A tuplet group: `(3` for three equal single notes/rests (abc2midi warns "Different length
// notes in tuple" for a chord inside (3), else `(3:2:n`.
void write_tuplet_group(const ScoreGroup& g, BarWriter& writer, BarText* bt) {
  std::string& out = bt->out;
  const auto& ps = g.pieces;
  bool has_chord = false;
  for (const auto& p : ps) has_chord = has_chord || p.pitches.size() > 1;
  bool equal3 = ps.size() == 3 && ps[0].written == ps[1].written && ps[1].written == ps[2].written && !has_chord;
  if (!out.empty()) {
    bt->breaks.emplace_back(ps.front().start, out.size());
    out += " ";
  }
  out += equal3 ? "(3" : "(3:2:" + std::to_string(ps.size());
  for (const auto& p : ps) out += writer.piece(p);
}

// A straight event's pieces: a space before a piece on the beat and around pieces longer
// than a beat.
void write_straight_group(const ScoreGroup& g, const ScoreLayout& L, BarWriter& writer, BarText* bt) {
  std::string& out = bt->out;
  for (size_t k = 0; k < g.pieces.size(); ++k) {
    const ScorePiece& p = g.pieces[k];
    const bool long_ev = p.written > L.beat;
    const bool on_beat = L.on_beat(p.start);
    if (!out.empty() && on_beat) bt->breaks.emplace_back(p.start, out.size());
    if (!out.empty() && out.back() != ' ' && (on_beat || long_ev)) out += " ";
    out += writer.piece(p);
    if (long_ev && k + 1 < g.pieces.size()) out += " ";
  }
}

void write_voice_bars(VoiceOut& v, const ScoreLayout& L, const Fraction& unit) {
  const int nbars = L.bars();
  for (int b = 0; b < nbars; ++b) {
    BarWriter writer(L.key, unit);  // the accidental state lasts one bar
    BarText bt;
    for (const ScoreGroup& g : v.voice->bars[static_cast<size_t>(b)].groups) {
      if (g.triplet) write_tuplet_group(g, writer, &bt);
      else write_straight_group(g, L, writer, &bt);
    }
    bt.out += b + 1 == nbars ? " |]" : " |";
    v.bars.push_back(bt.out);
    v.bar_breaks.push_back(bt.breaks);
  }
}

// ---- Text layout: header, voice definitions, systems of bars (the same bars in every voice).
struct TuneHead {
  const Meter* meter;
  Fraction unit;
  double tempo_bpm;
  const Key* key;
};

void write_header(std::ostringstream& os, const std::vector<VoiceOut>& voices, const TuneHead& h,
                  const AbcWriterConfig& cfg) {
  const Meter& meter = *h.meter;
  const Fraction& unit = h.unit;
  const Fraction beat_w = meter.beat;
  const double bpm_written = h.tempo_bpm;
  const Key& key = *h.key;
  std::string title = cfg.title;
  {
    std::string t;
    for (char c : title) {
      if (c == '%') t += "\\%";
      else t += c;
    }
    title = t;
  }
  os << "X:" << cfg.reference_number << "\n";
  os << "T:" << title << "\n";
  os << "M:" << meter.text << "\n";
  os << "L:" << unit.str() << "\n";
  os << "Q:" << beat_w.str() << "=" << static_cast<int>(bpm_written) << "\n";
  if (voices.size() > 1) {
    os << "%%score";
    for (size_t i = 0; i < voices.size(); ++i) {
      const std::string& id = voices[i].info.id;
      if (id.size() > 1 && id.back() == 'R' && i + 1 < voices.size() &&
          voices[i + 1].info.id == id.substr(0, id.size() - 1) + "L") {
        os << " {" << id << " | " << voices[i + 1].info.id << "}";
        ++i;
      } else {
        os << " " << id;
      }
    }
    os << "\n";
  }
  os << "K:" << key.text() << "\n";
  for (const auto& v : voices) {
    os << "V:" << v.info.id << " clef=" << v.info.clef;
    if (!v.info.name.empty()) os << " name=\"" << v.info.name << "\"";
    os << "\n";
    if (v.info.is_drum) os << "%%MIDI channel 10\n";
    else os << "%%MIDI program " << v.info.program << "\n";
  }
}

// bars_per_line bars per system, halved while a voice line would be longer than
// max_line_chars (abcm2ps fails with "Line too much shrunk" on crowded lines).
int bars_in_system(const std::vector<VoiceOut>& voices, int b0, int nbars, const AbcWriterConfig& cfg) {
  int n = cfg.bars_per_line;
  while (n > 1 && cfg.max_line_chars > 0) {
    size_t longest = 0;
    for (const auto& v : voices) {
      size_t len = 3 + v.info.id.size() + 1;
      for (int b = b0; b < std::min(nbars, b0 + n); ++b) len += 1 + v.bars[static_cast<size_t>(b)].size();
      longest = std::max(longest, len);
    }
    if (longest <= static_cast<size_t>(cfg.max_line_chars)) break;
    n = std::max(1, n / 2);
  }
  return n;
}

// A single bar longer than a line (long meters, many short notes) is broken inside,
// at the same beat in every voice, where a piece or tuplet group starts in all of them:
// abcm2ps fails with "Line too much shrunk" when it cannot fit a line. The chosen break
// offsets per voice, in order (none when the bar fits).
std::vector<std::vector<size_t>> inner_bar_breaks(const std::vector<VoiceOut>& voices, size_t b,
                                                  const AbcWriterConfig& cfg) {
  std::vector<std::pair<Fraction, std::vector<size_t>>> common;  // time, offset per voice
  for (const auto& br : voices[0].bar_breaks[b]) {
    std::vector<size_t> offs;
    for (const auto& v : voices) {
      auto it = std::find_if(v.bar_breaks[b].begin(), v.bar_breaks[b].end(),
                             [&](const std::pair<Fraction, size_t>& x) { return x.first == br.first; });
      if (it == v.bar_breaks[b].end()) break;
      offs.push_back(it->second);
    }
    if (offs.size() == voices.size() && (common.empty() || common.back().first != br.first))
      common.emplace_back(br.first, offs);
  }
  std::vector<size_t> from(voices.size(), 0);
  std::vector<std::vector<size_t>> cuts;  // chosen break offsets per voice, in order
  auto too_long = [&](const std::vector<size_t>& a, const std::vector<size_t>* z) {
    for (size_t vi = 0; vi < voices.size(); ++vi) {
      size_t end = z ? (*z)[vi] : voices[vi].bars[b].size();
      if (3 + voices[vi].info.id.size() + 1 + (end - a[vi]) > static_cast<size_t>(cfg.max_line_chars)) return true;
    }
    return false;
  };
  for (size_t k = 0; k < common.size(); ++k) {
    const std::vector<size_t>* next = k + 1 < common.size() ? &common[k + 1].second : nullptr;
    if (common[k].second != from && too_long(from, next)) {
      cuts.push_back(common[k].second);
      from = common[k].second;
    }
  }
  return cuts;
}

void write_broken_bar(std::ostringstream& os, const std::vector<VoiceOut>& voices, int b0,
                      const std::vector<std::vector<size_t>>& cuts) {
  const size_t b = static_cast<size_t>(b0);
  os << "% bar " << (b0 + 1) << ", broken into " << cuts.size() + 1 << " lines\n";
  for (size_t part = 0; part <= cuts.size(); ++part) {
    for (size_t vi = 0; vi < voices.size(); ++vi) {
      const std::string& text = voices[vi].bars[b];
      size_t a = part == 0 ? 0 : cuts[part - 1][vi], z = part < cuts.size() ? cuts[part][vi] : text.size();
      std::string piece = text.substr(a, z - a);
      while (!piece.empty() && piece.front() == ' ') piece.erase(piece.begin());
      while (!piece.empty() && piece.back() == ' ') piece.pop_back();
      os << "[V:" << voices[vi].info.id << "] " << piece << "\n";
    }
  }
}

void write_systems(std::ostringstream& os, const std::vector<VoiceOut>& voices, int nbars, const AbcWriterConfig& cfg) {
  for (int b0 = 0; b0 < nbars;) {
    const int n = bars_in_system(voices, b0, nbars, cfg);
    const int b1 = std::min(nbars, b0 + n);
    if (n == 1 && cfg.max_line_chars > 0) {
      const auto cuts = inner_bar_breaks(voices, static_cast<size_t>(b0), cfg);
      if (!cuts.empty()) {
        write_broken_bar(os, voices, b0, cuts);
        b0 = b1;
        continue;
      }
    }
    os << "% bars " << (b0 + 1) << "-" << b1 << "\n";
    for (const auto& v : voices) {
      os << "[V:" << v.info.id << "]";
      for (int bb = b0; bb < b1; ++bb) os << " " << v.bars[static_cast<size_t>(bb)];
      os << "\n";
    }
    b0 = b1;
  }
}

// ---- The result: the text and what was written.
AbcTune tune_result(std::string text, const ScoreLayout& L, const Fraction& unit) {
  AbcTune tune;
  tune.text = std::move(text);
  const Meter& meter = L.meter;
  const Key& key = L.key;
  tune.meter = meter.text;
  tune.meter_numerator = meter.num;
  tune.meter_denominator = meter.den;
  tune.bar_length = L.bar_len;
  tune.pickup = L.pickup;
  tune.beat = L.beat;
  tune.tempo_bpm = L.tempo_bpm;
  tune.key = key.text();
  tune.key_fifths = key.fifths;
  tune.key_minor = key.minor;
  tune.unit_length = unit;
  tune.bars = L.bars();
  tune.start_s = L.start_s;
  for (const ScoreVoice& v : L.voices) {
    tune.voices.push_back(v.info);
    tune.notes.insert(tune.notes.end(), v.notes.begin(), v.notes.end());
  }
  std::sort(tune.notes.begin(), tune.notes.end(), [](const AbcQuantisedNote& a, const AbcQuantisedNote& b) {
    if (a.voice != b.voice) return a.voice < b.voice;
    if (a.start != b.start) return a.start < b.start;
    return a.pitch < b.pitch;
  });
  return tune;
}

}  // namespace

AnalysisOptions abc_analysis_options(const AbcWriterConfig& cfg) {
  AnalysisOptions ao;
  ao.tempo_bpm = cfg.tempo_bpm;
  ao.meter = cfg.meter;
  ao.key = cfg.key;
  ao.use_midi_metadata = cfg.use_midi_metadata;
  ao.key_profile = cfg.key_profile;
  ao.chord_cluster_s = cfg.chord_cluster_s;
  ao.grid_denominator = cfg.grid_denominator;
  ao.triplets = cfg.triplets;
  return ao;
}

Analysis analyse_for_abc(const NoteSequence& seq, const AbcWriterConfig& cfg) {
  cfg.validate();
  return analyse(prepare_notes(seq.notes, cfg.min_note_s), seq, abc_analysis_options(cfg));
}

AbcTune write_abc(const NoteSequence& seq_in, const AbcWriterConfig& cfg) {
  return write_abc(seq_in, cfg, analyse_for_abc(seq_in, cfg));
}

ScoreLayoutOptions abc_layout_options(const AbcWriterConfig& cfg) {
  ScoreLayoutOptions o;
  o.grid_denominator = cfg.grid_denominator;
  o.split_piano = cfg.split_piano;
  return o;
}

ScoreLayout lay_out_for_abc(const NoteSequence& seq, const AbcWriterConfig& cfg, const Analysis& an) {
  cfg.validate();
  // Filter and merge duplicates (the notes the analysis read), then quantise, voice and bar them.
  return lay_out_score(prepare_notes(seq.notes, cfg.min_note_s), an, abc_layout_options(cfg));
}

AbcTune write_abc(const NoteSequence& seq_in, const AbcWriterConfig& cfg, const Analysis& an) {
  return write_abc(lay_out_for_abc(seq_in, cfg, an), cfg);
}

AbcTune write_abc(const ScoreLayout& layout, const AbcWriterConfig& cfg) {
  cfg.validate();
  // Bar text per voice.
  const Fraction unit = cfg.unit_denominator > 0
                            ? Fraction(1, cfg.unit_denominator)
                            : (layout.meter.bar().value() < 0.75 ? Fraction(1, 16) : Fraction(1, 8));
  std::vector<VoiceOut> voices;
  for (const ScoreVoice& sv : layout.voices) {
    VoiceOut v;
    v.info = sv.info;
    v.voice = &sv;
    write_voice_bars(v, layout, unit);
    voices.push_back(std::move(v));
  }
  // Text layout.
  std::ostringstream os;
  write_header(os, voices, TuneHead{&layout.meter, unit, layout.tempo_bpm, &layout.key}, cfg);
  write_systems(os, voices, layout.bars(), cfg);
  (void)kComponent;
  return tune_result(os.str(), layout, unit);
}

}  // namespace tunescribe
