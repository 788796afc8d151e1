// score_layout.cpp — quantised parts, voices, bars, ties and written pieces (see score_layout.h);
// the structure the ABC and MusicXML emitters both write.
#include "tunescribe/score_layout.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tunescribe/log.h"

namespace tunescribe {

SpelledPitch spell_pitch(int midi, int tonic_q) {
  int pc = ((midi % 12) + 12) % 12;
  SpelledPitch s;
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

namespace {

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
struct VoiceOut {
  WrittenVoiceInfo info;
  std::vector<QNote> notes;  // chord stream after clipping, relative to the origin after lay_out_bars
};

struct Event {  // a chord or rest inside one bar, cut at triplet-beat boundaries
  Fraction start, len;          // actual time, whole notes
  std::vector<int> pitches;     // empty = rest
  bool tie_out = false;         // continues into the next piece
  bool continuation = false;    // continues a tie (no accidental)
};


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
  std::vector<WrittenVoiceInfo> infos;
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
  std::vector<WrittenVoiceInfo>& infos = out.infos;
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

std::vector<VoiceOut> make_voices(const QuantisedParts& qp, const ScoreLayoutOptions& cfg) {
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
// Sets L's origin, pickup, total, beat, bar_len, bar_starts and trip_starts.
void lay_out_bars(std::vector<VoiceOut>& voices, const Meter& meter, const std::set<int64_t>& triplet_beats,
                  ScoreLayout* L_out) {
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
  ScoreLayout& L = *L_out;
  L.origin = origin;
  L.pickup = pickup;
  L.total = total;
  L.beat = beat_w;
  L.bar_len = bar_len;
  L.bar_starts = bar_starts;
  for (int64_t k : triplet_beats) L.trip_starts.insert(Fraction(k) * beat_w - origin);
}

// ---- Written pieces per voice and bar.
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
                              const ScoreLayout& L) {
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

// A triplet beat starting at evs[e] whose pieces are not on the straight grid is one tuplet
// group: true, and e moves past it; false when it is written straight.
bool tuplet_group(const std::vector<Event>& evs, size_t* e_io, const ScoreLayout& L, const Fraction& finest,
                  ScoreGroup* g) {
  size_t& e = *e_io;
  const Event& ev = evs[e];
  auto tit = L.trip_starts.find(ev.start);
  if (tit == L.trip_starts.end()) return false;
  const Fraction tb = *tit;
  const Fraction& beat_w = L.beat;
  size_t g_end = e;
  bool needs = false;
  while (g_end < evs.size() && evs[g_end].start < tb + beat_w) {
    Fraction rs = (evs[g_end].start - tb) / finest, rl = evs[g_end].len / finest;
    if (rs.den != 1 || rl.den != 1) needs = true;
    ++g_end;
  }
  if (!needs) return false;
  g->triplet = true;
  for (size_t k = e; k < g_end; ++k) {
    Fraction w = evs[k].len * Fraction(3, 2);
    Fraction s = evs[k].start;
    bool cont = evs[k].continuation;
    while (w > Fraction(0)) {
      Fraction piece = largest_representable(w, finest);
      if (piece > w) piece = w;
      w = w - piece;
      ScorePiece p;
      p.start = s;
      p.written = piece;
      p.length = piece * Fraction(2, 3);
      p.pitches = evs[k].pitches;
      p.tie_in = cont;
      p.tie_out = evs[k].pitches.empty() ? false : (w > Fraction(0) || evs[k].tie_out);
      g->pieces.push_back(p);
      s = s + p.length;
      cont = true;
    }
  }
  e = g_end;
  return true;
}

// A straight event: split into representable pieces, at beat boundaries when off-beat.
void straight_group(const Event& ev, const ScoreLayout& L, const Fraction& finest, ScoreGroup* g) {
  const Fraction& origin = L.origin;
  const Fraction& beat_w = L.beat;
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
    ScorePiece p;
    p.start = s;
    p.written = piece;
    p.length = piece;
    p.pitches = ev.pitches;
    p.tie_in = cont;
    p.tie_out = ev.pitches.empty() ? false : (rem > Fraction(0) || ev.tie_out);
    g->pieces.push_back(p);
    s = s + piece;
    cont = true;
  }
}

std::vector<ScoreBar> voice_bars(const std::vector<QNote>& notes, const ScoreLayout& L, const Fraction& finest) {
  const std::vector<Seg> segs = voice_segments(notes, L.total);
  size_t si = 0;
  std::vector<ScoreBar> bars;
  for (int b = 0; b < L.bars(); ++b) {
    ScoreBar bar;
    bar.start = L.bar_starts[static_cast<size_t>(b)];
    bar.end = L.bar_end(b);
    const std::vector<Event> evs = bar_events(segs, &si, bar.start, bar.end, L);
    size_t e = 0;
    while (e < evs.size()) {
      ScoreGroup g;
      if (!tuplet_group(evs, &e, L, finest, &g)) {
        straight_group(evs[e], L, finest, &g);
        ++e;
      }
      bar.groups.push_back(std::move(g));
    }
    bars.push_back(std::move(bar));
  }
  return bars;
}

}  // namespace

ScoreLayout lay_out_score(const std::vector<Note>& notes, const Analysis& an, const ScoreLayoutOptions& options) {
  // 1. Quantise into parts.
  const QuantisedParts parts = quantise_parts(notes, an);
  // 2. Voices (piano hand split) and chord streams.
  std::vector<VoiceOut> voices = make_voices(parts, options);
  // 3. Origin, pickup, bars; ties to the end of the last bar.
  ScoreLayout L;
  lay_out_bars(voices, an.meter.meter, an.grids.triplet_beats(), &L);
  L.meter = an.meter.meter;
  L.key = an.key.key;
  L.tempo_bpm = an.tempo_bpm;
  L.start_s = written_time_s(L, an, Fraction(0));
  // 4. Written pieces per voice and bar.
  const Fraction finest(1, options.grid_denominator);
  for (size_t vi = 0; vi < voices.size(); ++vi) {
    ScoreVoice sv;
    sv.info = voices[vi].info;
    for (const QNote& q : voices[vi].notes) {
      WrittenNote n;
      n.voice = static_cast<int>(vi);
      n.pitch = q.pitch;
      n.start = q.start;
      n.length = q.end - q.start;
      n.velocity = q.velocity;
      n.program = q.program;
      n.is_drum = q.drum;
      sv.notes.push_back(n);
    }
    sv.bars = voice_bars(voices[vi].notes, L, finest);
    L.voices.push_back(std::move(sv));
  }
  return L;
}

double written_time_s(const ScoreLayout& L, const Analysis& an, const Fraction& pos) {
  const double beats = (pos + L.origin).value() / L.beat.value();
  return an.beats.map.time_of(beats * an.meter.units_per_beat() + an.meter.phase_units());
}

void set_voice_clef(ScoreLayout* L, const std::string& clef) {
  if (clef.empty()) return;
  for (ScoreVoice& v : L->voices) {
    const std::string& id = v.info.id;
    const bool hand = id.size() > 1 && (id.back() == 'R' || id.back() == 'L');
    if (!v.info.is_drum && !hand) v.info.clef = clef;
  }
}

}  // namespace tunescribe
