// midi.cpp — Standard MIDI File reader and writer (see tunescribe/midi.h for the rules).
#include "tunescribe/midi.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"

namespace tunescribe {

namespace {

using i128 = __int128;

constexpr int kDrumChannel = 9;
constexpr uint32_t kDefaultUspq = 500000;  // 120 bpm, the SMF default

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& what, const std::string& problem) {
  throw InputError("midi: " + what + ": " + problem);
}

struct RawNote {
  uint64_t on_tick = 0;
  uint64_t off_tick = 0;
  size_t track = 0;
  size_t seq = 0;      // position of the note-on inside its track
  int channel = 0;
  int pitch = 0;
  int velocity = 0;
  int program = 0;
  bool erased = false;  // removed by the sustain rule (zero length after a re-strike)
};

struct ProgramEvent {
  uint64_t tick;
  size_t track;
  size_t seq;
  int channel;
  int program;
};

struct TempoEvent {
  uint64_t tick;
  uint32_t uspq;
};

struct SustainEvent {
  uint64_t tick;
  bool on;
};

struct TimeSigEvent {
  uint64_t tick;
  int numerator;
  int denominator;
};

struct KeySigEvent {
  uint64_t tick;
  int fifths;
  bool minor;
};

struct Parsed {
  int format = 0;
  int ticks_per_quarter = 0;     // > 0 for metrical timing
  double smpte_ticks_per_s = 0;  // > 0 for SMPTE timing
  std::vector<RawNote> notes;
  std::vector<ProgramEvent> programs;
  std::vector<TempoEvent> tempos;
  std::array<std::vector<SustainEvent>, 16> sustain;
  std::vector<TimeSigEvent> time_sigs;
  std::vector<KeySigEvent> key_sigs;
  uint64_t last_tick = 0;
};

class ByteCursor {
 public:
  ByteCursor(const uint8_t* data, size_t size, const std::string& what, size_t track_index)
      : data_(data), size_(size), what_(what), track_(track_index) {}
  bool at_end() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }
  size_t pos() const { return pos_; }
  uint8_t byte(const char* context) {
    if (pos_ >= size_) fail(what_, "track " + std::to_string(track_) + ": truncated " + context);
    return data_[pos_++];
  }
  // Variable-length quantity: at most 4 bytes (28 bits), as the SMF standard allows.
  uint32_t vlq(const char* context) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = byte(context);
      v = (v << 7) | (b & 0x7F);
      if (!(b & 0x80)) return v;
    }
    fail(what_, "track " + std::to_string(track_) + ": bad variable-length quantity (more than 4 bytes) in " +
                    context + " at byte " + std::to_string(pos_));
  }
  const uint8_t* take(uint32_t n, const char* context) {
    if (n > remaining())
      fail(what_, "track " + std::to_string(track_) + ": " + context + " declares " + std::to_string(n) +
                      " bytes but only " + std::to_string(remaining()) + " remain in the track chunk");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& what_;
  size_t track_;
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
uint16_t be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }

std::string hex2(uint8_t v) {
  char b[4];
  std::snprintf(b, sizeof b, "%02x", v);
  return b;
}

// Data length of a channel-voice or system-common status (bytes after the status).
int message_data_length(uint8_t status) {
  switch (status & 0xF0) {
    case 0xC0:
    case 0xD0:
      return 1;
    case 0x80:
    case 0x90:
    case 0xA0:
    case 0xB0:
    case 0xE0:
      return 2;
    default:
      break;
  }
  switch (status) {
    case 0xF1:
    case 0xF3:
      return 1;
    case 0xF2:
      return 2;
    case 0xF6:
    case 0xF8:
    case 0xFA:
    case 0xFB:
    case 0xFC:
    case 0xFE:
      return 0;
    default:
      return -1;  // 0xF4, 0xF5, 0xF9, 0xFD: undefined
  }
}

