// render.h: notes to audio with FluidSynth.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tunescribe/errors.h"
#include "tunescribe/render.h"

using namespace tunescribe;

TEST(Render, TwoNotesGiveSoundOfTheRightLength) {
  if (!have_fluidsynth() || default_soundfont().empty()) GTEST_SKIP() << "no FluidSynth or soundfont";
  NoteSequence seq;
  for (int i = 0; i < 2; ++i) {
    Note n;
    n.pitch = 60 + 7 * i;
    n.onset_s = 0.25 * i;
    n.offset_s = 0.25 * i + 0.5;
    n.velocity = 100;
    seq.notes.push_back(n);
  }
  const auto samples = render_with_fluidsynth(seq, default_soundfont(), 22050, 0.5);
  EXPECT_EQ(samples.size(), size_t(std::llround((0.75 + 0.5) * 22050)));
  float peak = 0;
  for (float s : samples) peak = std::max(peak, std::abs(s));
  EXPECT_GT(peak, 0.001f);
  EXPECT_LE(peak, 1.0f);
  EXPECT_THROW(render_with_fluidsynth(seq, default_soundfont(), 100), ConfigError);
  EXPECT_THROW(render_with_fluidsynth(seq, "/nonexistent/x.sf2"), InputError);
}
