// abc_writer.cpp — performed notes → one ABC 2.1 tune (see abc_writer.h and
// ../shared/specs/abc.md for the rules followed here).
#include "tunescribe/abc_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
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

struct Spelled {
  char letter = 'C';
  int alter = 0;
  int octave = 4;
};

Spelled spell(int midi, int tonic_q) {
  int pc = ((midi % 12) + 12) % 12;
  Spelled s;
  for (int q = tonic_q - 5; q <= tonic_q + 6; ++q) {
    if (lof_pc(q) == pc) {
      s.letter = lof_letter(q);
      s.alter = lof_alter(q);
      break;
    }
  }
  int v = midi - s.alter;
  s.octave = (v >= 0 ? v / 12 : -((-v + 11) / 12)) - 1;
  return s;
}

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

// ---------------------------------------------------------------- quantisation helpers
struct QNote {
  Fraction start, end;  // whole notes, absolute (bar 0 downbeat = 0)
  int pitch, velocity, program;
  bool drum;
  int part;
};

struct Part {
  int program = 0;
  bool drum = false;
};

bool representable(const Fraction& v) {
  // 2^k or 3*2^k (k may be negative), at most a breve.
  if (v.num <= 0 || v > Fraction(2)) return false;
  auto pow2 = [](int64_t x) { return x > 0 && (x & (x - 1)) == 0; };
  if (v.den == 1) return v.num == 1 || v.num == 2;
  if (!pow2(v.den)) return false;
  return v.num == 1 || v.num == 3;
}

// Largest representable value <= d (whole notes, d > 0) not shorter than `finest`.
Fraction largest_representable(const Fraction& d, const Fraction& finest) {
  Fraction best;
  for (int64_t den = 1; den <= 256; den *= 2) {
    for (int64_t n : {1, 2, 3}) {
      Fraction v(n, den);
      if (!representable(v) || v > d) continue;
      if (v > best) best = v;
    }
  }
  if (best.num == 0) best = finest;
  return best;
}

std::string length_text(const Fraction& written, const Fraction& unit) {
  Fraction m = written / unit;
  if (m.num == 1 && m.den == 1) return "";
  if (m.den == 1) return std::to_string(m.num);
  if (m.num == 1 && m.den == 2) return "/";
  if (m.num == 1) return "/" + std::to_string(m.den);
  return std::to_string(m.num) + "/" + std::to_string(m.den);
}

struct Event {  // a written piece (note, chord or rest) inside one bar
  Fraction start, len;          // actual time, whole notes
  std::vector<int> pitches;     // empty = rest
  bool tie_out = false;         // continues into the next piece
  bool continuation = false;    // continues a tie (no accidental)
};