// Parse one MTrk chunk. Notes are paired per (channel, pitch) inside the track
// (pretty_midi's rule): a note-off (or note-on velocity 0) ends every open note
// of that key, except that notes begun at the very same tick stay open when
// older ones exist. Notes still open end at the track's last event.
void parse_track(const uint8_t* data, size_t size, size_t track_index, uint64_t tick_offset,
                 const std::string& what, Parsed& out, uint64_t& track_end_tick) {
  ByteCursor cur(data, size, what, track_index);
  uint64_t tick = tick_offset;
  uint8_t running = 0;  // 0 = none
  size_t seq = 0;
  // Open notes of this track: indices into out.notes, per channel*128+pitch.
  std::map<int, std::vector<size_t>> open;

  while (!cur.at_end()) {
    tick += cur.vlq("delta time");
    ++seq;
    uint8_t status = cur.byte("event");
    uint8_t first_data = 0;
    bool have_first = false;
    if (status < 0x80) {
      if (!running)
        fail(what, "track " + std::to_string(track_index) + ": running status without a previous status byte at byte " +
                       std::to_string(cur.pos() - 1));
      first_data = status;
      have_first = true;
      status = running;
    }

    if (status == 0xFF) {  // meta event (does not change running status)
      uint8_t type = cur.byte("meta event");
      uint32_t len = cur.vlq("meta event length");
      const uint8_t* d = cur.take(len, "meta event");
      if (type == 0x51 && len == 3) {
        uint32_t uspq = (uint32_t(d[0]) << 16) | (uint32_t(d[1]) << 8) | d[2];
        if (uspq > 0) out.tempos.push_back({tick, uspq});  // a tempo of 0 is meaningless: ignored
      } else if (type == 0x58 && len >= 2) {
        int num = d[0];
        int dd = d[1];
        if (num > 0 && dd <= 6) out.time_sigs.push_back({tick, num, 1 << dd});
      } else if (type == 0x59 && len >= 2) {
        int sf = static_cast<int8_t>(d[0]);
        if (sf >= -7 && sf <= 7 && d[1] <= 1) out.key_sigs.push_back({tick, sf, d[1] == 1});
      }
      // 0x2F end of track: like mido/pretty_midi we keep reading to the chunk end.
      continue;
    }
    if (status == 0xF0 || status == 0xF7) {  // sysex / escape: skip, cancels running status
      uint32_t len = cur.vlq("sysex length");
      cur.take(len, "sysex event");
      running = 0;
      continue;
    }
    int n = message_data_length(status);
    if (n < 0) fail(what, "track " + std::to_string(track_index) + ": undefined status byte 0x" + hex2(status));
    uint8_t d[2] = {0, 0};
    for (int i = 0; i < n; ++i) {
      d[i] = (i == 0 && have_first) ? first_data : cur.byte("channel message");
      if (d[i] > 127)
        fail(what, "track " + std::to_string(track_index) + ": data byte 0x" + hex2(d[i]) +
                       " out of range 0..127 at byte " + std::to_string(cur.pos() - 1));
    }
    if (status >= 0xF0) {  // system common / real-time: no running status, ignored
      running = 0;
      continue;
    }
    running = status;
    int channel = status & 0x0F;
    int kind = status & 0xF0;
    if (kind == 0x90 && d[1] > 0) {
      RawNote note;
      note.on_tick = tick;
      note.off_tick = tick;
      note.track = track_index;
      note.seq = seq;
      note.channel = channel;
      note.pitch = d[0];
      note.velocity = d[1];
      out.notes.push_back(note);
      open[channel * 128 + d[0]].push_back(out.notes.size() - 1);
    } else if (kind == 0x80 || kind == 0x90) {
      auto it = open.find(channel * 128 + d[0]);
      if (it == open.end()) continue;  // stray note-off
      std::vector<size_t>& list = it->second;
      size_t older = 0;
      for (size_t idx : list) older += out.notes[idx].on_tick != tick;
      if (older > 0 && older < list.size()) {
        std::vector<size_t> keep;
        for (size_t idx : list) {
          if (out.notes[idx].on_tick != tick)
            out.notes[idx].off_tick = tick;
          else
            keep.push_back(idx);
        }
        list.swap(keep);
      } else {
        for (size_t idx : list) out.notes[idx].off_tick = tick;
        open.erase(it);
      }
    } else if (kind == 0xC0) {
      out.programs.push_back({tick, track_index, seq, channel, d[0]});
    } else if (kind == 0xB0 && d[0] == 64) {
      out.sustain[channel].push_back({tick, d[1] >= 64});
    }
  }
  track_end_tick = tick;
  for (auto& kv : open)
    for (size_t idx : kv.second) out.notes[idx].off_tick = tick;
  out.last_tick = std::max(out.last_tick, tick);
}

