// instruments.cpp — practical ranges and clefs of the General MIDI instruments.
#include "tunescribe/instruments.h"

#include <array>
#include <sstream>

#include "tunescribe/errors.h"

namespace tunescribe {

namespace {

// Sounding ranges (MIDI numbers; middle C = 60) from orchestration references (the comfortable
// professional range, not the extreme one); synth/FX patches get a general 36..96.
constexpr InstrumentRange kTable[128] = {
    // Piano 0-7
    {0, 21, 108, ""}, {1, 21, 108, ""}, {2, 21, 108, ""}, {3, 21, 108, ""},
    {4, 28, 103, ""}, {5, 28, 103, ""}, {6, 29, 89, ""}, {7, 29, 89, ""},
    // Chromatic percussion 8-15: celesta, glockenspiel, music box, vibraphone, marimba, xylophone,
    // tubular bells, dulcimer
    {8, 60, 108, "treble"}, {9, 79, 108, "treble"}, {10, 60, 96, "treble"}, {11, 53, 89, "treble"},
    {12, 45, 96, ""}, {13, 65, 108, "treble"}, {14, 60, 77, "treble"}, {15, 48, 84, "treble"},
    // Organ 16-23: drawbar, percussive, rock, church, reed organ, accordion, harmonica, tango accordion
    {16, 36, 96, ""}, {17, 36, 96, ""}, {18, 36, 96, ""}, {19, 24, 96, ""},
    {20, 36, 89, ""}, {21, 41, 89, ""}, {22, 60, 84, "treble"}, {23, 41, 89, ""},
    // Guitar 24-31 (sounding pitch; guitar parts are written an octave higher in treble)
    {24, 40, 79, "treble"}, {25, 40, 81, "treble"}, {26, 40, 84, "treble"}, {27, 40, 84, "treble"},
    {28, 40, 84, "treble"}, {29, 40, 84, "treble"}, {30, 40, 84, "treble"}, {31, 52, 88, "treble"},
    // Bass 32-39
    {32, 28, 67, "bass"}, {33, 28, 67, "bass"}, {34, 28, 67, "bass"}, {35, 28, 67, "bass"},
    {36, 28, 67, "bass"}, {37, 28, 67, "bass"}, {38, 24, 60, "bass"}, {39, 24, 60, "bass"},
    // Strings 40-47: violin, viola, cello, contrabass, tremolo strings, pizzicato strings, harp, timpani
    {40, 55, 100, "treble"}, {41, 48, 88, "alto"}, {42, 36, 76, "bass"}, {43, 28, 60, "bass"},
    {44, 36, 96, ""}, {45, 36, 91, ""}, {46, 24, 103, ""}, {47, 40, 57, "bass"},
    // Ensemble 48-55: string ensembles, synth strings, choir aahs, voice oohs, synth voice, orchestra hit
    {48, 36, 96, ""}, {49, 36, 96, ""}, {50, 36, 96, ""}, {51, 36, 96, ""},
    {52, 48, 79, "treble"}, {53, 48, 79, "treble"}, {54, 48, 84, "treble"}, {55, 48, 72, ""},
    // Brass 56-63: trumpet, trombone, tuba, muted trumpet, french horn, brass section, synth brass 1/2
    {56, 54, 84, "treble"}, {57, 40, 72, "bass"}, {58, 28, 58, "bass"}, {59, 54, 82, "treble"},
    {60, 41, 77, "treble"}, {61, 36, 84, ""}, {62, 36, 96, ""}, {63, 36, 96, ""},
    // Reed 64-71: soprano, alto, tenor, baritone sax, oboe, english horn, bassoon, clarinet
    {64, 56, 87, "treble"}, {65, 49, 80, "treble"}, {66, 44, 75, "treble"}, {67, 36, 69, "bass"},
    {68, 58, 91, "treble"}, {69, 52, 81, "treble"}, {70, 34, 72, "bass"}, {71, 50, 91, "treble"},
    // Pipe 72-79: piccolo, flute, recorder, pan flute, blown bottle, shakuhachi, whistle, ocarina
    {72, 74, 105, "treble"}, {73, 60, 96, "treble"}, {74, 60, 91, "treble"}, {75, 60, 96, "treble"},
    {76, 60, 84, "treble"}, {77, 55, 86, "treble"}, {78, 72, 96, "treble"}, {79, 60, 84, "treble"},
    // Synth lead 80-87
    {80, 36, 96, ""}, {81, 36, 96, ""}, {82, 48, 96, "treble"}, {83, 48, 96, "treble"},
    {84, 36, 96, ""}, {85, 48, 84, "treble"}, {86, 36, 96, ""}, {87, 28, 72, "bass"},
    // Synth pad 88-95
    {88, 36, 96, ""}, {89, 36, 96, ""}, {90, 36, 96, ""}, {91, 36, 96, ""},
    {92, 36, 96, ""}, {93, 36, 96, ""}, {94, 36, 96, ""}, {95, 36, 96, ""},
    // Synth effects 96-103
    {96, 36, 96, ""}, {97, 36, 96, ""}, {98, 36, 96, ""}, {99, 36, 96, ""},
    {100, 36, 96, ""}, {101, 36, 96, ""}, {102, 36, 96, ""}, {103, 36, 96, ""},
    // Ethnic 104-111: sitar, banjo, shamisen, koto, kalimba, bagpipe, fiddle, shanai
    {104, 48, 84, "treble"}, {105, 48, 84, "treble"}, {106, 50, 86, "treble"}, {107, 48, 84, ""},
    {108, 60, 84, "treble"}, {109, 55, 74, "treble"}, {110, 55, 100, "treble"}, {111, 60, 86, "treble"},
    // Percussive 112-119: tinkle bell, agogo, steel drums, woodblock, taiko, melodic tom, synth drum,
    // reverse cymbal
    {112, 72, 96, "treble"}, {113, 60, 84, "treble"}, {114, 52, 84, "treble"}, {115, 60, 84, "treble"},
    {116, 36, 60, "bass"}, {117, 40, 64, "bass"}, {118, 36, 72, ""}, {119, 36, 96, ""},
    // Sound effects 120-127
    {120, 36, 96, ""}, {121, 36, 96, ""}, {122, 36, 96, ""}, {123, 36, 96, ""},
    {124, 36, 96, ""}, {125, 36, 96, ""}, {126, 36, 96, ""}, {127, 36, 96, ""},
};

constexpr bool table_is_in_order() {
  for (int p = 0; p < 128; ++p)
    if (kTable[p].program != p || kTable[p].low > kTable[p].high || kTable[p].high - kTable[p].low < 11) return false;
  return true;
}
static_assert(table_is_in_order(), "one row per program, in order, each at least an octave wide");

}  // namespace

const InstrumentRange& instrument_range(int program) {
  if (program < 0 || program > 127)
    throw ConfigError("instruments: program " + std::to_string(program) + " is not a GM program (0..127)");
  return kTable[program];
}

int fold_into_range(NoteSequence& seq, int low, int high) {
  if (low < 0 || high > 127 || high - low < 11)
    throw ConfigError("instruments: range " + std::to_string(low) + ".." + std::to_string(high) +
                      " is not an octave or more within 0..127");
  int moved = 0;
  for (Note& n : seq.notes) {
    if (n.is_drum || (n.pitch >= low && n.pitch <= high)) continue;
    while (n.pitch < low) n.pitch += 12;
    while (n.pitch > high) n.pitch -= 12;
    ++moved;
  }
  return moved;
}

}  // namespace tunescribe
