#include "tunescribe/generate_files.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tunescribe/abc_writer.h"
#include "tunescribe/analysis.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/instruments.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/musicxml_writer.h"
#include "tunescribe/model.h"
#include "tunescribe/model_store.h"
#include "tunescribe/note_files.h"
#include "tunescribe/render.h"
#include "tunescribe/transcriber.h"
#include "tunescribe/view_outputs.h"

namespace fs = std::filesystem;

namespace tunescribe {

namespace {

NoteSequence load_prompt(const std::string& path) {
  ReadNotesOptions ro;
  ro.formats = {NotesFormat::Midi, NotesFormat::Abc, NotesFormat::Json, NotesFormat::Csv};
  ro.max_json_bytes = size_t(64) << 20;
  NotesFile f = read_notes(path, ro);
  if (f.abc_tunes > 1) log_warn("generate", path + ": " + std::to_string(f.abc_tunes) + " tunes, using the first");
  if (f.sequence.notes.empty()) throw InputError("generate: " + path + ": the prompt has no notes");
  return std::move(f.sequence);
}

// The ABC writer's analysis with the bar lines where the piece was planned: at 0 s on the tempo
// map of the MIDI metadata (the analysis would otherwise move the downbeat to where the onsets
// fit best, so that --bars 8 of notes could straddle 9 written bars). A prompt keeps the
// analysis' choice (its own bar lines may not start at 0 s).
Analysis generated_analysis(const NoteSequence& seq, const AbcWriterConfig& ac, bool anchor_at_zero) {
  Analysis an = analyse_for_abc(seq, ac);
  if (!anchor_at_zero || seq.tempos.empty() || seq.time_signatures.empty() || an.meter.phase_steps == 0) return an;
  an.meter.phase_steps = 0;
  const std::vector<Note> notes = prepare_notes(seq.notes, ac.min_note_s);
  an.at = note_beats(notes, an.beats.map, an.meter);
  an.grids = choose_beat_grids(notes, an.at, an.meter.meter, ac.grid_denominator, ac.triplets);
  return an;
}

// With --bars N the ABC's music runs from the first to the last note, so that it has N bars: notes
// starting in the last 1/32 note before the end (the sampler's blips, which the writer's grid would
// round into bar N + 1) are dropped, and the notes starting with the last onset ring until `end_s`
// (even when the sampler fell silent before the end).
void fill_planned_bars(NoteSequence& seq, double end_s, double quarter_bpm) {
  const double half_step_s = 7.5 / quarter_bpm;  // half a sixteenth
  std::vector<Note> kept;
  for (const Note& n : seq.notes)
    if (n.onset_s < end_s - half_step_s) kept.push_back(n);
  seq.notes = std::move(kept);
  double last = -1.0;
  for (const Note& n : seq.notes)
    if (!n.is_drum) last = std::max(last, n.onset_s);
  for (Note& n : seq.notes)
    if (!n.is_drum && n.onset_s == last && n.offset_s < end_s) n.offset_s = end_s;
}

double parse_tempo(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || *end != '\0' || !std::isfinite(v) || v < 20.0 || v > 400.0)
    throw ConfigError("generate: --tempo \"" + s + "\" is not a tempo (20..400 quarter notes per minute)");
  return v;
}

}  // namespace

nlohmann::json GeneratedPiece::to_json() const {
  const GenerationResult& r = result;
  return {{"name", name},
          {"files", files},
          {"seed", seed},
          {"notes", notes.notes.size()},
          {"seconds", r.seconds},
          {"prompt_seconds", r.prompt_s},
          {"segments", r.segment_tokens.size()},
          {"tokens", r.tokens_sampled},
          {"tokens_forced", r.tokens_forced},
          {"decoder_steps", r.decoder_steps},
          {"decode_seconds", r.decode_s},
          {"tokens_per_second", r.decode_s > 0 ? double(r.tokens_sampled) / r.decode_s : 0.0},
          {"wall_seconds", wall_s},
          {"invalid_tokens", r.invalid_tokens},
          {"transpose_semitones", transpose},
          {"estimated_key", estimated_key},
          {"abc", {{"meter", abc_meter}, {"key", abc_key}, {"tempo_bpm", abc_tempo_bpm}, {"bars", abc_bars}}},
          {"model", model}};
}

