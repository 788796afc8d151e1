// score_report.cpp — the HTML report of a score run (see score_report.h).
#include "tunescribe/score_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/note_files.h"
#include "tunescribe/notes.h"
#include "tunescribe/piano_roll.h"
#include "tunescribe/xml_text.h"

namespace fs = std::filesystem;

namespace tunescribe {

void ScoreReportConfig::validate() const {
  if (max_overlay_notes < 100 || max_overlay_notes > 10000000)
    throw ConfigError("score: report max_overlay_notes " + std::to_string(max_overlay_notes) +
                      " is not within [100, 10000000]");
}

namespace {

struct Counts {
  size_t matched = 0, missed = 0, extra = 0;
  void add(const Counts& o) {
    matched += o.matched;
    missed += o.missed;
    extra += o.extra;
  }
  size_t errors() const { return missed + extra; }
};

// Instrument keys: 0..127 GM program, 128 drums, -1 a side without instruments (.txt, ABC without).
constexpr int kDrums = 128, kNoInstrument = -1;

std::string instrument_label(int key) {
  if (key == kNoInstrument) return "(no instrument in the file)";
  if (key == kDrums) return "Drums";
  return gm_program_name(key) + " (" + std::to_string(key) + ")";
}

std::string pitch_label(int p) {
  static const char* kNames[] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
  return std::string(kNames[((p % 12) + 12) % 12]) + std::to_string(p / 12 - 1);
}

int midi_of(const ScoreNote& n) { return std::clamp(static_cast<int>(std::lround(hz_to_midi(n.pitch_hz))), 0, 127); }

int instrument_of(const ScoreNote& n, bool has_program) {
  if (!has_program) return kNoInstrument;
  return n.is_drum ? kDrums : std::clamp(n.program, 0, 127);
}

std::string fmt(double v, const char* f = "%.4f") {
  char buf[40];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

ScoreNotes load_notes(const std::string& path, const ScoreFilesConfig& cfg) {
  ReadNotesOptions ro;
  ro.apply_sustain = cfg.apply_sustain;
  ro.txt_pitch_midi = cfg.txt_pitch == "midi";
  ro.abc_fragment = true;
  NotesFile f = read_notes(path, ro);
  if (f.format == NotesFormat::Txt && f.txt) return *f.txt;
  return score_notes_from_sequence(f.sequence);
}

// Relative path data of notes as horizontal segments: x in centiseconds, y = 127 - MIDI pitch.
// One "h" command per note (the inline script counts them).
std::string note_path(std::vector<const ScoreNote*> notes) {
  std::sort(notes.begin(), notes.end(), [](const ScoreNote* a, const ScoreNote* b) {
    return a->onset_s != b->onset_s ? a->onset_s < b->onset_s : a->pitch_hz < b->pitch_hz;
  });
  std::string d;
  long long cx = 0, cy = 0;
  bool first = true;
  for (const ScoreNote* n : notes) {
    const long long x = std::llround(n->onset_s * 100.0);
    const long long w = std::max(1LL, std::llround(n->offset_s * 100.0) - x);
    const long long y = 127 - midi_of(*n);
    d += first ? "M" : "m";
    const long long dx = first ? x : x - cx, dy = first ? y : y - cy;
    d += std::to_string(dx);
    if (dy >= 0) d += ' ';
    d += std::to_string(dy);
    d += 'h';
    d += std::to_string(w);
    cx = x + w;
    cy = y;
    first = false;
  }
  return d;
}

struct FileSection {
  std::string html;
  Counts counts;
  std::map<int, Counts> by_pitch, by_instrument;
};

FileSection file_section(size_t idx, const PairResult& r, const ScoreFilesConfig& cfg, const ScoreReportConfig& rc) {
  FileSection out;
  std::ostringstream os;
  const std::string id = "f" + std::to_string(idx);
  if (!r.transcription) {
    os << "<section class=\"file\" id=\"" << id << "\" data-stem=\"" << xml_escape(r.stem)
       << "\" data-overlay=\"none\"><h3>" << xml_escape(r.stem) << "</h3><p class=\"paths\">" << xml_escape(r.ref_path)
       << " ⟷ " << xml_escape(r.est_path) << "</p><p>No note metrics for this pair (reward only).</p></section>\n";
    out.html = os.str();
    return out;
  }
  const MatchCounts& nc = r.transcription->note_no_offset;
  out.counts = {nc.matched, nc.n_ref - nc.matched, nc.n_est - nc.matched};
  os << "<section class=\"file\" id=\"" << id << "\" data-stem=\"" << xml_escape(r.stem) << "\" data-matched=\""
     << out.counts.matched << "\" data-missed=\"" << out.counts.missed << "\" data-extra=\"" << out.counts.extra << "\"";
  std::string overlay, error;
  std::vector<std::string> instrument_lines, pitch_lines;
  if (r.n_ref + r.n_est > rc.max_overlay_notes) {
    error = "overlay left out: " + std::to_string(r.n_ref + r.n_est) + " notes (more than " +
            std::to_string(rc.max_overlay_notes) + ")";
  } else {
    try {
      ScoreNotes ref = load_notes(r.ref_path, cfg), est = load_notes(r.est_path, cfg);
      const Matching m = match_notes(ref.notes, est.notes, cfg.metric, MatchKind::NoteNoOffset);
      std::vector<char> rm(ref.notes.size(), 0), em(est.notes.size(), 0);
      for (const auto& pr : m) rm.at(pr.first) = em.at(pr.second) = 1;
      if (m.size() != nc.matched)
        log_warn("score", "report: " + r.stem + ": " + std::to_string(m.size()) + " pairs drawn, " +
                              std::to_string(nc.matched) + " scored");
      std::vector<const ScoreNote*> pm, px, pe;
      double dur = 1.0;
      int lo = 127, hi = 0;
      for (size_t i = 0; i < ref.notes.size(); ++i) {
        const ScoreNote& n = ref.notes[i];
        (rm[i] ? pm : px).push_back(&n);
        Counts c;
        (rm[i] ? c.matched : c.missed) = 1;
        out.by_pitch[midi_of(n)].add(c);
        out.by_instrument[instrument_of(n, ref.has_program)].add(c);
        dur = std::max(dur, n.offset_s);
        lo = std::min(lo, midi_of(n));
        hi = std::max(hi, midi_of(n));
      }
      for (size_t i = 0; i < est.notes.size(); ++i) {
        const ScoreNote& n = est.notes[i];
        if (!em[i]) {
          pe.push_back(&n);
          Counts c;
          c.extra = 1;
          out.by_pitch[midi_of(n)].add(c);
          out.by_instrument[instrument_of(n, est.has_program)].add(c);
        }
        dur = std::max(dur, n.offset_s);
        lo = std::min(lo, midi_of(n));
        hi = std::max(hi, midi_of(n));
      }
      if (lo > hi) lo = 60, hi = 72;
      lo = std::max(0, lo - 1);
      hi = std::min(127, hi + 1);
      while (hi - lo < 12) {
        if (lo > 0) --lo;
        if (hi - lo < 12 && hi < 127) ++hi;
      }
      const long long dur_cs = std::llround(std::ceil(dur * 100.0));
      const int y0 = 127 - hi - 1, h = hi - lo + 2;
      std::ostringstream sv;
      const int px_h = std::clamp(5 * (hi - lo + 1), 90, 320);
      sv << "<svg class=\"overlay\" viewBox=\"0 " << y0 << " " << dur_cs << " " << h
         << "\" preserveAspectRatio=\"none\" style=\"height:" << px_h << "px\" role=\"img\" aria-label=\"piano roll of "
         << xml_escape(r.stem) << "\">";
      // Grid: a line under every C, a vertical line every `step` seconds.
      std::string grid;
      for (int p = lo; p <= hi; ++p)
        if (p % 12 == 0) grid += "M0 " + std::to_string(127 - p) + ".5H" + std::to_string(dur_cs);
      double step = 1.0;
      for (double s : {1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0}) {
        step = s;
        if (dur / s <= 16.0) break;
      }
      for (double t = step; t < dur; t += step)
        grid += "M" + std::to_string(std::llround(t * 100)) + " " + std::to_string(y0) + "v" + std::to_string(h);
      sv << "<path class=\"grid\" d=\"" << grid << "\"/>";
      if (!pm.empty()) sv << "<path class=\"m\" data-k=\"m\" d=\"" << note_path(pm) << "\"/>";
      if (!px.empty()) sv << "<path class=\"x\" data-k=\"x\" d=\"" << note_path(px) << "\"/>";
      if (!pe.empty()) sv << "<path class=\"e\" data-k=\"e\" d=\"" << note_path(pe) << "\"/>";
      sv << "</svg><div class=\"axis\"><span>0:00</span><span>grid: every " << fmt(step, "%.0f") << " s; lines under C"
         << (lo / 12 - 1) << "–C" << (hi / 12 - 1) << "</span><span>" << fmt(dur, "%.1f") << " s</span></div>";
      overlay = sv.str();
      for (const auto& kv : out.by_instrument)
        instrument_lines.push_back(xml_escape(instrument_label(kv.first)) + ": " + std::to_string(kv.second.matched) +
                                   " matched, " + std::to_string(kv.second.missed) + " missed, " +
                                   std::to_string(kv.second.extra) + " extra");
      std::vector<std::pair<int, Counts>> worst(out.by_pitch.begin(), out.by_pitch.end());
      std::stable_sort(worst.begin(), worst.end(),
                       [](const auto& a, const auto& b) { return a.second.errors() > b.second.errors(); });
      for (size_t i = 0; i < worst.size() && i < 8 && worst[i].second.errors() > 0; ++i)
        pitch_lines.push_back(pitch_label(worst[i].first) + " " + std::to_string(worst[i].second.missed) + " missed / " +
                              std::to_string(worst[i].second.extra) + " extra");
    } catch (const Error& e) {
      error = std::string("overlay left out: ") + e.what();
    }
  }
  os << " data-overlay=\"" << (overlay.empty() ? "omitted" : "drawn") << "\">\n";
  os << "<h3>" << xml_escape(r.stem) << " <a class=\"up\" href=\"#files\">↑ table</a></h3>\n";
  os << "<p class=\"paths\">reference " << xml_escape(r.ref_path) << " · estimate " << xml_escape(r.est_path) << "</p>\n";
  os << "<p class=\"counts\"><span class=\"km\">matched " << out.counts.matched << "</span> <span class=\"kx\">missed "
     << out.counts.missed << "</span> <span class=\"ke\">false alarms " << out.counts.extra << "</span> · F (no offset) "
     << fmt(r.transcription->metrics.get("F-measure_no_offset")) << "</p>\n";
  if (!overlay.empty()) os << overlay << "\n";
  else os << "<p class=\"warn\">" << xml_escape(error) << "</p>\n";
  if (!instrument_lines.empty()) {
    os << "<p class=\"small\">By instrument: ";
    for (size_t i = 0; i < instrument_lines.size(); ++i) os << (i ? "; " : "") << instrument_lines[i];
    os << "</p>\n";
  }
  if (!pitch_lines.empty()) {
    os << "<p class=\"small\">Most errors by pitch: ";
    for (size_t i = 0; i < pitch_lines.size(); ++i) os << (i ? "; " : "") << pitch_lines[i];
    os << "</p>\n";
  }
  for (const auto& n : r.notes) os << "<p class=\"small\">" << xml_escape(n) << "</p>\n";
  os << "</section>\n";
  out.html = os.str();
  return out;
}

// Columns shown without "show all metrics".
bool main_metric(const std::string& k) {
  static const char* kMain[] = {"F-measure",
                                "F-measure_no_offset",
                                "Onset_F-measure",
                                "Offset_F-measure",
                                "Average_Overlap_Ratio",
                                "velocity.F-measure",
                                "multi_instrument.F-measure",
                                "reward.reward"};
  return std::find(std::begin(kMain), std::end(kMain), k) != std::end(kMain);
}

const char* kStyle = R"CSS(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#1d2329}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #d5dae0}h3{margin:.2em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #e3e6ea;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f5f7;position:sticky;top:0}
#files th{cursor:pointer;user-select:none;font-size:12px}#files th[aria-sort=ascending]::after{content:" ▲"}
#files th[aria-sort=descending]::after{content:" ▼"}.wrap{overflow-x:auto;max-height:70vh;overflow-y:auto}
.more{display:none}body.all .more{display:table-cell}
.m{stroke:#2ca02c}.x{stroke:#d62728}.e{stroke:#1f77b4}
svg.overlay path{fill:none;stroke-width:.8;stroke-linecap:butt}svg.overlay path.grid{stroke:#c9ced6;stroke-width:1;vector-effect:non-scaling-stroke}
svg.overlay{display:block;width:100%;background:#fbfbfc;border:1px solid #d5dae0}
.axis{display:flex;justify-content:space-between;font-size:11px;color:#5b6570}
.km{color:#1e7b1e;font-weight:600}.kx{color:#b51f1f;font-weight:600}.ke{color:#17609a;font-weight:600}
section.file{margin:1.2em 0;padding-top:.4em;border-top:1px solid #e3e6ea}.paths,.small{font-size:12px;color:#4a535c;margin:.2em 0}
.warn{color:#9a5b00}.legend span{margin-right:1.2em}.fail{color:#b51f1f}a.up{font-size:11px;font-weight:normal}
)CSS";

const char* kScript = R"JS(
(function () {
  var body = document.body, errors = 0;
  window.addEventListener('error', function () { errors++; body.setAttribute('data-js-errors', String(errors)); });
  var table = document.getElementById('files');
  function sortBy(col, desc) {
    var tb = table.tBodies[0], ths = table.tHead.rows[0].cells, num = ths[col].getAttribute('data-type') === 'num';
    var rows = Array.prototype.slice.call(tb.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
      if (num) {
        if (x === '' || y === '') return (x === '') - (y === '');
        return desc ? (+y) - (+x) : (+x) - (+y);
      }
      return desc ? y.localeCompare(x) : x.localeCompare(y);
    });
    rows.forEach(function (r) { tb.appendChild(r); });
    for (var i = 0; i < ths.length; i++) ths[i].removeAttribute('aria-sort');
    ths[col].setAttribute('aria-sort', desc ? 'descending' : 'ascending');
    table.setAttribute('data-sorted-by', ths[col].getAttribute('data-key') + (desc ? '-desc' : ''));
  }
  if (table) {
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener('click', function () {
        sortBy(col, th.getAttribute('aria-sort') === 'ascending');
      });
    });
    var m = /[#&]sort=([^&]+)/.exec(location.hash);
    if (m) {
      var key = decodeURIComponent(m[1]), desc = /-desc$/.test(key);
      if (desc) key = key.slice(0, -5);
      for (var i = 0; i < ths.length; i++) if (ths[i].getAttribute('data-key') === key) sortBy(i, desc);
    }
  }
  var all = document.getElementById('allm');
  if (all) all.addEventListener('change', function () { body.classList.toggle('all', all.checked); });
  // Check that the notes drawn are the counts scored (one "h" command per note).
  var ok = 0, bad = 0;
  Array.prototype.forEach.call(document.querySelectorAll('section.file'), function (s) {
    if (s.getAttribute('data-overlay') !== 'drawn') return;
    var c = { m: 0, x: 0, e: 0 };
    Array.prototype.forEach.call(s.querySelectorAll('svg.overlay path[data-k]'), function (p) {
      c[p.getAttribute('data-k')] += (p.getAttribute('d').match(/h/g) || []).length;
    });
    var good = c.m === +s.getAttribute('data-matched') && c.x === +s.getAttribute('data-missed') &&
               c.e === +s.getAttribute('data-extra');
    s.setAttribute('data-drawn', c.m + ',' + c.x + ',' + c.e);
    s.setAttribute('data-check', good ? 'ok' : 'mismatch');
    if (good) ok++; else bad++;
  });
  body.setAttribute('data-rows-rendered', table ? String(table.tBodies[0].rows.length) : '0');
  body.setAttribute('data-check-ok', String(ok));
  body.setAttribute('data-check-bad', String(bad));
  body.setAttribute('data-js', 'done');
})();
)JS";

std::string counts_table(const std::string& id, const std::string& head, const std::vector<std::pair<std::string, Counts>>& rows) {
  std::ostringstream os;
  os << "<table id=\"" << id << "\"><thead><tr><th>" << head
     << "</th><th>reference notes</th><th>matched</th><th>missed</th><th>false alarms</th><th>recall</th></tr></thead><tbody>\n";
  for (const auto& kv : rows) {
    const Counts& c = kv.second;
    const size_t n_ref = c.matched + c.missed;
    os << "<tr><td>" << xml_escape(kv.first) << "</td><td>" << n_ref << "</td><td>" << c.matched << "</td><td>" << c.missed
       << "</td><td>" << c.extra << "</td><td>" << (n_ref ? fmt(double(c.matched) / double(n_ref), "%.3f") : "–")
       << "</td></tr>\n";
  }
  os << "</tbody></table>\n";
  return os.str();
}

}  // namespace

std::string build_score_report(const ScorePairing& pairing, const ScoreRun& run, const ScoreFilesConfig& cfg,
                               const ScoreReportConfig& rc) {
  rc.validate();
  const ScoreAggregate agg = aggregate_scores(run.results, cfg.metric.beta);
  // Per-file sections first (they give the per-pitch and per-instrument totals).
  std::string sections;
  std::vector<Counts> file_counts;
  std::map<int, Counts> by_pitch, by_instrument;
  for (size_t i = 0; i < run.results.size(); ++i) {
    FileSection fs_ = file_section(i, run.results[i], cfg, rc);
    sections += fs_.html;
    file_counts.push_back(fs_.counts);
    for (const auto& kv : fs_.by_pitch) by_pitch[kv.first].add(kv.second);
    for (const auto& kv : fs_.by_instrument) by_instrument[kv.first].add(kv.second);
  }
  Counts total;
  for (const auto& c : file_counts) total.add(c);

  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << xml_escape(rc.title)
     << "</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>" << kStyle
     << "</style></head>\n";
  os << "<body data-files=\"" << run.results.size() << "\" data-failures=\"" << run.failures.size() << "\" data-matched=\""
     << total.matched << "\" data-missed=\"" << total.missed << "\" data-extra=\"" << total.extra << "\">\n";
  os << "<h1>" << xml_escape(rc.title) << "</h1>\n";
  const auto& m = cfg.metric;
  os << "<p>" << run.results.size() << " pair(s) scored, <span class=\"" << (run.failures.empty() ? "" : "fail") << "\">"
     << run.failures.size() << " failed</span>, " << pairing.ref_only.size() << " reference-only and "
     << pairing.est_only.size() << " estimate-only file(s). Onset tolerance " << fmt(m.onset_tolerance_s * 1000, "%.0f")
     << " ms, pitch tolerance " << fmt(m.pitch_tolerance_cents, "%.0f") << " cents, offset ratio "
     << (m.use_offset ? fmt(m.offset_ratio, "%.2f") : std::string("none")) << ", program granularity "
     << xml_escape(cfg.program_granularity) << ", reward mode " << xml_escape(cfg.reward_mode) << ".</p>\n";
  os << "<p class=\"legend\">All notes: <span class=\"km\">matched " << total.matched << "</span><span class=\"kx\">missed "
     << total.missed << "</span><span class=\"ke\">false alarms " << total.extra
     << "</span> (mir_eval onset + pitch matching, no offset criterion: the pairs behind *_no_offset).</p>\n";

  // Aggregate.
  os << "<h2 id=\"aggregate-h\">Aggregate</h2>\n<table id=\"aggregate\"><thead><tr><th>metric</th><th>mean over "
        "files</th><th>pooled over notes</th></tr></thead><tbody>\n";
  for (const auto& k : agg.order) {
    const auto mean = lookup_metric(agg.mean, k), pooled = lookup_metric(agg.pooled, k);
    os << "<tr data-key=\"" << xml_escape(k) << "\"><td>" << xml_escape(k) << "</td><td>" << (mean ? fmt(*mean) : "–")
       << "</td><td>" << (pooled ? fmt(*pooled) : "–") << "</td></tr>\n";
  }
  os << "</tbody></table>\n";

  // Files.
  os << "<h2>Files</h2>\n<p><label><input type=\"checkbox\" id=\"allm\"> show all metrics</label> · click a column "
        "to sort</p>\n<div class=\"wrap\"><table id=\"files\"><thead><tr>";
  os << "<th data-key=\"file\" data-type=\"text\">file</th>";
  for (const char* c : {"n_ref", "n_est", "matched", "missed", "extra"})
    os << "<th data-key=\"" << c << "\" data-type=\"num\">" << c << "</th>";
  for (const auto& k : agg.order)
    os << "<th data-key=\"" << xml_escape(k) << "\" data-type=\"num\"" << (main_metric(k) ? "" : " class=\"more\"") << ">"
       << xml_escape(k) << "</th>";
  os << "</tr></thead><tbody>\n";
  for (size_t i = 0; i < run.results.size(); ++i) {
    const PairResult& r = run.results[i];
    const FlatMetrics flat = flat_metrics(r);
    const Counts& c = file_counts[i];
    const bool notes = r.transcription.has_value();
    os << "<tr><td data-v=\"" << xml_escape(r.stem) << "\"><a href=\"#f" << i << "\">" << xml_escape(r.stem) << "</a></td>";
    auto count_cell = [&](size_t v) {
      if (notes) os << "<td data-v=\"" << v << "\">" << v << "</td>";
      else os << "<td data-v=\"\">–</td>";
    };
    count_cell(r.n_ref);
    count_cell(r.n_est);
    count_cell(c.matched);
    count_cell(c.missed);
    count_cell(c.extra);
    for (const auto& k : agg.order) {
      const auto v = lookup_metric(flat, k);
      os << "<td" << (main_metric(k) ? "" : " class=\"more\"") << " data-v=\"" << (v ? fmt(*v, "%.6g") : "") << "\">"
         << (v ? fmt(*v, "%.3f") : "–") << "</td>";
    }
    os << "</tr>\n";
  }
  os << "</tbody></table></div>\n";

  // Failures and unpaired files.
  os << "<h2>Pairs that could not be scored</h2>\n";
  if (run.failures.empty()) os << "<p id=\"failures\" data-count=\"0\">None.</p>\n";
  else {
    os << "<ul id=\"failures\" data-count=\"" << run.failures.size() << "\">\n";
    for (const auto& f : run.failures)
      os << "<li class=\"fail\"><b>" << xml_escape(f.first) << "</b>: " << xml_escape(f.second) << "</li>\n";
    os << "</ul>\n";
  }
  if (!pairing.ref_only.empty() || !pairing.est_only.empty()) {
    os << "<h2>Unpaired files</h2>\n<ul id=\"unpaired\">\n";
    for (const auto& f : pairing.ref_only) os << "<li>reference only: " << xml_escape(f) << "</li>\n";
    for (const auto& f : pairing.est_only) os << "<li>estimate only: " << xml_escape(f) << "</li>\n";
    os << "</ul>\n";
  }

  // Error counts by pitch and by instrument (all files).
  os << "<h2>Errors by instrument</h2>\n";
  {
    std::vector<std::pair<std::string, Counts>> rows;
    for (const auto& kv : by_instrument) rows.emplace_back(instrument_label(kv.first), kv.second);
    os << counts_table("by-instrument", "instrument", rows);
  }
  os << "<h2>Errors by pitch</h2>\n";
  {
    std::vector<std::pair<std::string, Counts>> rows;
    for (const auto& kv : by_pitch) rows.emplace_back(pitch_label(kv.first) + " (" + std::to_string(kv.first) + ")", kv.second);
    os << counts_table("by-pitch", "pitch", rows);
  }

  // Per file.
  os << "<h2>Piano rolls</h2>\n<p class=\"legend\"><span class=\"km\">■ matched (reference note)</span><span "
        "class=\"kx\">■ missed (reference note)</span><span class=\"ke\">■ false alarm (estimated note)</span> time "
        "left to right, pitch bottom to top</p>\n";
  os << sections;
  os << "<script>" << kScript << "</script>\n</body></html>\n";
  return os.str();
}

void check_report_path(const std::string& path, bool force) {
  if (path.empty()) throw ConfigError("score: --report needs a file name (e.g. report.html)");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw OutputError("score: --report " + path + ": is a folder");
  if (!force && fs::exists(path, ec)) throw OutputError("score: --report " + path + ": exists (use --force to overwrite)");
}

size_t write_score_report(const std::string& path, const ScorePairing& pairing, const ScoreRun& run,
                          const ScoreFilesConfig& cfg, const ScoreReportConfig& rc) {
  const std::string html = build_score_report(pairing, run, cfg, rc);
  write_file_atomic(path, html);
  return html.size();
}

}  // namespace tunescribe
