// Placeholder: replaced by the MIDI implementation (foundation issue).
#include "tunescribe/midi.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
namespace tunescribe {
NoteSequence read_midi_file(const std::string& p, const MidiReadOptions&) { throw NotAvailableError("midi: " + p + ": not available yet"); }
NoteSequence read_midi_bytes(const std::vector<uint8_t>&, const std::string& w, const MidiReadOptions&) { throw NotAvailableError("midi: " + w + ": not available yet"); }
std::vector<uint8_t> write_midi_bytes(const NoteSequence&, const MidiWriteOptions&) { throw NotAvailableError("midi: not available yet"); }
void write_midi_file(const std::string& p, const NoteSequence&, const MidiWriteOptions&) { throw NotAvailableError("midi: " + p + ": not available yet"); }
bool is_midi_path(const std::string& p) { auto e = lower_extension(p); return e == ".mid" || e == ".midi"; }
}  // namespace tunescribe