// Tick -> seconds with an exact integer accumulation of (ticks x µs/quarter).
class TempoMap {
 public:
  TempoMap(const Parsed& p) : tpq_(p.ticks_per_quarter), smpte_(p.smpte_ticks_per_s) {
    segments_.push_back({0, kDefaultUspq, 0});
    if (smpte_ > 0) return;
    std::vector<TempoEvent> ev = p.tempos;
    std::stable_sort(ev.begin(), ev.end(), [](const TempoEvent& a, const TempoEvent& b) { return a.tick < b.tick; });
    for (const auto& e : ev) {
      Segment& last = segments_.back();
      if (e.tick == last.tick) {  // several at one tick: the last one wins
        last.uspq = e.uspq;
        continue;
      }
      i128 acc = last.acc + i128(e.tick - last.tick) * last.uspq;
      segments_.push_back({e.tick, e.uspq, acc});
    }
  }
  double seconds(uint64_t tick) const {
    if (smpte_ > 0) return double(tick) / smpte_;
    auto it = std::upper_bound(segments_.begin(), segments_.end(), tick,
                               [](uint64_t t, const Segment& s) { return t < s.tick; });
    const Segment& s = *(it - 1);
    i128 acc = s.acc + i128(tick - s.tick) * s.uspq;  // µs x ticks-per-quarter
    return double(acc) / (1e6 * double(tpq_));
  }
  struct Segment {
    uint64_t tick;
    uint32_t uspq;
    i128 acc;
  };
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  int tpq_;
  double smpte_;
  std::vector<Segment> segments_;
};

// Program in effect at each note-on: the last program change before it in the
// merged stream ordered by (tick, track, position in track).
void assign_programs(Parsed& p) {
  std::vector<size_t> order(p.notes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [](uint64_t tick, size_t track, size_t seq) { return std::make_tuple(tick, track, seq); };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const RawNote& x = p.notes[a];
    const RawNote& y = p.notes[b];
    return key(x.on_tick, x.track, x.seq) < key(y.on_tick, y.track, y.seq);
  });
  std::vector<ProgramEvent> pcs = p.programs;
  std::sort(pcs.begin(), pcs.end(), [&](const ProgramEvent& a, const ProgramEvent& b) {
    return key(a.tick, a.track, a.seq) < key(b.tick, b.track, b.seq);
  });
  int program[16] = {0};
  size_t k = 0;
  for (size_t idx : order) {
    RawNote& n = p.notes[idx];
    while (k < pcs.size() && key(pcs[k].tick, pcs[k].track, pcs[k].seq) < key(n.on_tick, n.track, n.seq)) {
      program[pcs[k].channel] = pcs[k].program;
      ++k;
    }
    n.program = program[n.channel];
  }
}

