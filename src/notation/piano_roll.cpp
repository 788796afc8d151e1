// piano_roll.cpp — notes → piano-roll SVG (see piano_roll.h).
#include "tunescribe/piano_roll.h"
#include "tunescribe/xml_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "tunescribe/errors.h"

namespace tunescribe {

void PianoRollConfig::validate() const {
  auto range = [](const char* field, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) {
      std::ostringstream os;
      os << "piano roll: " << field << " " << v << " is not within [" << lo << ", " << hi << "]";
      throw ConfigError(os.str());
    }
  };
  range("px_per_s", px_per_s, 5.0, 400.0);
  range("row_s", row_s, 5.0, 600.0);
  if (note_height_px != 0) range("note_height_px", note_height_px, 2.0, 20.0);
}

std::string instrument_colour(size_t k) {
  static const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                   "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#7b4173"};
  return kPalette[k % (sizeof kPalette / sizeof kPalette[0])];
}

std::vector<double> bar_times(const Analysis& an, double end_s) {
  std::vector<double> out;
  const BeatMap& map = an.beats.map;
  if (map.times.size() < 2) return out;
  const double bar_units = an.meter.units_per_beat() * an.meter.meter.beats_per_bar;
  if (!(bar_units > 0) || !std::isfinite(bar_units)) return out;
  const double b0 = an.meter.phase_units();
  long long k = static_cast<long long>(std::floor((map.beta(0.0) - b0) / bar_units)) - 1;
  for (int guard = 0; guard < 200000 && out.size() < 100000; ++guard, ++k) {
    const double t = map.time_of(b0 + static_cast<double>(k) * bar_units);
    if (!std::isfinite(t) || t > end_s + 1e-9) break;
    if (t >= -1e-9 && (out.empty() || t > out.back() + 1e-6)) out.push_back(std::max(0.0, t));
  }
  return out;
}

namespace {

// Shortest text of x with at most one decimal ("12", "12.5").
std::string num(double x) {
  char buf[32];
  const double r = std::round(x * 10.0) / 10.0;
  if (r == std::floor(r)) std::snprintf(buf, sizeof buf, "%.0f", r);
  else std::snprintf(buf, sizeof buf, "%.1f", r);
  return std::string(buf) == "-0" ? "0" : buf;
}

std::string time_label(double t, double step) {
  char buf[32];
  const int m = static_cast<int>(t / 60.0 + 1e-9);
  const double s = t - 60.0 * m;
  if (step < 1.0) std::snprintf(buf, sizeof buf, "%d:%04.1f", m, s);
  else std::snprintf(buf, sizeof buf, "%d:%02d", m, static_cast<int>(std::lround(s)));
  return buf;
}

bool black_key(int p) {
  const int pc = ((p % 12) + 12) % 12;
  return pc == 1 || pc == 3 || pc == 6 || pc == 8 || pc == 10;
}

struct Instrument {
  bool is_drum = false;
  int program = 0;
  size_t count = 0;
  std::string colour;
};

constexpr int kVelocityLevels = 8;
int velocity_level(int v) { return std::clamp((std::clamp(v, 1, 127) * kVelocityLevels - 1) / 127, 0, kVelocityLevels - 1); }
double level_opacity(int b) { return 0.3 + 0.7 * (b + 0.5) / kVelocityLevels; }

}  // namespace