// The controls given as text, in the order the CLI has always checked them.
void FileGenerator::check_controls() {
  const GenerateFilesConfig& o = cfg_;
  GeneratorConfig& gc = cfg_.generator;
  gc.monophonic = o.polyphony == "mono";
  if (o.polyphony != "mono" && o.polyphony != "poly")
    throw ConfigError("generate: --polyphony \"" + o.polyphony + "\" must be mono or poly");
  if (!o.instrument.empty()) {
    gc.instrument = gm_program_from_string(o.instrument);
    if (gc.instrument < 0 || gc.instrument > 127)
      throw ConfigError("generate: --instrument \"" + o.instrument +
                        "\" is not a General MIDI instrument (a name such as violin or a program 0..127)");
    const InstrumentRange& range = instrument_range(gc.instrument);  // its practical range (instruments.h)
    gc.min_pitch = range.low;
    gc.max_pitch = range.high;
  }
  if (!o.tempo.empty()) tempo_bpm_ = parse_tempo(o.tempo);
  if (!o.meter.empty()) {
    try {
      parse_meter_fraction(o.meter, &meter_num_, &meter_den_);
    } catch (const ConfigError&) {
      throw ConfigError("generate: --meter \"" + o.meter + "\" is not a meter (e.g. 4/4, 3/4, 6/8, 2/2, C, C|)");
    }
  }
  if (!o.key.empty()) {
    try {
      key_name_ = parse_key_name(o.key);
    } catch (const ConfigError&) {
      throw ConfigError("generate: --key \"" + o.key + "\" is not a key (e.g. C, G, Em, Bb, F#m, Ddor, Amix)");
    }
  }
  std::string views;  // the view formats of --format
  {
    std::stringstream ss(o.formats);
    for (std::string f; std::getline(ss, f, ',');) {
      if (f.empty() || f == "abc" || f == "mid") continue;
      if (f == "musicxml") musicxml_ = true;
      else if (is_view_format(f)) views += (views.empty() ? "" : ",") + f;
      else
        throw ConfigError("generate: --format: unknown format '" + f +
                          "' (choose from abc, mid, musicxml, svg, roll, wav)");
    }
  }
  if (!o.prompt.empty() && !o.from_audio.empty())
    throw ConfigError("generate: --prompt and --from-audio cannot be used together");
  if (o.seed < 0) throw ConfigError("generate: --seed " + std::to_string(o.seed) + " must be >= 0");
  if (!o.name.empty() && (o.name.find('/') != std::string::npos || o.name == "." || o.name == ".."))
    throw ConfigError("generate: --name \"" + o.name + "\" must be a plain file name without '/'");
  // --format svg,roll,wav (view_outputs.h): wav is --wav; svg without abcm2ps is left out (reported at the end).
  for (const auto& f : parse_view_formats(views, "generate")) {
    if (f == "wav") cfg_.wav = true;
    else if (f == "svg" && find_abcm2ps().empty()) unavailable_ = abcm2ps_missing_message("generate");
    else view_formats_.push_back(f);
  }
  if (o.wav) {
    if (!have_fluidsynth()) throw NotAvailableError("generate: --wav needs libfluidsynth, which this build does not have");
    soundfont_ = o.soundfont.empty() ? default_soundfont() : o.soundfont;
    if (soundfont_.empty())
      throw ConfigError("generate: --wav: no default soundfont in /usr/share/sounds/sf2; pass --soundfont FILE.sf2");
    std::error_code ec;
    if (!fs::is_regular_file(soundfont_, ec)) throw ConfigError("generate: --soundfont " + soundfont_ + ": no such file");
  }
}