// Sustain pedal as in MAESTRO evaluation (note_seq apply_sustain_control_changes),
// per channel, drums excluded. At one tick, pedal-down events are handled before
// pedal-up events, then note-ons, then note-offs. A note released while the pedal
// is down lasts until the next pedal-up (or the last event of the file); a note-on
// of the same pitch while the pedal is down ends every earlier sounding note of
// that pitch (a note left with zero length by this is removed).
void apply_sustain(Parsed& p) {
  // Global end: last note-on/off or CC64 time of the non-drum material.
  uint64_t global_end = 0;
  bool any = false;
  for (const auto& n : p.notes)
    if (n.channel != kDrumChannel) global_end = std::max(global_end, n.off_tick), any = true;
  for (int c = 0; c < 16; ++c)
    if (c != kDrumChannel)
      for (const auto& e : p.sustain[c]) global_end = std::max(global_end, e.tick), any = true;
  if (!any) return;

  for (int c = 0; c < 16; ++c) {
    if (c == kDrumChannel || p.sustain[c].empty()) continue;
    // State after each distinct tick (an up event at a tick wins over a down event).
    std::vector<SustainEvent> ev = p.sustain[c];
    std::stable_sort(ev.begin(), ev.end(), [](const SustainEvent& a, const SustainEvent& b) { return a.tick < b.tick; });
    std::vector<uint64_t> ticks;
    std::vector<char> state_after;
    for (size_t i = 0; i < ev.size();) {
      size_t j = i;
      bool has_off = false, has_on = false;
      while (j < ev.size() && ev[j].tick == ev[i].tick) (ev[j].on ? has_on : has_off) = true, ++j;
      ticks.push_back(ev[i].tick);
      state_after.push_back(has_off ? 0 : (has_on ? 1 : 0));
      i = j;
    }
    // up_ticks: ticks that carry a pedal-up event.
    std::vector<uint64_t> up_ticks;
    for (size_t i = 0; i < ev.size(); ++i)
      if (!ev[i].on && (up_ticks.empty() || up_ticks.back() != ev[i].tick)) up_ticks.push_back(ev[i].tick);
    auto pedal_down_at = [&](uint64_t t) {  // state after all pedal events at tick t
      auto it = std::upper_bound(ticks.begin(), ticks.end(), t);
      if (it == ticks.begin()) return false;
      return state_after[size_t(it - ticks.begin()) - 1] != 0;
    };

    // Notes of this channel per pitch, in processing order (onset, then file order).
    std::array<std::vector<size_t>, 128> by_pitch;
    for (size_t i = 0; i < p.notes.size(); ++i)
      if (p.notes[i].channel == c) by_pitch[p.notes[i].pitch].push_back(i);
    for (auto& list : by_pitch) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        const RawNote& x = p.notes[a];
        const RawNote& y = p.notes[b];
        return std::make_tuple(x.on_tick, x.track, x.seq) < std::make_tuple(y.on_tick, y.track, y.seq);
      });
      // next_restrike: onset of the next same-pitch note played while the pedal is down.
      uint64_t next_restrike = std::numeric_limits<uint64_t>::max();
      std::vector<uint64_t> restrike(list.size());
      for (size_t k = list.size(); k-- > 0;) {
        restrike[k] = next_restrike;
        const RawNote& n = p.notes[list[k]];
        if (pedal_down_at(n.on_tick)) next_restrike = n.on_tick;
      }
      for (size_t k = 0; k < list.size(); ++k) {
        RawNote& n = p.notes[list[k]];
        uint64_t end = n.off_tick;
        if (pedal_down_at(n.off_tick)) {
          auto it = std::upper_bound(up_ticks.begin(), up_ticks.end(), n.off_tick);
          end = (it == up_ticks.end()) ? std::max(global_end, n.off_tick) : *it;
        }
        if (restrike[k] < end) end = restrike[k];
        n.off_tick = end;
        if (end == n.on_tick && restrike[k] == n.on_tick) n.erased = true;
      }
    }
  }
}

