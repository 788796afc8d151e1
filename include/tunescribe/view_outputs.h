// view_outputs.h — the outputs to see and hear a result: sheet music, piano roll, audio.
// What it does: the three output formats that `transcribe` and `generate` share — svg (the ABC
// engraved by abcm2ps, engrave.h: one file per page, STEM.svg, STEM-2.svg …), roll (a piano-roll
// SVG, piano_roll.h, STEM.roll.svg, bar lines from the ABC analysis) and wav (the notes rendered
// with FluidSynth and a GM soundfont, render.h, 16-bit PCM) — their file extensions, the checks
// they need before any work (FluidSynth and the soundfont for wav; which formats an absent program
// rules out) and rendering one of them to bytes from the notes and the ABC analysis.
// What it does not: write files or decide about overwriting (batch.h, generate_files.h do, with
// write_view_files for callers without a Batch), transcribe or read inputs.
// Thread-safety: render_view may be called concurrently (FluidSynth gets a synth per call).
#pragma once

#include <string>
#include <vector>

#include "tunescribe/abc_writer.h"
#include "tunescribe/analysis.h"
#include "tunescribe/engrave.h"
#include "tunescribe/notes.h"
#include "tunescribe/piano_roll.h"

namespace tunescribe {

struct ViewOutputConfig {
  std::string soundfont;     // wav: a .sf2/.sf3 file; "" = default_soundfont() (render.h)
  int wav_rate_hz = 44100;   // wav sample rate, Hz (8000..192000)
  double wav_tail_s = 1.0;   // wav: seconds of release after the last note (0..30)
  PianoRollConfig roll;      // roll layout
  EngraveConfig engrave;     // svg: the abcm2ps program and its time limit
  void validate() const;     // throws ConfigError naming the field
};

// "svg", "roll" or "wav".
bool is_view_format(const std::string& format);
// The extension of a format's (first) output file in a transcription batch: svg → "svg",
// roll → "roll.svg", wav → "synth.wav" (so that song.wav is never the output of song.wav);
// any other format unchanged.
std::string view_output_extension(const std::string& format);
// The same for every format of a list (BatchConfig::output_exts).
std::vector<std::string> view_output_extensions(const std::vector<std::string>& formats);

// Checks what `formats` need, before any work: wav → NotAvailableError without FluidSynth in this
// build, ConfigError "<component>: --soundfont …" when no soundfont file is there; resolves
// cfg->soundfont to the file used. Returns the formats an absent external program rules out (svg
// without abcm2ps): the caller leaves them out, writes the others, then reports
// abcm2ps_missing_message(component) (exit 2).
std::vector<std::string> check_view_formats(const std::vector<std::string>& formats, ViewOutputConfig* cfg,
                                            const std::string& component);

// "svg,roll" → {"svg", "roll"} (no repeats, empty items skipped); ConfigError
// "<component>: --format: unknown format 'x' (choose from svg, roll, wav)" for anything else.
std::vector<std::string> parse_view_formats(const std::string& formats, const std::string& component);

// A comma-separated format list without `drop` ("abc,svg,roll" without svg → "abc,roll").
std::string remove_formats(const std::string& formats, const std::vector<std::string>& drop);

// One view of the notes as file contents: svg → one SVG document per page; roll → one SVG; wav →
// one WAV file (mono, 16-bit PCM). `abc` and `an` are the ABC writer's settings and the analysis it
// uses (analyse_for_abc(seq, abc)), so that the pages and the roll's bars are those of the .abc.
// Errors: NotAvailableError (no abcm2ps / FluidSynth), OutputError (abcm2ps failed), InputError
// (the soundfont cannot be loaded), ConfigError for an unknown format.
std::vector<std::string> render_view(const std::string& format, const NoteSequence& seq, const AbcWriterConfig& abc,
                                     const Analysis& an, const ViewOutputConfig& cfg);

// Mono float samples → a RIFF/WAVE file of 16-bit PCM (clipped to [-1, 1]).
std::string wav_pcm16_bytes(const std::vector<float>& samples, int rate_hz);

// The pages after page `pages` that exist on disk: engraved_page_path(first, pages + 1), + 2, …
// up to the first missing one (what an earlier, longer engraving left).
std::vector<std::string> later_pages(const std::string& first, size_t pages);

// Writes the files of one view: page 1 to `first`, page k to engraved_page_path(first, k).
// Without force, OutputError "<component>: PATH: exists (use --force to overwrite)" before
// anything is written; each file written atomically; with force, later_pages() of an earlier
// run are removed. Returns the paths written.
std::vector<std::string> write_view_files(const std::string& first, const std::vector<std::string>& contents,
                                          bool force, const std::string& component);

}  // namespace tunescribe
