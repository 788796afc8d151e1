// render.h — notes to audio with FluidSynth (General MIDI soundfonts).
// What it does: renders a NoteSequence with libfluidsynth (one channel per program, drums on channel
// 10) to mono float samples, finds Debian's default GM soundfont, says whether this build has FluidSynth.
// What it does not: write files (audio.h's write_wav does) or choose instruments (the notes carry them).
#pragma once

#include <string>
#include <vector>

#include "tunescribe/notes.h"

namespace tunescribe {

// Renders notes with libfluidsynth (channel per program, drums on channel 10)
// to mono float samples at rate_hz, with tail_s of release after the last
// note. NotAvailableError when built without FluidSynth, InputError when the
// soundfont cannot be loaded.
std::vector<float> render_with_fluidsynth(const NoteSequence& seq, const std::string& soundfont,
                                          int rate_hz = 44100, double tail_s = 1.0);
// /usr/share/sounds/sf2/default-GM.sf2, else FluidR3_GM.sf2, else TimGM6mb.sf2, else "".
std::string default_soundfont();
bool have_fluidsynth();

}  // namespace tunescribe