Parsed parse_smf(const std::vector<uint8_t>& bytes, const std::string& what) {
  const uint8_t* b = bytes.data();
  const size_t size = bytes.size();
  if (size < 8 || std::memcmp(b, "MThd", 4) != 0) {
    if (size == 0) fail(what, "empty file");
    fail(what, "not a MIDI file (no MThd header)");
  }
  uint32_t hlen = be32(b + 4);
  if (hlen < 6) fail(what, "header chunk too short (" + std::to_string(hlen) + " bytes, need 6)");
  if (hlen > size - 8) fail(what, "truncated header chunk (declares " + std::to_string(hlen) + " bytes, only " +
                                      std::to_string(size - 8) + " present)");
  Parsed p;
  p.format = be16(b + 8);
  size_t ntracks = be16(b + 10);
  uint16_t division = be16(b + 12);
  if (p.format > 2) fail(what, "unknown SMF format " + std::to_string(p.format));
  if (division & 0x8000) {
    int fps = -int(static_cast<int8_t>(division >> 8));
    int tpf = division & 0xFF;
    double rate = fps == 29 ? 29.97 : double(fps);
    if ((fps != 24 && fps != 25 && fps != 29 && fps != 30) || tpf == 0)
      fail(what, "bad SMPTE time division (" + std::to_string(fps) + " frames/s, " + std::to_string(tpf) +
                     " ticks/frame)");
    p.smpte_ticks_per_s = rate * tpf;
  } else {
    if (division == 0) fail(what, "time division of 0 ticks per quarter note");
    p.ticks_per_quarter = division;
  }

  size_t pos = 8 + size_t(hlen);
  size_t found = 0;
  uint64_t offset = 0;  // format 2: tracks play one after the other
  while (found < ntracks) {
    if (size - pos < 8) {
      if (pos == size)
        fail(what, "header declares " + std::to_string(ntracks) + " tracks but the file ends after " +
                       std::to_string(found));
      fail(what, "truncated chunk header after track " + std::to_string(found));
    }
    uint32_t len = be32(b + pos + 4);
    bool is_track = std::memcmp(b + pos, "MTrk", 4) == 0;
    if (len > size - pos - 8)
      fail(what, std::string("truncated ") + (is_track ? "track" : "unknown") + " chunk " + std::to_string(found) +
                     " (declares " + std::to_string(len) + " bytes, only " + std::to_string(size - pos - 8) +
                     " present)");
    if (is_track) {
      uint64_t end_tick = 0;
      parse_track(b + pos + 8, len, found, offset, what, p, end_tick);
      if (p.format == 2) offset = end_tick;
      ++found;
    }
    pos += 8 + size_t(len);
  }
  return p;
}

template <typename T>
void keep_last_per_tick(std::vector<T>& v) {
  std::stable_sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.tick < b.tick; });
  std::vector<T> out;
  for (const auto& e : v) {
    if (!out.empty() && out.back().tick == e.tick)
      out.back() = e;
    else
      out.push_back(e);
  }
  v.swap(out);
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

void put_vlq(std::vector<uint8_t>& out, uint64_t v) {
  if (v > 0x0FFFFFFF) throw OutputError("midi: delta time too large for a MIDI file (" + std::to_string(v) + " ticks)");
  uint8_t buf[4];
  int n = 0;
  buf[n++] = v & 0x7F;
  while (v >>= 7) buf[n++] = uint8_t(0x80 | (v & 0x7F));
  while (n) out.push_back(buf[--n]);
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(uint8_t(v >> 24));
  out.push_back(uint8_t(v >> 16));
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}

