// note_tables.cpp — CSV note events and mir_eval note files.
#include "tunescribe/note_tables.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <vector>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"

namespace tunescribe {

std::string shortest_number(double v) {
  char buf[40];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, static_cast<size_t>(res.ptr - buf));
}

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

// One CSV record (RFC 4180 quoting, no newlines inside fields).
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  for (auto& f : out) {
    const size_t a = f.find_first_not_of(" \t"), b = f.find_last_not_of(" \t");
    f = a == std::string::npos ? std::string() : f.substr(a, b - a + 1);
  }
  return out;
}

}  // namespace

std::string notes_to_csv(const NoteSequence& seq) {
  std::string out = std::string(kNoteCsvHeader) + "\n";
  for (const Note& n : seq.notes) {
    out += shortest_number(n.onset_s) + "," + shortest_number(n.offset_s) + "," + std::to_string(n.pitch) + "," +
           std::to_string(n.velocity) + "," + std::to_string(n.is_drum ? 0 : n.program) + "," +
           csv_field(gm_program_name(n.program, n.is_drum)) + "\n";
  }
  return out;
}

std::string notes_to_mir_eval_txt(const NoteSequence& seq) {
  std::string out;
  for (const Note& n : seq.notes) {
    if (!(n.offset_s > n.onset_s)) continue;  // as score_notes_from_sequence
    out += shortest_number(n.onset_s) + "\t" + shortest_number(n.offset_s) + "\t" +
           shortest_number(midi_to_hz(n.pitch)) + "\n";
  }
  return out;
}

NoteSequence parse_notes_csv(const std::string& text, const std::string& what) {
  std::istringstream is(text);
  std::string line;
  size_t line_no = 0;
  auto fail = [&](const std::string& why) {
    return InputError("notes: " + what + ": line " + std::to_string(line_no) + ": " + why);
  };
  int c_on = -1, c_off = -1, c_pitch = -1, c_vel = -1, c_prog = -1, c_inst = -1;
  bool header = false;
  NoteSequence seq;
  seq.source = what;
  while (std::getline(is, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto f = split_csv_line(line);
    if (!header) {
      for (size_t i = 0; i < f.size(); ++i) {
        const int k = int(i);
        if (f[i] == "onset_s") c_on = k;
        else if (f[i] == "offset_s") c_off = k;
        else if (f[i] == "pitch") c_pitch = k;
        else if (f[i] == "velocity") c_vel = k;
        else if (f[i] == "program") c_prog = k;
        else if (f[i] == "instrument") c_inst = k;
      }
      if (c_on < 0 || c_off < 0 || c_pitch < 0)
        throw fail("expected a header with onset_s, offset_s and pitch columns (" + std::string(kNoteCsvHeader) + ")");
      header = true;
      continue;
    }
    auto num = [&](int col, const char* name) {
      if (col >= int(f.size())) throw fail(std::string("missing ") + name);
      const std::string& s = f[size_t(col)];
      double v = 0.0;
      const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
      if (s.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size() || !std::isfinite(v))
        throw fail(std::string(name) + " '" + s + "' is not a number");
      return v;
    };
    auto integer = [&](int col, const char* name, int lo, int hi, int dflt) {
      if (col < 0) return dflt;
      const double v = num(col, name);
      if (v != std::floor(v) || v < lo || v > hi)
        throw fail(std::string(name) + " " + f[size_t(col)] + " is not an integer in " + std::to_string(lo) + ".." +
                   std::to_string(hi));
      return int(v);
    };
    Note n;
    n.onset_s = num(c_on, "onset_s");
    n.offset_s = num(c_off, "offset_s");
    if (n.onset_s < 0 || n.offset_s < n.onset_s) throw fail("onset_s must be >= 0 and offset_s >= onset_s");
    n.pitch = integer(c_pitch, "pitch", 0, 127, 60);
    n.velocity = integer(c_vel, "velocity", 0, 127, 100);
    n.program = integer(c_prog, "program", 0, 127, 0);
    n.is_drum = c_inst >= 0 && c_inst < int(f.size()) && f[size_t(c_inst)] == gm_program_name(0, true);
    seq.notes.push_back(n);
  }
  if (!header) throw InputError("notes: " + what + ": empty CSV (expected the header " + kNoteCsvHeader + ")");
  seq.duration_s = seq.end_time();
  return seq;
}

NoteSequence read_notes_csv(const std::string& path) { return parse_notes_csv(read_file_text(path), path); }

}  // namespace tunescribe