// Output names from the seeds; checked before any work, never overwritten without force.
void FileGenerator::plan_pieces() {
  const GenerateFilesConfig& o = cfg_;
  const fs::path dir(o.out_dir.empty() ? "." : o.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw OutputError("generate: " + o.out_dir + ": cannot create output folder: " + ec.message());
  for (int i = 0; i < o.num; ++i) {
    Piece p;
    p.seed = uint64_t(o.seed) + uint64_t(i);
    if (o.name.empty()) p.name = "generated-" + std::to_string(p.seed);
    else p.name = o.num == 1 ? o.name : o.name + "-" + std::to_string(p.seed);
    for (const char* ext : {"abc", "mid", "wav", "musicxml"}) {
      if (std::string(ext) == "wav" && !o.wav) continue;
      if (std::string(ext) == "musicxml" && !musicxml_) continue;
      p.outs.push_back((dir / (p.name + "." + ext)).string());
    }
    for (const auto& f : view_formats_) p.view_outs.push_back((dir / (p.name + "." + view_output_extension(f))).string());
    if (!o.force)
      for (const auto& f : p.outs)
        if (fs::exists(f, ec)) throw OutputError("generate: " + f + ": exists (use --force to overwrite)");
    if (!o.force)
      for (const auto& f : p.view_outs)
        if (fs::exists(f, ec)) throw OutputError("generate: " + f + ": exists (use --force to overwrite)");
    pieces_.push_back(p);
  }
}

FileGenerator::FileGenerator(const GenerateFilesConfig& cfg) : cfg_(cfg) {
  check_controls();
  // The prompt's metadata fills in tempo and meter that were not given.
  if (!cfg_.prompt.empty()) prompt_ = load_prompt(cfg_.prompt);
  if (tempo_bpm_ <= 0 && !prompt_.tempos.empty()) tempo_bpm_ = std::clamp(prompt_.tempos.front().bpm, 20.0, 400.0);
  if (meter_num_ == 0 && !prompt_.time_signatures.empty()) {
    meter_num_ = prompt_.time_signatures.front().numerator;
    meter_den_ = prompt_.time_signatures.front().denominator;
  }
  GeneratorConfig& gc = cfg_.generator;
  if (cfg_.bars > 0) {
    if (tempo_bpm_ <= 0) tempo_bpm_ = 120.0;
    if (meter_num_ == 0) meter_num_ = meter_den_ = 4;
    gc.seconds = bars_to_seconds(cfg_.bars, std::to_string(meter_num_) + "/" + std::to_string(meter_den_), tempo_bpm_);
  } else {
    gc.seconds = cfg_.seconds;
  }
  if (!cfg_.from_audio.empty() && !cfg_.seconds_given && cfg_.bars == 0) gc.seconds = 36000.0;  // the whole recording
  // --bars N: the music starts on the first downbeat (the ABC writer begins at the first note).
  gc.onset_at_start = cfg_.bars > 0 && cfg_.prompt.empty() && cfg_.from_audio.empty();
  gc.validate();
  plan_pieces();
}

FileGenerator::~FileGenerator() = default;

void FileGenerator::load_model() {
  const std::string dir = cfg_.model_dir.empty() ? default_generate_model_dir() : resolve_model_dir(cfg_.model_dir);
  if (dir.empty())
    throw ModelError("generate: no default model found (looked for models/generate and models/default in "
                     "<exe>/../share/tunescribe and the source tree); pass --model DIR");
  set_model_threads(cfg_.threads);
  model_ = Model::load(dir);
  gen_ = std::make_unique<Generator>(*model_);
  if (!cfg_.from_audio.empty()) {
    AudioConfig ac;
    ac.target_rate_hz = gen_->sample_rate_hz();
    audio_ = load_audio(cfg_.from_audio, ac);
    have_audio_ = true;
  }
}

GeneratedPiece FileGenerator::generate(size_t i) {
  if (!gen_) load_model();
  const Piece& p = pieces_.at(i);
  GeneratorConfig gc = cfg_.generator;
  gc.seed = p.seed;
  const auto t0 = std::chrono::steady_clock::now();
  GeneratedPiece out;
  out.name = p.name;
  out.files = p.outs;
  out.seed = p.seed;
  out.model = model_->name();
  out.result = gen_->generate(gc, prompt_.notes.empty() ? nullptr : &prompt_, have_audio_ ? &audio_ : nullptr);
  NoteSequence& seq = out.notes;
  seq = out.result.notes;
  seq.source = p.name;
  if (!cfg_.key.empty()) out.transpose = transpose_to_key(seq, cfg_.key, &out.estimated_key);
  if (gc.instrument >= 0) fold_into_range(seq, gc.min_pitch, gc.max_pitch);  // after transposing, still in range
  if (cfg_.bars > 0 && prompt_.notes.empty()) fill_planned_bars(seq, out.result.seconds, tempo_bpm_);
  // Metadata for MIDI and ABC.
  if (tempo_bpm_ > 0) seq.tempos = {TempoChange{0.0, tempo_bpm_}};
  if (meter_num_ > 0) seq.time_signatures = {TimeSignature{0.0, meter_num_, meter_den_}};
  if (!cfg_.key.empty()) seq.key_signatures = {KeySignature{0.0, key_name_.fifths, key_name_.minor}};
  else if (!prompt_.key_signatures.empty()) seq.key_signatures = {prompt_.key_signatures.front()};
  AbcWriterConfig ac;
  ac.title = p.name;
  ac.meter = cfg_.meter;
  ac.key = cfg_.key;
  const Analysis an = generated_analysis(seq, ac, prompt_.notes.empty());
  ScoreLayout layout = lay_out_for_abc(seq, ac, an);  // one score for ABC and MusicXML
  // The instrument's clef on its voice (the layout picks treble/bass by the median pitch).
  if (gc.instrument >= 0) set_voice_clef(&layout, instrument_range(gc.instrument).clef);
  const AbcTune tune = write_abc(layout, ac);
  write_file_atomic(p.outs[0], tune.text);
  if (musicxml_) {
    MusicXmlConfig mc;
    mc.title = p.name;
    write_file_atomic(p.outs.back(), write_musicxml(layout, mc));
  }
  MidiWriteOptions mo;
  if (tempo_bpm_ > 0) mo.bpm = tempo_bpm_;
  write_midi_file(p.outs[1], seq, mo);
  if (cfg_.wav) {
    std::vector<float> samples = render_with_fluidsynth(seq, soundfont_, 44100);
    write_wav(p.outs[2], samples, 44100, true);
  }
  if (!view_formats_.empty()) {  // svg pages, piano roll (view_outputs.h)
    ViewOutputConfig vc;
    for (size_t k = 0; k < view_formats_.size(); ++k)
      for (const auto& f : write_view_files(p.view_outs[k], render_view(view_formats_[k], seq, ac, an, vc), cfg_.force, "generate"))
        out.files.push_back(f);
  }
  out.abc_meter = tune.meter;
  out.abc_key = tune.key;
  out.abc_tempo_bpm = tune.tempo_bpm;
  out.abc_bars = tune.bars;
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log_info("generate", p.outs[0] + ": " + std::to_string(seq.notes.size()) + " notes, " +
                           std::to_string(out.result.tokens_sampled) + " tokens sampled");
  return out;
}

}  // namespace tunescribe