struct TrackEvent {
  uint64_t tick;
  int order;  // at one tick: 0 meta, 1 note-off, 2 program change, 3 note-on
  int sub;    // tie-break (pitch)
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> track_chunk(std::vector<TrackEvent>& ev, uint64_t end_tick) {
  std::stable_sort(ev.begin(), ev.end(), [](const TrackEvent& a, const TrackEvent& b) {
    return std::make_tuple(a.tick, a.order, a.sub) < std::make_tuple(b.tick, b.order, b.sub);
  });
  std::vector<uint8_t> data;
  uint64_t last = 0;
  for (const auto& e : ev) {
    put_vlq(data, e.tick - last);
    last = e.tick;
    data.insert(data.end(), e.bytes.begin(), e.bytes.end());
  }
  put_vlq(data, std::max(end_tick, last) - last);
  data.push_back(0xFF);
  data.push_back(0x2F);
  data.push_back(0x00);
  std::vector<uint8_t> chunk = {'M', 'T', 'r', 'k'};
  put_be32(chunk, uint32_t(data.size()));
  chunk.insert(chunk.end(), data.begin(), data.end());
  return chunk;
}

// Seconds -> ticks with the tempo map being written.
class WriterTempoMap {
 public:
  WriterTempoMap(const NoteSequence& seq, const MidiWriteOptions& opt) : tpq_(opt.ticks_per_quarter) {
    std::vector<TempoChange> tempos = seq.tempos;
    for (const auto& t : tempos)
      if (!std::isfinite(t.time_s) || !std::isfinite(t.bpm) || t.bpm <= 0)
        throw InputError("midi: cannot write a tempo of " + std::to_string(t.bpm) + " bpm at " +
                         std::to_string(t.time_s) + " s");
    std::stable_sort(tempos.begin(), tempos.end(),
                     [](const TempoChange& a, const TempoChange& b) { return a.time_s < b.time_s; });
    if (tempos.empty() || tempos.front().time_s > 0) tempos.insert(tempos.begin(), TempoChange{0.0, opt.bpm});
    for (const auto& t : tempos) {
      uint32_t uspq = uint32_t(std::clamp<long long>(std::llround(6e7 / t.bpm), 1, 0xFFFFFF));
      if (segs_.empty()) {
        segs_.push_back({0, 0.0, uspq});
        continue;
      }
      uint64_t tick = to_ticks(std::max(0.0, t.time_s));
      if (tick == segs_.back().tick) {
        segs_.back().uspq = uspq;
        continue;
      }
      const Seg& s = segs_.back();
      double start_s = s.start_s + double(tick - s.tick) * s.uspq / (1e6 * tpq_);
      segs_.push_back({tick, start_s, uspq});
    }
  }
  uint64_t to_ticks(double t_s) const {
    if (!(t_s > 0)) return 0;
    // Last segment starting at or before t_s.
    auto it = std::upper_bound(segs_.begin(), segs_.end(), t_s,
                               [](double t, const Seg& seg) { return t < seg.start_s; });
    const Seg& s = *(it == segs_.begin() ? it : it - 1);
    double ticks = (t_s - s.start_s) * 1e6 * tpq_ / s.uspq;
    if (!(ticks < 1e12))
      throw InputError("midi: cannot write a time of " + std::to_string(t_s) + " s (too large for a MIDI file)");
    return s.tick + uint64_t(std::llround(std::max(0.0, ticks)));
  }
  struct Seg {
    uint64_t tick;
    double start_s;
    uint32_t uspq;
  };
  const std::vector<Seg>& segments() const { return segs_; }