std::string render_piano_roll_svg(const NoteSequence& seq, const std::vector<double>& bar_times_in,
                                  const PianoRollConfig& cfg) {
  cfg.validate();
  // Valid notes only (finite, offset > onset, pitch 0..127).
  std::vector<const Note*> notes;
  for (const auto& n : seq.notes)
    if (std::isfinite(n.onset_s) && std::isfinite(n.offset_s) && n.onset_s >= 0 && n.offset_s > n.onset_s &&
        n.pitch >= 0 && n.pitch <= 127)
      notes.push_back(&n);
  double dur = std::isfinite(seq.duration_s) ? seq.duration_s : 0.0;
  for (const Note* n : notes) dur = std::max(dur, n->offset_s);
  dur = std::max(dur, 1.0);

  // Instruments in order (pitched by program, drums last), with colours.
  std::map<std::pair<bool, int>, Instrument> instruments;
  for (const Note* n : notes) {
    auto& in = instruments[{n->is_drum, n->is_drum ? 0 : n->program}];
    in.is_drum = n->is_drum;
    in.program = n->is_drum ? 0 : n->program;
    ++in.count;
  }
  std::map<std::pair<bool, int>, size_t> instrument_index;
  {
    size_t k = 0;
    for (auto& kv : instruments) {
      kv.second.colour = instrument_colour(k);
      instrument_index[kv.first] = k++;
    }
  }

  // Pitch span of the pitched notes (at least an octave), drum keys in use.
  int lo = 128, hi = -1;
  std::set<int> drum_keys;
  for (const Note* n : notes) {
    if (n->is_drum) {
      drum_keys.insert(n->pitch);
    } else {
      lo = std::min(lo, n->pitch);
      hi = std::max(hi, n->pitch);
    }
  }
  const bool have_pitched = hi >= 0;
  if (!have_pitched) lo = 60, hi = 71;
  lo = std::max(0, lo - 1);
  hi = std::min(127, hi + 1);
  while (hi - lo + 1 < 13) {
    if (lo > 0) --lo;
    if (hi - lo + 1 < 13 && hi < 127) ++hi;
  }
  const int span = hi - lo + 1;
  const double nh = cfg.note_height_px > 0 ? cfg.note_height_px : std::clamp(std::floor(300.0 / span), 3.0, 8.0);
  const bool show_pitched = have_pitched || drum_keys.empty();
  const double pitched_h = show_pitched ? span * nh : 0.0;
  const double drum_row_h = 5.0;
  std::map<int, size_t> drum_row;
  for (int k : drum_keys) drum_row.emplace(k, drum_row.size());
  const double drum_h = drum_keys.empty() ? 0.0 : std::max(12.0, drum_row_h * static_cast<double>(drum_keys.size()));
  const double drum_gap = (!drum_keys.empty() && show_pitched) ? 6.0 : 0.0;

  // Geometry.
  const double L = 46, R = 12, pps = cfg.px_per_s;
  const double row_s = std::min(cfg.row_s, dur);
  const int n_rows = std::max(1, static_cast<int>(std::ceil(dur / cfg.row_s - 1e-9)));
  const double plot_w = row_s * pps;
  const double W = std::max(L + plot_w + R, 420.0);
  const double bar_strip = 12, axis_h = 18, row_gap = 10;
  const double row_h = bar_strip + pitched_h + drum_gap + drum_h + axis_h + row_gap;

  // Legend lines (wrapped at the width).
  struct LegendItem {
    std::string text, colour;
    double x = 0;
    int line = 0;
  };
  std::vector<LegendItem> legend;
  {
    double x = L;
    int line = 0;
    for (auto& kv : instruments) {
      const Instrument& in = kv.second;
      std::string text = gm_program_name(in.program, in.is_drum);
      if (!in.is_drum) text += " (" + std::to_string(in.program) + ")";
      text += ": " + std::to_string(in.count) + (in.count == 1 ? " note" : " notes");
      const double w = 16 + 6.2 * static_cast<double>(text.size()) + 14;
      if (x + w > W - R && x > L) {
        x = L;
        ++line;
      }
      legend.push_back({text, in.colour, x, line});
      x += w;
    }
  }
  const int legend_lines = legend.empty() ? 1 : legend.back().line + 1;
  const double title_h = cfg.title.empty() ? 0.0 : 22.0;
  const double legend_top = 6 + title_h;
  const double legend_h = 16.0 * legend_lines + 18.0;  // + the velocity/opacity note
  const double rows_top = legend_top + legend_h + 4;
  const double H = rows_top + n_rows * row_h;

  // Bars: sorted, unique, inside the piece; label every k-th so that labels stay >= 26 px apart.
  std::vector<double> bars;
  for (double t : bar_times_in)
    if (std::isfinite(t) && t >= -1e-9 && t <= dur + 1e-9) bars.push_back(std::max(0.0, t));
  std::sort(bars.begin(), bars.end());
  bars.erase(std::unique(bars.begin(), bars.end(), [](double a, double b) { return b - a < 1e-6; }), bars.end());
  int bar_label_every = 1;
  if (bars.size() >= 2) {
    std::vector<double> gaps;
    for (size_t i = 1; i < bars.size(); ++i) gaps.push_back(bars[i] - bars[i - 1]);
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    const double gap_px = gaps[gaps.size() / 2] * pps;
    while (gap_px * bar_label_every < 26.0 && bar_label_every < (1 << 20)) bar_label_every *= 2;
  }
  // Time ticks: the first step at least 48 px wide.
  double tick = 300.0;
  for (double s : {0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0})
    if (s * pps >= 48.0) {
      tick = s;
      break;
    }

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(W) << "\" height=\"" << num(H)
     << "\" viewBox=\"0 0 " << num(W) << " " << num(H) << "\" font-family=\"sans-serif\" font-size=\"10\""
     << " data-notes=\"" << notes.size() << "\" data-rows=\"" << n_rows << "\" data-bars=\"" << bars.size() << "\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  if (!cfg.title.empty())
    os << "<text x=\"" << num(L) << "\" y=\"20\" font-size=\"15\" font-weight=\"bold\">" << xml_escape(cfg.title)
       << "</text>\n";
  os << "<g class=\"legend\">\n";
  for (const auto& it : legend) {
    const double y = legend_top + 16.0 * it.line;
    os << "<rect x=\"" << num(it.x) << "\" y=\"" << num(y + 2) << "\" width=\"11\" height=\"11\" fill=\"" << it.colour
       << "\"/><text x=\"" << num(it.x + 15) << "\" y=\"" << num(y + 12) << "\">" << xml_escape(it.text) << "</text>\n";
  }
  if (legend.empty())
    os << "<text x=\"" << num(L) << "\" y=\"" << num(legend_top + 12) << "\">no notes</text>\n";
  os << "<text x=\"" << num(L) << "\" y=\"" << num(legend_top + 16.0 * legend_lines + 12)
     << "\" fill=\"#666\">opacity = velocity; time in m:ss; bars numbered above the roll</text>\n";
  os << "</g>\n";

  for (int r = 0; r < n_rows; ++r) {
    const double t0 = r * cfg.row_s;
    const double t1 = std::min(dur, t0 + cfg.row_s);
    const double w = (t1 - t0) * pps;
    const double top = rows_top + r * row_h;
    const double y0 = top + bar_strip;          // top of the pitched area
    const double yd = y0 + pitched_h + drum_gap;  // top of the drum lane
    const double ybot = yd + drum_h;            // bottom of the plot
    auto X = [&](double t) { return L + (t - t0) * pps; };
    os << "<g class=\"row\" data-row=\"" << r << "\">\n";
    if (show_pitched) {
      os << "<rect x=\"" << num(L) << "\" y=\"" << num(y0) << "\" width=\"" << num(w) << "\" height=\"" << num(pitched_h)
         << "\" fill=\"#fbfbfc\" stroke=\"#c9ced6\"/>\n";
      std::string black, cl;
      for (int p = lo; p <= hi; ++p) {
        const double y = y0 + (hi - p) * nh;
        if (black_key(p)) black += "M" + num(L) + " " + num(y) + "h" + num(w) + "v" + num(nh) + "h-" + num(w) + "z";
        if (p % 12 == 0) cl += "M" + num(L) + " " + num(y + nh) + "h" + num(w);
      }
      if (!black.empty()) os << "<path d=\"" << black << "\" fill=\"#eceff3\"/>\n";
      if (!cl.empty()) os << "<path d=\"" << cl << "\" stroke=\"#b9c0ca\" stroke-width=\"0.7\"/>\n";
      for (int p = lo; p <= hi; ++p)
        if (p % 12 == 0)
          os << "<text x=\"" << num(L - 4) << "\" y=\"" << num(y0 + (hi - p) * nh + nh) << "\" text-anchor=\"end\" font-size=\"9\">C"
             << (p / 12 - 1) << "</text>\n";
    }
    if (!drum_keys.empty()) {
      os << "<rect x=\"" << num(L) << "\" y=\"" << num(yd) << "\" width=\"" << num(w) << "\" height=\"" << num(drum_h)
         << "\" fill=\"#f6f4ee\" stroke=\"#c9ced6\"/>\n";
      os << "<text x=\"" << num(L - 4) << "\" y=\"" << num(yd + std::min(drum_h, 12.0) - 2)
         << "\" text-anchor=\"end\" font-size=\"9\">Drums</text>\n";
    }
    // Bar lines and numbers.
    std::string bar_path;
    for (size_t i = 0; i < bars.size(); ++i) {
      const double t = bars[i];
      if (t < t0 - 1e-9 || t > t1 + 1e-9) continue;
      if (r + 1 < n_rows && t >= t1 - 1e-9) continue;  // drawn at the start of the next row
      bar_path += "M" + num(X(t)) + " " + num(y0) + "V" + num(ybot);
      if (i % static_cast<size_t>(bar_label_every) == 0)
        os << "<text x=\"" << num(X(t) + 2) << "\" y=\"" << num(top + 9) << "\" font-size=\"9\" fill=\"#555\">" << i + 1
           << "</text>\n";
    }
    if (!bar_path.empty()) os << "<path d=\"" << bar_path << "\" stroke=\"#8e98a5\" stroke-width=\"0.8\"/>\n";
    // Time axis.
    std::string tick_path;
    const long long k0 = static_cast<long long>(std::ceil(t0 / tick - 1e-9));
    for (long long k = k0;; ++k) {
      const double t = k * tick;
      if (t > t1 + 1e-9) break;
      tick_path += "M" + num(X(t)) + " " + num(ybot) + "v4";
      os << "<text x=\"" << num(X(t)) << "\" y=\"" << num(ybot + 14) << "\" text-anchor=\"middle\" font-size=\"9\">"
         << time_label(t, tick) << "</text>\n";
    }
    if (!tick_path.empty()) os << "<path d=\"" << tick_path << "\" stroke=\"#555\"/>\n";
    // Notes: one path per (instrument, velocity level).
    std::map<std::pair<size_t, int>, std::string> paths;
    for (const Note* n : notes) {
      const size_t ii = instrument_index[{n->is_drum, n->is_drum ? 0 : n->program}];
      const int lvl = velocity_level(n->velocity);
      if (n->is_drum) {
        if (n->onset_s < t0 || n->onset_s >= t1 + (r + 1 == n_rows ? 1e-9 : 0.0)) continue;
        const double y = yd + drum_row_h * static_cast<double>(drum_row[n->pitch]);
        paths[{ii, lvl}] += "M" + num(X(n->onset_s)) + " " + num(y) + "h3v" + num(drum_row_h - 1) + "h-3z";
        continue;
      }
      if (n->offset_s <= t0 || n->onset_s >= t1) continue;
      const double a = X(std::max(n->onset_s, t0)), b = X(std::min(n->offset_s, t1));
      const std::string nw = num(std::max(1.0, b - a));
      const double y = y0 + (hi - n->pitch) * nh;
      paths[{ii, lvl}] += "M" + num(a) + " " + num(y + 0.5) + "h" + nw + "v" + num(nh - 1) + "h-" + nw + "z";
    }
    std::vector<std::string> colour_of(instruments.size());
    for (const auto& kv : instruments) colour_of[instrument_index[kv.first]] = kv.second.colour;
    for (const auto& kv : paths) {
      char op[16];
      std::snprintf(op, sizeof op, "%.2f", level_opacity(kv.first.second));
      os << "<path d=\"" << kv.second << "\" fill=\"" << colour_of[kv.first.first] << "\" fill-opacity=\"" << op
         << "\"/>\n";
    }
    os << "</g>\n";
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace tunescribe