struct VoiceOut {
  AbcVoiceInfo info;
  std::vector<QNote> notes;  // chord stream after clipping, relative to origin
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

// ================================================================ the pipeline
// filter/merge (prepare_notes) → analysis (analyse) → quantise into parts → voices (hand split,
// chord streams) → bars, pickup and ties → bar text per voice → text layout.

// ---- Quantise into parts: notes snapped to the per-beat grids, one part per instrument.
struct QuantisedParts {
  std::vector<Part> parts;   // melodic parts by program, then drums
  std::vector<QNote> notes;  // in the order of the analysed notes
};

QuantisedParts quantise_parts(const std::vector<Note>& notes, const Analysis& an) {
  const Fraction beat_w = an.meter.meter.beat;
  const BeatGrids& grids = an.grids;
  const std::vector<double>& on_b = an.at.onset;
  const std::vector<double>& off_b = an.at.offset;
  auto snap = [&](double b) {
    int64_t k = grids.beat_index(b);
    int G = grids.at(k).G;
    int64_t j = std::llround((b - static_cast<double>(k)) * G);
    return Fraction(k * G + j, G) * beat_w;  // whole notes
  };
  std::vector<Part> parts;
  std::map<std::pair<bool, int>, int> part_index;
  for (const Note& n : notes) {
    auto key = std::make_pair(n.is_drum, n.is_drum ? 0 : n.program);
    if (!part_index.count(key)) {
      part_index[key] = 0;
    }
  }
  for (auto& kv : part_index) {  // ordered: melodic parts by program, then drums
    kv.second = static_cast<int>(parts.size());
    parts.push_back(Part{kv.first.second, kv.first.first});
  }
  std::vector<QNote> qnotes;
  for (size_t i = 0; i < notes.size(); ++i) {
    const Note& n = notes[i];
    QNote q;
    q.start = snap(on_b[i]);
    q.end = snap(off_b[i]);
    if (q.end <= q.start) {
      int64_t k = grids.beat_index(on_b[i]);
      q.end = q.start + beat_w / Fraction(grids.at(k).G);
    }
    q.pitch = n.pitch;
    q.velocity = n.velocity;
    q.program = n.is_drum ? 0 : n.program;
    q.drum = n.is_drum;
    q.part = part_index[{n.is_drum, q.program}];
    qnotes.push_back(q);
  }

  return QuantisedParts{std::move(parts), std::move(qnotes)};
}

// ---- Voices: a part is one voice, or two (right and left hand) for a wide piano part.
struct PartVoices {
  std::vector<std::vector<QNote>> hands;
  std::vector<AbcVoiceInfo> infos;
};

// Per onset group (pitches ascending), the split index minimising: hand spans over
// 12/14 semitones (+20/+100), notes far on the wrong side (LH above G4, RH below F3),
// and distance to each hand's previous position (voice leading).
void split_hands(const std::vector<QNote>& pn, std::vector<QNote>* rh_out, std::vector<QNote>* lh_out) {
  std::vector<QNote>& rh = *rh_out;
  std::vector<QNote>& lh = *lh_out;
  std::vector<QNote> sorted = pn;
  std::sort(sorted.begin(), sorted.end(), [](const QNote& a, const QNote& b) {
    if (a.start != b.start) return a.start < b.start;
    return a.pitch < b.pitch;
  });
  double last_lh = 48, last_rh = 72;
  size_t gi = 0;
  while (gi < sorted.size()) {
    size_t gj = gi;
    while (gj < sorted.size() && sorted[gj].start == sorted[gi].start) ++gj;
    const size_t m = gj - gi;
    double best_cost = 1e300;
    size_t best_s = 0;
    for (size_t sp = 0; sp <= m; ++sp) {
      double cost = 0;
      auto span_cost = [&](size_t a, size_t b) {  // notes [a, b)
        if (b <= a) return 0.0;
        int span = sorted[gi + b - 1].pitch - sorted[gi + a].pitch;
        return span > 14 ? 100.0 : span > 12 ? 20.0 : 0.0;
      };
      cost += span_cost(0, sp) + span_cost(sp, m);
      for (size_t k = 0; k < m; ++k) {
        int p = sorted[gi + k].pitch;
        if (k < sp) cost += std::max(0, p - 67) + 0.1 * std::abs(p - last_lh);
        else cost += std::max(0, 53 - p) + 0.1 * std::abs(p - last_rh);
      }
      if (cost < best_cost - 1e-9) { best_cost = cost; best_s = sp; }
    }
    double sum_l = 0, sum_r = 0;
    for (size_t k = 0; k < m; ++k) {
      const QNote& q = sorted[gi + k];
      if (k < best_s) { lh.push_back(q); sum_l += q.pitch; }
      else { rh.push_back(q); sum_r += q.pitch; }
    }
    if (best_s > 0) last_lh = sum_l / static_cast<double>(best_s);
    if (best_s < m) last_rh = sum_r / static_cast<double>(m - best_s);
    gi = gj;
  }
}

PartVoices part_voices(const std::vector<QNote>& pn, const Part& P, size_t pi, bool split_piano) {
  PartVoices out;
  std::vector<std::vector<QNote>>& hands = out.hands;
  std::vector<AbcVoiceInfo>& infos = out.infos;
  bool split = false;
  if (split_piano && !P.drum && P.program <= 7) {
    for (size_t a = 0; a < pn.size() && !split; ++a)
      for (size_t b = a + 1; b < pn.size() && pn[b].start < pn[a].end; ++b)
        if (std::abs(pn[b].pitch - pn[a].pitch) > 12) { split = true; break; }
  }
  std::string id_base = P.drum ? "D" : "P" + std::to_string(pi + 1);
  if (split) {
    std::vector<QNote> rh, lh;
    split_hands(pn, &rh, &lh);
    hands = {rh, lh};
    infos.push_back({id_base + "R", gm_program_name(P.program, false), "treble", P.program, false});
    infos.push_back({id_base + "L", "", "bass", P.program, false});
  } else {
    hands = {pn};
    std::string clef = "treble";
    if (P.drum) clef = "perc";
    else {
      std::vector<int> ps;
      for (const QNote& q : pn) ps.push_back(q.pitch);
      std::sort(ps.begin(), ps.end());
      if (!ps.empty() && ps[ps.size() / 2] < 60) clef = "bass";
    }
    infos.push_back({id_base, gm_program_name(P.program, P.drum), clef, P.program, P.drum});
  }
  return out;
}

// One voice's notes → a chord stream: notes of one start share the earliest end, which is
// clipped to (or joined with) the next start; at most 8 distinct pitches per chord.
std::vector<QNote> chord_stream(std::vector<QNote> hv, const Fraction& min_step, size_t* dropped_chord_notes) {
  std::sort(hv.begin(), hv.end(), [](const QNote& a, const QNote& b) {
    if (a.start != b.start) return a.start < b.start;
    return a.pitch < b.pitch;
  });
  // Group by start, clip to a chord stream.
  std::vector<QNote> stream;
  size_t i = 0;
  while (i < hv.size()) {
    size_t j = i;
    Fraction end = hv[i].end;
    while (j < hv.size() && hv[j].start == hv[i].start) { end = std::min(end, hv[j].end); ++j; }
    if (j < hv.size()) {
      Fraction next = hv[j].start;
      if (next < end) end = next;
      Fraction gap = next - end;
      Fraction ioi = next - hv[i].start;
      if (gap > Fraction(0) && (gap <= min_step || gap * Fraction(4) < ioi)) end = next;
    }
    // Distinct pitches of this chord (hv is sorted by pitch within a start).
    std::vector<size_t> chord;
    for (size_t k = i; k < j; ++k)
      if (chord.empty() || hv[chord.back()].pitch != hv[k].pitch) chord.push_back(k);
    // abcm2ps draws at most 8 heads per chord ("Too many notes in chord"):
    // keep the outer 4 + 4 pitches, which carry the melody and the bass.
    constexpr size_t kMaxChordNotes = 8;
    if (chord.size() > kMaxChordNotes) {
      *dropped_chord_notes += chord.size() - kMaxChordNotes;
      chord.erase(chord.begin() + kMaxChordNotes / 2, chord.end() - kMaxChordNotes / 2);
    }
    for (size_t k : chord) {
      QNote q = hv[k];
      q.end = end;
      stream.push_back(q);
    }
    i = j;
  }
  return stream;
}

std::vector<VoiceOut> make_voices(const QuantisedParts& qp, const AbcWriterConfig& cfg) {
  std::vector<VoiceOut> voices;
  size_t dropped_chord_notes = 0;
  const Fraction min_step(1, cfg.grid_denominator);
  for (size_t pi = 0; pi < qp.parts.size(); ++pi) {
    std::vector<QNote> pn;
    for (const QNote& q : qp.notes)
      if (q.part == static_cast<int>(pi)) pn.push_back(q);
    PartVoices pv = part_voices(pn, qp.parts[pi], pi, cfg.split_piano);
    for (size_t h = 0; h < pv.hands.size(); ++h) {
      VoiceOut v;
      v.info = pv.infos[h];
      v.notes = chord_stream(pv.hands[h], min_step, &dropped_chord_notes);
      voices.push_back(v);
    }
  }
  if (dropped_chord_notes > 0)
    log_warn("abc", std::to_string(dropped_chord_notes) +
                        " inner chord notes left out of the ABC (more than 8 at once in one voice)");
  if (voices.empty()) {
    VoiceOut v;
    v.info = {"P1", gm_program_name(0, false), "treble", 0, false};
    voices.push_back(v);
  }
  return voices;
}

// ---- Bars, pickup and ties: the written music starts at the first note's beat (a pickup bar
// for one voice), notes move to that origin, the last chord rings to the end of the bar.
struct BarLayout {
  Fraction origin;   // position 0 of the written music, in the analysis' whole notes
  Fraction pickup;   // length of a short first bar; 0 when none
  Fraction total;    // length of the written music (whole bars)
  Fraction beat;     // written beat
  Fraction bar_len;
  std::vector<Fraction> bar_starts;
  std::set<Fraction> trip_starts;  // starts of triplet beats (from the origin)
  int bars() const { return static_cast<int>(bar_starts.size()); }
  Fraction bar_end(int b) const { return b + 1 < bars() ? bar_starts[static_cast<size_t>(b + 1)] : total; }
  bool on_beat(const Fraction& pos) const { return ((pos + origin) / beat).den == 1; }
};

BarLayout lay_out_bars(std::vector<VoiceOut>& voices, const Meter& meter, const std::set<int64_t>& triplet_beats) {
  const Fraction beat_w = meter.beat;
  const Fraction bar_len = meter.bar();
  Fraction first, last;
  bool any = false;
  for (const auto& v : voices)
    for (const auto& q : v.notes) {
      if (!any || q.start < first) first = q.start;
      if (!any || q.end > last) last = q.end;
      any = true;
    }
  if (!any) { first = Fraction(0); last = bar_len; }
  {
    // A tune may not start inside a triplet beat: start at that beat instead.
    int64_t k = floor_int(first / beat_w);
    if (triplet_beats.count(k) && Fraction(k) * beat_w != first) first = Fraction(k) * beat_w;
  }
  Fraction bar0 = Fraction(floor_int(first / bar_len)) * bar_len;
  Fraction pickup = first - bar0 == Fraction(0) ? Fraction(0) : bar0 + bar_len - first;
  if (voices.size() > 1 && pickup > Fraction(0)) {
    // abc2abc checks the first bar of the second voice as a full bar: with several
    // voices a pickup is written as a full bar starting with rests.
    first = bar0;
    pickup = Fraction(0);
  }
  const Fraction origin = first;
  for (auto& v : voices)
    for (auto& q : v.notes) { q.start = q.start - origin; q.end = q.end - origin; }
  Fraction total = last - origin;
  std::vector<Fraction> bar_starts;
  {
    Fraction s(0);
    if (pickup > Fraction(0)) { bar_starts.push_back(s); s = pickup; }
    while (s < total) { bar_starts.push_back(s); s = s + bar_len; }
    if (bar_starts.empty()) bar_starts.push_back(Fraction(0));
    total = s;
    if (total == Fraction(0)) total = bar_len;
  }
  // The last chord of a voice has no next onset to be joined to: let it ring to the
  // end of the final bar when it stops less than a beat before it (a release, not a rest).
  for (auto& v : voices) {
    if (v.notes.empty()) continue;
    Fraction last_start = v.notes.back().start;
    for (auto& q : v.notes)
      if (q.start == last_start && q.end < total && total - q.end < beat_w) q.end = total;
  }
  BarLayout L{origin, pickup, total, beat_w, bar_len, bar_starts, {}};
  for (int64_t k : triplet_beats) L.trip_starts.insert(Fraction(k) * beat_w - origin);
  return L;
}

// ---- Bar text per voice.
struct Seg {  // a chord (or a rest: no pitches) of a chord stream
  Fraction s, e;
  std::vector<int> p;
};

// Chord stream → segments (start, end, pitches), rests filling the gaps up to `total`.
std::vector<Seg> voice_segments(const std::vector<QNote>& notes, const Fraction& total) {
  std::vector<Seg> segs;
  size_t i = 0;
  Fraction cur(0);
  while (i < notes.size()) {
    size_t j = i;
    Seg sg{notes[i].start, notes[i].end, {}};
    while (j < notes.size() && notes[j].start == notes[i].start) { sg.p.push_back(notes[j].pitch); ++j; }
    if (cur < sg.s) segs.push_back(Seg{cur, sg.s, {}});
    segs.push_back(sg);
    cur = sg.e;
    i = j;
  }
  if (cur < total) segs.push_back(Seg{cur, total, {}});
  return segs;
}

// Pieces of the segments within the bar [bs, be), cut at triplet-beat boundaries. *si: the
// first segment that may still reach into this bar (advanced).
std::vector<Event> bar_events(const std::vector<Seg>& segs, size_t* si_io, const Fraction& bs, const Fraction& be,
                              const BarLayout& L) {
  const Fraction& beat_w = L.beat;
  const std::set<Fraction>& trip_starts = L.trip_starts;
  size_t& si = *si_io;
  std::vector<Event> evs;
  while (si < segs.size() && segs[si].e <= bs) ++si;
  for (size_t k = si; k < segs.size() && segs[k].s < be; ++k) {
    const Seg& sg = segs[k];
    Fraction s = std::max(sg.s, bs), e = std::min(sg.e, be);
    std::vector<Fraction> cuts = {s};
    for (auto it = trip_starts.lower_bound(s); it != trip_starts.end() && *it < e; ++it) {
      if (*it > s) cuts.push_back(*it);
      if (*it + beat_w < e) cuts.push_back(*it + beat_w);
    }
    for (auto it = trip_starts.lower_bound(s - beat_w); it != trip_starts.end() && *it < s; ++it)
      if (*it + beat_w > s && *it + beat_w < e) cuts.push_back(*it + beat_w);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    cuts.push_back(e);
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      Event ev;
      ev.start = cuts[c];
      ev.len = cuts[c + 1] - cuts[c];
      ev.pitches = sg.p;
      ev.continuation = !sg.p.empty() && cuts[c] > sg.s;
      ev.tie_out = !sg.p.empty() && cuts[c + 1] < sg.e;
      evs.push_back(ev);
    }
  }
  return evs;
}

