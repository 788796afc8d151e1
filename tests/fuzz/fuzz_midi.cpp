// libFuzzer target: the Standard MIDI File reader (read_midi_bytes), with and
// without sustain, then the writer on whatever was read (must round-trip or
// throw a typed error, never crash).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tunescribe/errors.h"
#include "tunescribe/midi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  for (bool sustain : {true, false}) {
    tunescribe::MidiReadOptions opt;
    opt.apply_sustain = sustain;
    try {
      tunescribe::NoteSequence seq = tunescribe::read_midi_bytes(bytes, "fuzz.mid", opt);
      auto out = tunescribe::write_midi_bytes(seq);
      (void)tunescribe::read_midi_bytes(out, "fuzz-rewritten.mid", opt);
    } catch (const tunescribe::Error&) {
    }
  }
  return 0;
}
