// musicxml_writer.cpp — a ScoreLayout → MusicXML 4.0 score-partwise (see musicxml_writer.h).
#include "tunescribe/musicxml_writer.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <climits>

#include "tunescribe/errors.h"
#include "tunescribe/notes.h"
#include "tunescribe/xml_text.h"

namespace tunescribe {

void MusicXmlConfig::validate() const {
  if (title.find('\n') != std::string::npos || title.find('\r') != std::string::npos)
    throw ConfigError("musicxml: title = (contains a line break) is out of range (one line)");
}

namespace {

// ---- clefs
int letter_index(char l) { return std::string("CDEFGAB").find(l); }
int diatonic_step(const SpelledPitch& s) { return s.octave * 7 + letter_index(s.letter); }

const XmlClef kTreble{"G", 2, 0}, kTreble8va{"G", 2, 1}, kTreble8vb{"G", 2, -1}, kBass{"F", 4, 0},
    kBass8vb{"F", 4, -1}, kAlto{"C", 3, 0}, kPerc{"percussion", 2, 0};

// Diatonic step of the bottom staff line.
int bottom_line(const XmlClef& c) {
  int ref = c.sign == "G" ? 32 : c.sign == "F" ? 24 : 28;  // G4, F3, C4 sit on `line`
  return ref - 2 * (c.line - 1) + 7 * c.octave_change;
}

int ledger_lines(int step, const XmlClef& c) {
  const int lo = bottom_line(c), hi = lo + 8;
  if (step < lo) return (lo - step) / 2;
  if (step > hi) return (step - hi) / 2;
  return 0;
}

// The clefs an instrument is written in, its usual one first.
std::vector<XmlClef> allowed_clefs(const WrittenVoiceInfo& info) {
  const int p = info.program;
  const std::string& id = info.id;
  const bool hand = id.size() > 1 && id[0] == 'P' && (id.back() == 'R' || id.back() == 'L');
  if (info.is_drum) return {kPerc};
  if (hand) return id.back() == 'R' ? std::vector<XmlClef>{kTreble, kTreble8va, kBass}
                                    : std::vector<XmlClef>{kBass, kBass8vb, kTreble};
  if (p >= 24 && p <= 31) return {kTreble8vb, kTreble};                     // guitars
  if ((p >= 32 && p <= 39) || p == 43) return {kBass8vb, kBass};            // basses, contrabass
  if (p == 41) return {kAlto, kTreble};                                     // viola
  if (p == 42) return {kBass, kTreble};                                     // cello
  if (p == 58 || p == 70) return {kBass, kBass8vb};                         // tuba, bassoon
  if (p == 57) return {kBass, kTreble};                                     // trombone
  if (p == 40 || p == 44 || p == 56 || (p >= 64 && p <= 69) || p == 71 || (p >= 72 && p <= 79))
    return {kTreble, kTreble8va};                                           // violin, winds, trumpet
  return {kTreble, kBass, kTreble8va, kBass8vb};
}

}  // namespace

std::vector<XmlClef> musicxml_staff_clefs(const ScoreLayout& L, size_t vi) {
  const ScoreVoice& v = L.voices.at(vi);
  const std::vector<XmlClef> allowed = allowed_clefs(v.info);
  std::vector<XmlClef> out(static_cast<size_t>(L.bars()), allowed.front());
  if (allowed.size() == 1) return out;
  // Diatonic steps of the notes per bar.
  std::vector<std::vector<int>> steps(static_cast<size_t>(L.bars()));
  std::vector<int> all;
  for (size_t b = 0; b < v.bars.size(); ++b)
    for (const auto& g : v.bars[b].groups)
      for (const auto& p : g.pieces)
        for (int m : p.pitches) {
          int st = diatonic_step(spell_pitch(m, L.key.tonic_q));
          steps[b].push_back(st);
          all.push_back(st);
        }
  // The voice's clef: fewest ledger lines in all; another clef than the instrument's usual one
  // must save half a line a note (treble or bass) or a whole line a note (octave clefs, alto),
  // so that a few high or low bars do not move the whole staff (those bars change clef below).
  XmlClef base = allowed.front();
  double best = 1e300;
  for (size_t k = 0; k < allowed.size(); ++k) {
    const bool plain = allowed[k].octave_change == 0 && (allowed[k].sign == "G" || allowed[k].sign == "F");
    double cost = k == 0 ? 0.0 : (plain ? 0.5 : 1.0) * static_cast<double>(all.size());
    for (int st : all) cost += ledger_lines(st, allowed[k]);
    if (cost < best) { best = cost; base = allowed[k]; }
  }
  auto max_ledger = [](const std::vector<int>& s, const XmlClef& c) {
    int m = 0;
    for (int st : s) m = std::max(m, ledger_lines(st, c));
    return m;
  };
  XmlClef cur = base;
  for (size_t b = 0; b < steps.size(); ++b) {
    if (steps[b].empty()) { out[b] = cur; continue; }
    XmlClef pick = base;
    if (max_ledger(steps[b], base) >= 5) {
      int bm = max_ledger(steps[b], base);
      for (const XmlClef& c : allowed) {
        int m = max_ledger(steps[b], c);
        if (m < bm || (m == bm && c == cur)) { bm = m; pick = c; }
      }
    }
    out[b] = cur = pick;
  }
  return out;
}

namespace {

int64_t lcm64(int64_t a, int64_t b) { return a / std::gcd(a, b) * b; }

const std::map<std::pair<int64_t, int64_t>, std::string>& type_names() {
  static const std::map<std::pair<int64_t, int64_t>, std::string> names = {
      {{2, 1}, "breve"}, {{1, 1}, "whole"}, {{1, 2}, "half"}, {{1, 4}, "quarter"}, {{1, 8}, "eighth"},
      {{1, 16}, "16th"}, {{1, 32}, "32nd"}, {{1, 64}, "64th"}, {{1, 128}, "128th"}, {{1, 256}, "256th"},
      {{1, 512}, "512th"}, {{1, 1024}, "1024th"}};
  return names;
}

// Note type and dots of a written value (2^k or 3 * 2^k whole notes); "" when it is neither.
std::pair<std::string, int> note_type(const Fraction& w) {
  Fraction base = w;
  int dots = 0;
  if (w.num == 3) { base = w * Fraction(2, 3); dots = 1; }
  auto it = type_names().find({base.num, base.den});
  if (it == type_names().end()) return {"", 0};
  return {it->second, dots};
}

// How a piece is notated: type, dots and time modification (actual notes in the time of normal).
struct Notation {
  std::string type;
  int dots = 0;
  int64_t actual = 1, normal = 1;
};

Notation notation_of(const ScorePiece& p, bool triplet) {
  Notation n;
  auto t = note_type(p.written);
  if (!t.first.empty()) {
    n.type = t.first;
    n.dots = t.second;
    if (triplet) { n.actual = 3; n.normal = 2; }
    return n;
  }
  // A remainder shorter than the grid that is no 2^k value (ABC writes e.g. `z/96`): the
  // longest type not longer than it, stretched by a time modification to its exact length.
  Fraction best(1, 1024);
  for (const auto& kv : type_names()) {
    Fraction v(kv.first.first, kv.first.second);
    if (v <= p.length && v > best) best = v;
  }
  n.type = type_names().at({best.num, best.den});
  const Fraction f = p.length / best;  // normal / actual
  n.normal = f.num;
  n.actual = f.den;
  return n;
}

bool standard_value(const Fraction& w) { return !note_type(w).first.empty(); }

// Greedy split of a written length into 2^k / 3 * 2^k values (at least a 1024th); false when a
// remainder is left.
bool split_written(Fraction w, std::vector<Fraction>* out) {
  while (w > Fraction(0)) {
    Fraction best;
    for (const auto& kv : type_names())
      for (int64_t m : {2, 3}) {
        Fraction v = Fraction(kv.first.first, kv.first.second) * Fraction(m, 2);  // plain and dotted
        if (v <= w && v > best && standard_value(v)) best = v;
      }
    if (best.num == 0) return false;
    out->push_back(best);
    w = w - best;
  }
  return true;
}

// The layout writes a straight beat holding onsets on a triplet grid (a note snapped to the
// triplet grid of the next beat) with pieces such as 1/768 (ABC `z/96`), which no note type
// shows. Such a beat of a simple meter is written here as one 3:2 tuplet instead: its
// chords/rests re-split at 3/2 of their length. Other groups are kept (straight groups as
// single pieces). A beat that cannot be written so keeps its pieces (notation_of stretches them).
std::vector<ScoreGroup> renotate_odd_beats(const std::vector<ScoreGroup>& in, const ScoreLayout& L) {
  auto beat_index = [&](const Fraction& pos) { return floor_int((pos + L.origin) / L.beat); };
  auto beat_start = [&](int64_t k) { return Fraction(k) * L.beat - L.origin; };
  const bool dyadic_beat = standard_value(L.beat) && L.beat.num == 1;
  std::set<int64_t> odd;
  for (const auto& g : in)
    if (!g.triplet)
      for (const auto& p : g.pieces)
        if (!standard_value(p.written)) odd.insert(beat_index(p.start));
  if (odd.empty() || !dyadic_beat) return in;
  // A beat can be re-notated when every piece in it lies inside it and none is in a tuplet.
  std::set<int64_t> ok = odd;
  for (const auto& g : in)
    for (const auto& p : g.pieces) {
      const int64_t k = beat_index(p.start);
      const bool inside = p.start + p.length <= beat_start(k) + L.beat;
      if (ok.count(k) && (g.triplet || !inside)) ok.erase(k);
      if (!inside) {  // a piece reaching into later beats
        for (int64_t j = k + 1; beat_start(j) < p.start + p.length; ++j) ok.erase(j);
      }
    }
  std::vector<ScoreGroup> out;
  int64_t open = INT64_MIN;  // the beat whose pieces are being collected into out.back()
  std::vector<ScorePiece> segs;  // merged chords/rests of that beat
  bool failed = false;
  auto close = [&]() {
    if (open == INT64_MIN) return;
    ScoreGroup& g = out.back();
    g.triplet = true;
    for (const ScorePiece& sg : segs) {
      std::vector<Fraction> ws;
      if (!split_written(sg.length * Fraction(3, 2), &ws)) failed = true;
      Fraction s = sg.start;
      for (size_t i = 0; i < ws.size(); ++i) {
        ScorePiece p = sg;
        p.start = s;
        p.written = ws[i];
        p.length = ws[i] * Fraction(2, 3);
        p.tie_in = i == 0 ? sg.tie_in : !sg.pitches.empty();
        p.tie_out = i + 1 == ws.size() ? sg.tie_out : !sg.pitches.empty();
        g.pieces.push_back(p);
        s = s + p.length;
      }
    }
    segs.clear();
    open = INT64_MIN;
  };
  for (const auto& g : in) {
    if (g.triplet) {
      close();
      out.push_back(g);
      continue;
    }
    for (const auto& p : g.pieces) {
      const int64_t k = beat_index(p.start);
      if (!ok.count(k)) {
        close();
        out.push_back(ScoreGroup{false, {p}});
        continue;
      }
      if (open != k) {
        close();
        open = k;
        out.push_back(ScoreGroup{true, {}});
      }
      const bool joins = !segs.empty() && segs.back().pitches == p.pitches &&
                         (p.pitches.empty() || (segs.back().tie_out && p.tie_in));
      if (joins) {
        segs.back().length = segs.back().length + p.length;
        segs.back().tie_out = p.tie_out;
      } else {
        segs.push_back(p);
      }
    }
  }
  close();
  // A segment whose 3/2 length is no sum of note values (not expected): all kept as they were.
  return failed ? in : out;
}

std::string mode_name(const Key& k) {
  if (k.mode.empty()) return "major";
  if (k.mode == "m") return "minor";
  static const std::map<std::string, std::string> m = {
      {"Dor", "dorian"}, {"Phr", "phrygian"}, {"Lyd", "lydian"}, {"Mix", "mixolydian"}, {"Loc", "locrian"}};
  auto it = m.find(k.mode);
  return it == m.end() ? "major" : it->second;
}

std::string accidental_name(int alter) {
  switch (alter) {
    case -2: return "flat-flat";
    case -1: return "flat";
    case 1: return "sharp";
    case 2: return "double-sharp";
    default: return "natural";
  }
}

std::string clef_xml(const XmlClef& c, int number, int staves) {
  std::ostringstream o;
  o << "<clef";
  if (staves > 1) o << " number=\"" << number << "\"";
  o << "><sign>" << c.sign << "</sign>";
  if (c.sign != "percussion") o << "<line>" << c.line << "</line>";
  if (c.octave_change != 0) o << "<clef-octave-change>" << c.octave_change << "</clef-octave-change>";
  o << "</clef>";
  return o.str();
}

// A staff of a part: one voice of the layout, or none (measure rests).
struct Staff {
  int voice = -1;  // index into layout.voices; -1 = empty staff
  std::vector<XmlClef> clefs;
};

struct Part {
  std::string id;  // "P1", "D"
  std::string name;
  int program = 0;
  bool drum = false;
  int channel = 1;
  std::vector<Staff> staves;
};

std::vector<Part> make_parts(const ScoreLayout& L, const MusicXmlConfig& cfg) {
  std::vector<Part> parts;
  int next_channel = 1;
  for (size_t vi = 0; vi < L.voices.size(); ++vi) {
    const WrittenVoiceInfo& info = L.voices[vi].info;
    std::string base = info.id;
    const bool hand = base.size() > 1 && base[0] == 'P' && (base.back() == 'R' || base.back() == 'L');
    if (hand) base.pop_back();
    Staff st;
    st.voice = static_cast<int>(vi);
    st.clefs = musicxml_staff_clefs(L, vi);
    if (!parts.empty() && parts.back().id == base) {
      parts.back().staves.push_back(st);
      continue;
    }
    Part p;
    p.id = base;
    p.name = info.name.empty() ? gm_program_name(info.program, info.is_drum) : info.name;
    p.program = info.program;
    p.drum = info.is_drum;
    if (p.drum) {
      p.channel = 10;
    } else {
      p.channel = next_channel;
      next_channel = next_channel % 16 + 1;
      if (next_channel == 10) next_channel = 11;
    }
    p.staves.push_back(st);
    if (!hand && !p.drum && p.program <= 7 && cfg.piano_grand_staff) {
      // An unsplit piano: the voice on the staff of its clef, measure rests on the other.
      Staff empty;
      empty.clefs.assign(static_cast<size_t>(L.bars()), kBass);
      const bool low = !st.clefs.empty() && st.clefs.front().sign == "F";
      if (low) {
        empty.clefs.assign(static_cast<size_t>(L.bars()), kTreble);
        p.staves.insert(p.staves.begin(), empty);
      } else {
        p.staves.push_back(empty);
      }
    }
    parts.push_back(p);
  }
  return parts;
}

// Display position of a drum note on the percussion staff (E4 .. F5 by pitch).
SpelledPitch drum_display(int pitch) {
  static const char* letters = "CDEFGAB";
  int step = 30 + ((pitch - 35) % 9 + 9) % 9;
  SpelledPitch s;
  s.letter = letters[step % 7];
  s.octave = step / 7;
  return s;
}

class Writer {
 public:
  Writer(const ScoreLayout& L, const MusicXmlConfig& cfg) : L_(L), cfg_(cfg) {}
  std::string run();