// Writes the notes, chords and rests of one bar: spelling for the key and the accidentals
// that the bar's accidental state needs.
class BarWriter {
 public:
  BarWriter(const Key& key, const Fraction& unit) : key(key), unit(unit) {}
  std::string piece(const Event& ev, const Fraction& written, bool cont, bool tie);

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

std::string BarWriter::piece(const Event& ev, const Fraction& written, bool cont, bool tie) {
  if (ev.pitches.empty()) return "z" + length_text(written, unit);
  std::string t;
  bool chord = ev.pitches.size() > 1;
  if (chord) t += "[";
  std::vector<Spelled> sps;
  for (int p : ev.pitches) sps.push_back(spell(p, key.tonic_q));
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

// A triplet beat starting at evs[e] whose pieces are not on the straight grid is written as one
// tuplet group: true, and e moves past it; false when it is written straight.
bool write_tuplet_group(const std::vector<Event>& evs, size_t* e_io, const BarLayout& L, const Fraction& finest,
                        BarWriter& writer, BarText* bt) {
  size_t& e = *e_io;
  const Event& ev = evs[e];
  auto tit = L.trip_starts.find(ev.start);
  if (tit == L.trip_starts.end()) return false;
  const Fraction tb = *tit;
  const Fraction& beat_w = L.beat;
  std::string& out = bt->out;
  size_t g_end = e;
  bool needs = false;
  while (g_end < evs.size() && evs[g_end].start < tb + beat_w) {
    Fraction rs = (evs[g_end].start - tb) / finest, rl = evs[g_end].len / finest;
    if (rs.den != 1 || rl.den != 1) needs = true;
    ++g_end;
  }
  if (!needs) return false;
  std::vector<std::string> toks;
  std::vector<Fraction> wl;
  for (size_t k = e; k < g_end; ++k) {
    Fraction w = evs[k].len * Fraction(3, 2);
    bool cont = evs[k].continuation;
    while (w > Fraction(0)) {
      Fraction piece = largest_representable(w, finest);
      if (piece > w) piece = w;
      w = w - piece;
      bool tie = evs[k].pitches.empty() ? false : (w > Fraction(0) || evs[k].tie_out);
      toks.push_back(writer.piece(evs[k], piece, cont, tie));
      wl.push_back(piece);
      cont = true;
    }
  }
  // Plain (3 only for three equal single notes/rests: abc2midi warns
  // "Different length notes in tuple" for a chord inside (3.
  bool has_chord = false;
  for (size_t k = e; k < g_end; ++k) has_chord = has_chord || evs[k].pitches.size() > 1;
  bool equal3 = toks.size() == 3 && wl[0] == wl[1] && wl[1] == wl[2] && !has_chord;
  if (!out.empty()) {
    bt->breaks.emplace_back(ev.start, out.size());
    out += " ";
  }
  out += equal3 ? "(3" : "(3:2:" + std::to_string(toks.size());
  for (const auto& t : toks) out += t;
  e = g_end;
  return true;
}

// A straight event: split into representable pieces, at beat boundaries when off-beat.
void write_straight_event(const Event& ev, const BarLayout& L, const Fraction& finest, BarWriter& writer, BarText* bt) {
  const Fraction& origin = L.origin;
  const Fraction& beat_w = L.beat;
  std::string& out = bt->out;
  auto on_beat = [&](const Fraction& pos) { return L.on_beat(pos); };
  Fraction s = ev.start, rem = ev.len;
  bool cont = ev.continuation;
  while (rem > Fraction(0)) {
    Fraction rel = (s + origin) / beat_w;
    Fraction chunk = rem;
    if (rel.den != 1) {
      Fraction nb = Fraction(floor_int(rel) + 1) * beat_w - origin;
      if (s + rem > nb) chunk = nb - s;
    }
    Fraction piece = largest_representable(chunk, finest);
    if (piece > chunk) piece = chunk;
    rem = rem - piece;
    bool tie = ev.pitches.empty() ? false : (rem > Fraction(0) || ev.tie_out);
    bool long_ev = piece > beat_w;
    if (!out.empty() && on_beat(s)) bt->breaks.emplace_back(s, out.size());
    if (!out.empty() && out.back() != ' ' && (on_beat(s) || long_ev)) out += " ";
    out += writer.piece(ev, piece, cont, tie);
    if (long_ev && rem > Fraction(0)) out += " ";
    s = s + piece;
    cont = true;
  }
}

void write_voice_bars(VoiceOut& v, const BarLayout& L, const Key& key, const Fraction& unit, const Fraction& finest) {
  const std::vector<Seg> segs = voice_segments(v.notes, L.total);
  size_t si = 0;
  const int nbars = L.bars();
  for (int b = 0; b < nbars; ++b) {
    const std::vector<Event> evs = bar_events(segs, &si, L.bar_starts[static_cast<size_t>(b)], L.bar_end(b), L);
    BarWriter writer(key, unit);  // the accidental state lasts one bar
    BarText bt;
    size_t e = 0;
    while (e < evs.size()) {
      if (write_tuplet_group(evs, &e, L, finest, writer, &bt)) continue;
      write_straight_event(evs[e], L, finest, writer, &bt);
      ++e;
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
AbcTune tune_result(std::string text, const std::vector<VoiceOut>& voices, const Analysis& an, const BarLayout& L,
                    const Fraction& unit) {
  AbcTune tune;
  tune.text = std::move(text);
  const Meter& meter = an.meter.meter;
  const Key& key = an.key.key;
  const Fraction& beat_w = meter.beat;
  const Fraction& bar_len = L.bar_len;
  const Fraction& pickup = L.pickup;
  const Fraction& origin = L.origin;
  const double bpm_written = an.tempo_bpm;
  const int nbars = L.bars();
  tune.meter = meter.text;
  tune.meter_numerator = meter.num;
  tune.meter_denominator = meter.den;
  tune.bar_length = bar_len;
  tune.pickup = pickup;
  tune.beat = beat_w;
  tune.tempo_bpm = bpm_written;
  tune.key = key.text();
  tune.key_fifths = key.fifths;
  tune.key_minor = key.minor;
  tune.unit_length = unit;
  tune.bars = nbars;
  {
    double b_origin = origin.value() / beat_w.value();  // in beats
    tune.start_s = an.beats.map.time_of(b_origin * an.meter.units_per_beat() + an.meter.phase_units());
  }
  for (size_t vi = 0; vi < voices.size(); ++vi) {
    tune.voices.push_back(voices[vi].info);
    for (const QNote& q : voices[vi].notes) {
      AbcQuantisedNote n;
      n.voice = static_cast<int>(vi);
      n.pitch = q.pitch;
      n.start = q.start;
      n.length = q.end - q.start;
      n.velocity = q.velocity;
      n.program = q.program;
      n.is_drum = q.drum;
      tune.notes.push_back(n);
    }
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

AbcTune write_abc(const NoteSequence& seq_in, const AbcWriterConfig& cfg, const Analysis& an) {
  cfg.validate();
  // 1. Filter and merge duplicates.
  const std::vector<Note> notes = prepare_notes(seq_in.notes, cfg.min_note_s);
  // 2. Analysis (beats and tempo, meter, per-beat grids, key): analyse_for_abc, given.
  // 3. Quantise into parts.
  const QuantisedParts parts = quantise_parts(notes, an);
  // 4. Voices (piano hand split) and chord streams.
  std::vector<VoiceOut> voices = make_voices(parts, cfg);
  // 5. Origin, pickup, bars; ties to the end of the last bar.
  const BarLayout layout = lay_out_bars(voices, an.meter.meter, an.grids.triplet_beats());
  // 6. Bar text per voice.
  const Fraction unit = cfg.unit_denominator > 0
                            ? Fraction(1, cfg.unit_denominator)
                            : (an.meter.meter.bar().value() < 0.75 ? Fraction(1, 16) : Fraction(1, 8));
  const Fraction finest(1, cfg.grid_denominator);
  for (auto& v : voices) write_voice_bars(v, layout, an.key.key, unit, finest);
  // 7. Text layout.
  std::ostringstream os;
  write_header(os, voices, TuneHead{&an.meter.meter, unit, an.tempo_bpm, &an.key.key}, cfg);
  write_systems(os, voices, layout.bars(), cfg);
  (void)kComponent;
  return tune_result(os.str(), voices, an, layout, unit);
}

}  // namespace tunescribe