 private:
  int tpq_;
  std::vector<Seg> segs_;
};

std::vector<uint8_t> meta(uint8_t type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b = {0xFF, type};
  put_vlq(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------

NoteSequence read_midi_bytes(const std::vector<uint8_t>& bytes, const std::string& what, const MidiReadOptions& opt) {
  Parsed p = parse_smf(bytes, what);
  assign_programs(p);
  if (opt.apply_sustain) apply_sustain(p);

  TempoMap map(p);
  NoteSequence seq;
  seq.source = what;
  seq.notes.reserve(p.notes.size());
  for (const auto& n : p.notes) {
    if (n.erased) continue;
    Note note;
    note.onset_s = map.seconds(n.on_tick);
    note.offset_s = map.seconds(n.off_tick);
    note.pitch = n.pitch;
    note.velocity = n.velocity;
    note.is_drum = n.channel == kDrumChannel;
    note.program = note.is_drum ? 0 : n.program;
    seq.notes.push_back(note);
  }
  seq.sort();

  if (p.smpte_ticks_per_s > 0) {
    keep_last_per_tick(p.tempos);
    for (const auto& t : p.tempos) seq.tempos.push_back({map.seconds(t.tick), 6e7 / t.uspq});
  } else {
    for (const auto& s : map.segments()) seq.tempos.push_back({map.seconds(s.tick), 6e7 / s.uspq});
  }
  keep_last_per_tick(p.time_sigs);
  for (const auto& t : p.time_sigs) seq.time_signatures.push_back({map.seconds(t.tick), t.numerator, t.denominator});
  keep_last_per_tick(p.key_sigs);
  for (const auto& k : p.key_sigs) seq.key_signatures.push_back({map.seconds(k.tick), k.fifths, k.minor});
  seq.duration_s = map.seconds(p.last_tick);
  for (const auto& n : seq.notes) seq.duration_s = std::max(seq.duration_s, n.offset_s);
  return seq;
}

NoteSequence read_midi_file(const std::string& path, const MidiReadOptions& opt) {
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file_bytes(path, size_t(1) << 30);
  } catch (const InputError& e) {
    throw InputError(std::string("midi: ") + e.what());
  }
  return read_midi_bytes(bytes, path, opt);
}

void MidiWriteOptions::validate() const {
  if (ticks_per_quarter < 1 || ticks_per_quarter > 0x7FFF)
    throw ConfigError("midi: ticks_per_quarter = " + std::to_string(ticks_per_quarter) + " out of range 1..32767");
  if (!std::isfinite(bpm) || bpm < 1.0 || bpm > 6e7)
    throw ConfigError("midi: bpm = " + std::to_string(bpm) + " out of range 1..60000000");
}

std::vector<uint8_t> write_midi_bytes(const NoteSequence& seq, const MidiWriteOptions& opt) {
  opt.validate();
  for (const auto& n : seq.notes) {
    if (!std::isfinite(n.onset_s) || !std::isfinite(n.offset_s))
      throw InputError("midi: cannot write a note with a non-finite time");
    if (n.pitch < 0 || n.pitch > 127)
      throw InputError("midi: cannot write pitch " + std::to_string(n.pitch) + " (range 0..127)");
    if (!n.is_drum && (n.program < 0 || n.program > 127))
      throw InputError("midi: cannot write program " + std::to_string(n.program) + " (range 0..127)");
  }
  WriterTempoMap map(seq, opt);

  uint64_t end_tick = map.to_ticks(seq.end_time());

  // Instruments: melodic programs in ascending order, drums last.
  std::map<std::pair<bool, int>, std::vector<const Note*>> instruments;
  for (const auto& n : seq.notes) instruments[{n.is_drum, n.is_drum ? 0 : n.program}].push_back(&n);

  // Channels: 0..8, 10..15 for melodic instruments, 9 for drums. Beyond 15 melodic
  // instruments, channels are shared (preferably with the same GM family) and the
  // sharing tracks repeat their program change before every note-on.
  std::vector<int> free_channels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15};
  std::map<std::pair<bool, int>, int> channel_of;
  std::map<int, std::vector<int>> programs_on_channel;
  size_t melodic_index = 0;
  for (const auto& kv : instruments) {
    if (kv.first.first) {
      channel_of[kv.first] = kDrumChannel;
      continue;
    }
    int program = kv.first.second;
    int ch;
    if (melodic_index < free_channels.size()) {
      ch = free_channels[melodic_index];
    } else {
      ch = -1;
      for (auto& pc : programs_on_channel)
        if (ch < 0 && gm_family(pc.second.front()) == gm_family(program)) ch = pc.first;
      if (ch < 0) ch = free_channels[melodic_index % free_channels.size()];
    }
    ++melodic_index;
    channel_of[kv.first] = ch;
    programs_on_channel[ch].push_back(program);
  }

  std::vector<std::vector<uint8_t>> chunks;
  // Track 0: tempo map, time and key signatures.
  {
    std::vector<TrackEvent> ev;
    for (const auto& s : map.segments()) {
      ev.push_back({s.tick, 0, 0, meta(0x51, {uint8_t(s.uspq >> 16), uint8_t(s.uspq >> 8), uint8_t(s.uspq)})});
    }
    for (const auto& t : seq.time_signatures) {
      int dd = 0;
      while (dd < 7 && (1 << dd) < t.denominator) ++dd;
      if (t.numerator < 1 || t.numerator > 255 || (1 << dd) != t.denominator) continue;
      ev.push_back({map.to_ticks(t.time_s), 0, 1, meta(0x58, {uint8_t(t.numerator), uint8_t(dd), 24, 8})});
    }
    for (const auto& k : seq.key_signatures) {
      if (k.fifths < -7 || k.fifths > 7) continue;
      ev.push_back({map.to_ticks(k.time_s), 0, 2, meta(0x59, {uint8_t(int8_t(k.fifths)), uint8_t(k.minor ? 1 : 0)})});
    }
    chunks.push_back(track_chunk(ev, end_tick));
  }

  for (const auto& kv : instruments) {
    const bool is_drum = kv.first.first;
    const int program = kv.first.second;
    const int ch = channel_of[kv.first];
    const bool shared = !is_drum && programs_on_channel[ch].size() > 1;
    std::vector<TrackEvent> ev;
    std::string name = gm_program_name(program, is_drum);
    ev.push_back({0, 0, 0, meta(0x03, std::vector<uint8_t>(name.begin(), name.end()))});
    if (!is_drum) ev.push_back({0, 2, 0, {uint8_t(0xC0 | ch), uint8_t(program)}});

    // Ticks, then per pitch: no overlaps (an earlier note is cut at the next onset),
    // at least one tick long, one note per onset tick (the longest kept).
    struct TN {
      uint64_t on, off;
      int pitch, velocity;
    };
    std::vector<TN> notes;
    for (const Note* n : kv.second) {
      uint64_t on = map.to_ticks(n->onset_s);
      uint64_t off = map.to_ticks(n->offset_s);
      notes.push_back({on, std::max(off, on + 1), n->pitch, std::clamp(n->velocity, 1, 127)});
    }
    std::stable_sort(notes.begin(), notes.end(), [](const TN& a, const TN& b) {
      return std::make_tuple(a.pitch, a.on, b.off) < std::make_tuple(b.pitch, b.on, a.off);
    });
    std::vector<TN> kept;
    for (const auto& n : notes) {
      if (!kept.empty() && kept.back().pitch == n.pitch) {
        if (kept.back().on == n.on) continue;  // same onset tick: the longer (first) one is kept
        if (kept.back().off > n.on) kept.back().off = n.on;
      }
      kept.push_back(n);
    }
    for (const auto& n : kept) {
      if (shared) ev.push_back({n.on, 2, n.pitch, {uint8_t(0xC0 | ch), uint8_t(program)}});
      ev.push_back({n.on, 3, n.pitch, {uint8_t(0x90 | ch), uint8_t(n.pitch), uint8_t(n.velocity)}});
      ev.push_back({n.off, 1, n.pitch, {uint8_t(0x80 | ch), uint8_t(n.pitch), 64}});
      end_tick = std::max(end_tick, n.off);
    }
    chunks.push_back(track_chunk(ev, end_tick));
  }
  // Tracks written before a later track extended end_tick keep their own end; that
  // is harmless (the file's duration is the latest end-of-track).

  if (chunks.size() > 0xFFFF) throw OutputError("midi: too many tracks");
  std::vector<uint8_t> out = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1};
  out.push_back(uint8_t(chunks.size() >> 8));
  out.push_back(uint8_t(chunks.size()));
  out.push_back(uint8_t(opt.ticks_per_quarter >> 8));
  out.push_back(uint8_t(opt.ticks_per_quarter));
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  return out;
}

void write_midi_file(const std::string& path, const NoteSequence& seq, const MidiWriteOptions& opt) {
  std::vector<uint8_t> bytes = write_midi_bytes(seq, opt);
  try {
    write_file_atomic(path, bytes);
  } catch (const OutputError& e) {
    throw OutputError(std::string("midi: ") + e.what());
  }
}

bool is_midi_path(const std::string& path) {
  auto e = lower_extension(path);
  return e == ".mid" || e == ".midi";
}

}  // namespace tunescribe