 private:
  const ScoreLayout& L_;
  const MusicXmlConfig& cfg_;
  std::ostringstream o_;
  int64_t divisions_ = 1;  // per quarter note
  std::vector<std::vector<std::vector<ScoreGroup>>> groups_;  // [voice][bar]: as written (renotate_odd_beats)
  const Part* first_part_ = nullptr;  // carries the tempo

  int64_t dur(const Fraction& whole) const {
    Fraction d = whole * Fraction(4 * divisions_);
    if (d.den != 1) throw std::logic_error("musicxml: duration " + whole.str() + " is not a whole number of divisions");
    return d.num;
  }
  void choose_divisions();
  void part_list(const std::vector<Part>& parts);
  void part(const Part& p);
  void staff_measure(const Part& p, size_t s, int bar, int xml_voice);
};

void Writer::choose_divisions() {
  int64_t d = 1;
  auto take = [&](const Fraction& f) { d = lcm64(d, (f * Fraction(4)).den); };
  take(L_.bar_len);
  take(L_.pickup);
  groups_.clear();
  for (const auto& v : L_.voices) {
    groups_.emplace_back();
    for (const auto& b : v.bars) {
      take(b.end - b.start);
      groups_.back().push_back(renotate_odd_beats(b.groups, L_));
      for (const auto& g : groups_.back().back())
        for (const auto& p : g.pieces) take(p.length);
    }
  }
  divisions_ = d;
}

void Writer::part_list(const std::vector<Part>& parts) {
  o_ << "  <part-list>\n";
  for (const Part& p : parts) {
    o_ << "    <score-part id=\"" << p.id << "\">\n";
    o_ << "      <part-name>" << xml_escape(p.name) << "</part-name>\n";
    if (p.drum) {
      std::vector<int> pitches;
      for (const auto& st : p.staves)
        if (st.voice >= 0)
          for (const auto& n : L_.voices[static_cast<size_t>(st.voice)].notes) pitches.push_back(n.pitch);
      std::sort(pitches.begin(), pitches.end());
      pitches.erase(std::unique(pitches.begin(), pitches.end()), pitches.end());
      for (int m : pitches)
        o_ << "      <score-instrument id=\"" << p.id << "-I" << m << "\"><instrument-name>"
           << xml_escape(gm_program_name(m, true)) << "</instrument-name></score-instrument>\n";
      for (int m : pitches)
        o_ << "      <midi-instrument id=\"" << p.id << "-I" << m << "\"><midi-channel>10</midi-channel>"
           << "<midi-unpitched>" << m + 1 << "</midi-unpitched></midi-instrument>\n";
    } else {
      o_ << "      <score-instrument id=\"" << p.id << "-I1\"><instrument-name>" << xml_escape(p.name)
         << "</instrument-name></score-instrument>\n";
      o_ << "      <midi-instrument id=\"" << p.id << "-I1\"><midi-channel>" << p.channel
         << "</midi-channel><midi-program>" << p.program + 1 << "</midi-program></midi-instrument>\n";
    }
    o_ << "    </score-part>\n";
  }
  o_ << "  </part-list>\n";
}

// One staff's notes of one measure.
void Writer::staff_measure(const Part& p, size_t s, int bar, int xml_voice) {
  const Staff& st = p.staves[s];
  const int nst = static_cast<int>(p.staves.size());
  auto staff_tag = [&]() {
    return nst > 1 ? "        <staff>" + std::to_string(s + 1) + "</staff>\n" : std::string();
  };
  const Fraction bs = L_.bar_starts[static_cast<size_t>(bar)], be = L_.bar_end(bar);
  if (st.voice < 0) {
    o_ << "      <note>\n        <rest measure=\"yes\"/>\n        <duration>" << dur(be - bs) << "</duration>\n"
       << "        <voice>" << xml_voice << "</voice>\n" << staff_tag() << "      </note>\n";
    return;
  }
  const std::vector<ScoreGroup>& groups = groups_[static_cast<size_t>(st.voice)][static_cast<size_t>(bar)];
  // Flatten the pieces with their tuplet position.
  struct Item {
    const ScorePiece* p;
    bool triplet, first, last;
  };
  std::vector<Item> items;
  for (const auto& g : groups)
    for (size_t k = 0; k < g.pieces.size(); ++k)
      items.push_back({&g.pieces[k], g.triplet, k == 0, k + 1 == g.pieces.size()});
  // Beams: runs of two or more pitched pieces of an eighth or shorter within one beat.
  std::vector<std::string> beam(items.size());
  auto beamable = [&](size_t i) {
    const ScorePiece& q = *items[i].p;
    return !q.pitches.empty() && q.written <= Fraction(3, 16) && q.written != Fraction(1, 4);
  };
  auto beat_of = [&](size_t i) { return floor_int((items[i].p->start + L_.origin) / L_.beat); };
  for (size_t i = 0; i < items.size();) {
    if (!beamable(i)) { ++i; continue; }
    size_t j = i + 1;
    while (j < items.size() && beamable(j) && beat_of(j) == beat_of(i)) ++j;
    if (j - i >= 2) {
      beam[i] = "begin";
      for (size_t k = i + 1; k + 1 < j; ++k) beam[k] = "continue";
      beam[j - 1] = "end";
    }
    i = j;
  }
  // Accidentals: the key signature, then the last accidental per step and octave in the measure.
  std::map<std::pair<char, int>, int> shown;
  auto alter_in_effect = [&](const SpelledPitch& sp) {
    auto it = shown.find({sp.letter, sp.octave});
    return it != shown.end() ? it->second : signature_alter(L_.key.fifths, sp.letter);
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const ScorePiece& q = *items[i].p;
    const Notation nt = notation_of(q, items[i].triplet);
    auto common_tail = [&](bool with_beam, const std::string& accidental) {
      o_ << "        <voice>" << xml_voice << "</voice>\n";
      o_ << "        <type>" << nt.type << "</type>\n";
      for (int d = 0; d < nt.dots; ++d) o_ << "        <dot/>\n";
      if (!accidental.empty()) o_ << "        <accidental>" << accidental << "</accidental>\n";
      if (nt.actual != nt.normal)
        o_ << "        <time-modification><actual-notes>" << nt.actual << "</actual-notes><normal-notes>" << nt.normal
           << "</normal-notes></time-modification>\n";
      o_ << staff_tag();
      if (with_beam && !beam[i].empty()) o_ << "        <beam number=\"1\">" << beam[i] << "</beam>\n";
    };
    auto notations = [&](bool ties) {
      std::string n;
      if (ties && q.tie_in) n += "<tied type=\"stop\"/>";
      if (ties && q.tie_out) n += "<tied type=\"start\"/>";
      if (items[i].triplet && items[i].first) n += "<tuplet type=\"start\" bracket=\"yes\"/>";
      if (items[i].triplet && items[i].last) n += "<tuplet type=\"stop\"/>";
      if (!n.empty()) o_ << "        <notations>" << n << "</notations>\n";
    };
    if (q.pitches.empty()) {
      o_ << "      <note>\n        <rest/>\n        <duration>" << dur(q.length) << "</duration>\n";
      common_tail(false, "");
      notations(false);
      o_ << "      </note>\n";
      continue;
    }
    std::vector<std::string> accs;
    for (int m : q.pitches) {
      if (p.drum) { accs.push_back(""); continue; }
      SpelledPitch sp = spell_pitch(m, L_.key.tonic_q);
      std::string a;
      if (!q.tie_in && sp.alter != alter_in_effect(sp)) {
        a = accidental_name(sp.alter);
        shown[{sp.letter, sp.octave}] = sp.alter;
      }
      accs.push_back(a);
    }
    for (size_t k = 0; k < q.pitches.size(); ++k) {
      const int m = q.pitches[k];
      o_ << "      <note>\n";
      if (k > 0) o_ << "        <chord/>\n";
      if (p.drum) {
        SpelledPitch d = drum_display(m);
        o_ << "        <unpitched><display-step>" << d.letter << "</display-step><display-octave>" << d.octave
           << "</display-octave></unpitched>\n";
      } else {
        SpelledPitch sp = spell_pitch(m, L_.key.tonic_q);
        o_ << "        <pitch><step>" << sp.letter << "</step>";
        if (sp.alter != 0) o_ << "<alter>" << sp.alter << "</alter>";
        o_ << "<octave>" << sp.octave << "</octave></pitch>\n";
      }
      o_ << "        <duration>" << dur(q.length) << "</duration>\n";
      if (q.tie_in) o_ << "        <tie type=\"stop\"/>\n";
      if (q.tie_out) o_ << "        <tie type=\"start\"/>\n";
      if (p.drum) o_ << "        <instrument id=\"" << p.id << "-I" << m << "\"/>\n";
      common_tail(k == 0, accs[k]);
      notations(true);
      o_ << "      </note>\n";
    }
  }
}

void Writer::part(const Part& p) {
  o_ << "  <part id=\"" << p.id << "\">\n";
  const int nst = static_cast<int>(p.staves.size());
  const int nbars = L_.bars();
  for (int b = 0; b < nbars; ++b) {
    const bool pickup = b == 0 && L_.pickup > Fraction(0);
    const int number = L_.pickup > Fraction(0) ? b : b + 1;
    o_ << "    <measure number=\"" << number << "\"" << (pickup ? " implicit=\"yes\"" : "") << ">\n";
    std::vector<std::string> clef_changes;
    for (int s = 0; s < nst; ++s) {
      const auto& clefs = p.staves[static_cast<size_t>(s)].clefs;
      if (b == 0 || clefs[static_cast<size_t>(b)] != clefs[static_cast<size_t>(b - 1)])
        clef_changes.push_back(clef_xml(clefs[static_cast<size_t>(b)], s + 1, nst));
    }
    if (b == 0) {
      const Meter& m = L_.meter;
      o_ << "      <attributes>\n        <divisions>" << divisions_ << "</divisions>\n";
      // <mode> only for major and minor: MuseScore 3 reports "Unsupported mode" for the others
      // (dorian …), whose signature is all a reader needs.
      if (!p.drum) {
        const std::string mode = mode_name(L_.key);
        o_ << "        <key><fifths>" << L_.key.fifths << "</fifths>";
        if (mode == "major" || mode == "minor") o_ << "<mode>" << mode << "</mode>";
        o_ << "</key>\n";
      }
      std::string symbol = m.text == "C" ? " symbol=\"common\"" : m.text == "C|" ? " symbol=\"cut\"" : "";
      o_ << "        <time" << symbol << "><beats>" << m.num << "</beats><beat-type>" << m.den << "</beat-type></time>\n";
      if (nst > 1) o_ << "        <staves>" << nst << "</staves>\n";
      for (const auto& c : clef_changes) o_ << "        " << c << "\n";
      o_ << "      </attributes>\n";
      if (&p == first_part_) {
        auto bt = note_type(L_.beat);
        if (bt.first.empty()) bt = {"quarter", 0};
        const double quarter_bpm = L_.tempo_bpm * L_.beat.value() * 4.0;
        o_ << "      <direction placement=\"above\">\n        <direction-type><metronome><beat-unit>" << bt.first
           << "</beat-unit>" << (bt.second ? "<beat-unit-dot/>" : "") << "<per-minute>"
           << static_cast<int>(L_.tempo_bpm) << "</per-minute></metronome></direction-type>\n";
        std::ostringstream t;
        t.precision(10);
        t << quarter_bpm;
        o_ << "        <sound tempo=\"" << t.str() << "\"/>\n      </direction>\n";
      }
    } else if (!clef_changes.empty()) {
      o_ << "      <attributes>\n";
      for (const auto& c : clef_changes) o_ << "        " << c << "\n";
      o_ << "      </attributes>\n";
    }
    const Fraction len = L_.bar_end(b) - L_.bar_starts[static_cast<size_t>(b)];
    for (int s = 0; s < nst; ++s) {
      if (s > 0) o_ << "      <backup><duration>" << dur(len) << "</duration></backup>\n";
      staff_measure(p, static_cast<size_t>(s), b, s == 0 ? 1 : 5);
    }
    if (b + 1 == nbars)
      o_ << "      <barline location=\"right\"><bar-style>light-heavy</bar-style></barline>\n";
    o_ << "    </measure>\n";
  }
  o_ << "  </part>\n";
}

std::string Writer::run() {
  const std::vector<Part> parts = make_parts(L_, cfg_);
  choose_divisions();
  o_ << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
     << "<!DOCTYPE score-partwise PUBLIC \"-//Recordare//DTD MusicXML 4.0 Partwise//EN\" "
        "\"http://www.musicxml.org/dtds/partwise.dtd\">\n"
     << "<score-partwise version=\"4.0\">\n"
     << "  <work><work-title>" << xml_escape(cfg_.title) << "</work-title></work>\n"
     << "  <identification>\n    <encoding>\n      <software>tunescribe</software>\n"
     << "      <supports element=\"accidental\" type=\"yes\"/>\n"
     << "      <supports element=\"beam\" type=\"yes\"/>\n"
     << "      <supports element=\"print\" attribute=\"new-page\" type=\"no\"/>\n"
     << "      <supports element=\"print\" attribute=\"new-system\" type=\"no\"/>\n"
     << "      <supports element=\"stem\" type=\"no\"/>\n"
     << "    </encoding>\n  </identification>\n";
  part_list(parts);
  first_part_ = parts.empty() ? nullptr : &parts.front();
  for (const Part& p : parts) part(p);
  o_ << "</score-partwise>\n";
  return o_.str();
}

}  // namespace

std::string write_musicxml(const ScoreLayout& layout, const MusicXmlConfig& cfg) {
  cfg.validate();
  return Writer(layout, cfg).run();
}

}  // namespace tunescribe
