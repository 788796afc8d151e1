#include "tunescribe/file_transcriber.h"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tunescribe/analysis.h"
#include "tunescribe/audio.h"
#include "tunescribe/audio_formats.h"
#include "tunescribe/errors.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/midi_bar_grid.h"
#include "tunescribe/musicxml_writer.h"
#include "tunescribe/note_files.h"
#include "tunescribe/note_tables.h"
#include "tunescribe/notes.h"

namespace tunescribe {

std::vector<std::string> FileTranscriberConfig::format_list() const {
  std::vector<std::string> out;
  std::stringstream ss(formats);
  std::string f;
  while (std::getline(ss, f, ',')) {
    if (f.empty()) continue;
    if (f != "mid" && f != "json" && f != "abc" && f != "csv" && f != "txt" && f != "musicxml" && !is_view_format(f))
      throw ConfigError("transcribe: --format: unknown format '" + f +
                        "' (choose from mid, json, abc, musicxml, csv, txt, svg, roll, wav)");
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  if (out.empty()) throw ConfigError("transcribe: --format is empty");
  return out;
}

bool is_transcribable_path(const std::string& path) {
  return is_audio_path(path) || is_midi_path(path) || !audio_conversion_hint(path).empty();
}

bool is_transcribe_format(const std::string& format) {
  if (format.empty() || format.find(',') != std::string::npos) return false;
  FileTranscriberConfig probe;
  probe.formats = format;
  try {
    probe.format_list();  // the one list of formats
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

void FileTranscriberConfig::validate() const {
  transcriber.validate();
  format_list();
  abc.validate();
  views.validate();
  if (resample != "auto" && resample != "best" && resample != "medium" && resample != "fast")
    throw ConfigError("transcribe: --resample '" + resample + "' is not one of auto, best, medium, fast");
}

namespace {

// Threads: `workers` file workers, each with its own Transcriber whose model runs `threads`
// batch-split workers (process-wide setting). Keeps the product within the machine's cores.
int fit_model_threads(int n_workers, int threads, bool any_audio) {
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  if (!any_audio || n_workers * threads <= hw) return threads;
  const int t = std::max(1, hw / n_workers);
  log_warn("transcribe", "--jobs " + std::to_string(n_workers) + " x --threads " + std::to_string(threads) +
                             " exceeds the " + std::to_string(hw) + " hardware threads: using --threads " +
                             std::to_string(t));
  if (n_workers > hw)
    log_warn("transcribe", "--jobs " + std::to_string(n_workers) + " exceeds the hardware threads; expect slowdowns");
  return t;
}

}  // namespace

FileTranscriber::FileTranscriber(const FileTranscriberConfig& cfg, const Batch& batch)
    : cfg_(cfg), formats_(cfg.format_list()), batch_(batch), transcribers_(static_cast<size_t>(batch.workers())) {
  const auto& jobs = batch.jobs();
  const bool any_audio = std::any_of(jobs.begin(), jobs.end(), [](const BatchJob& j) { return is_audio_path(j.input); });
  cfg_.transcriber.n_threads = fit_model_threads(batch.workers(), cfg.transcriber.n_threads, any_audio);
}

FileTranscriber::~FileTranscriber() = default;

NoteSequence FileTranscriber::read(const std::string& input, int worker, double* duration_s) {
  if (!is_audio_path(input)) {
    const std::string hint = audio_conversion_hint(input);  // .m4a, .wma …: how to convert
    if (!hint.empty()) throw InputError("audio: " + input + ": " + hint);
    ReadNotesOptions ro;
    ro.formats = {NotesFormat::Midi};
    ro.also_expected = "audio (" + audio_extensions_text() + ")";
    ro.apply_sustain = cfg_.apply_sustain;
    NoteSequence seq = read_notes(input, ro).sequence;
    *duration_s = seq.end_time();
    return seq;
  }
  auto& transcriber = transcribers_.at(static_cast<size_t>(worker));
  if (!transcriber) {
    try {
      transcriber = std::make_unique<Transcriber>(cfg_.transcriber);
    } catch (const ConfigError& e) {  // e.g. --decoder frames on a model without heads: stops the batch
      throw NotAvailableError(e.what());
    }
  }
  AudioConfig ac;
  ac.target_rate_hz = transcriber->sample_rate_hz();
  ac.resample_quality = cfg_.resample == "best"     ? 0
                        : cfg_.resample == "medium" ? 1
                        : cfg_.resample == "fast"   ? 2
                                                    : kResamplePolyphase;  // auto, polyphase
  // Streamed: decoded, resampled and transcribed one segment at a time, so memory does not grow
  // with the recording's length.
  AudioStream audio(input, ac);
  const double rate = double(audio.rate_hz());
  if (cfg_.on_progress) cfg_.on_progress(input, 0.0, double(audio.expected_samples()) / rate);
  NoteSequence seq = transcriber->transcribe(audio, [&](int done, int total) {
    if (batch_.stop_requested()) throw BatchStopped{};
    if (!cfg_.on_progress || total <= 0) return;
    // Segments → seconds: the share done of the length known so far (exact once the stream ended).
    const double total_s = double(audio.at_end() ? audio.samples_read() : audio.expected_samples()) / rate;
    cfg_.on_progress(input, total_s * std::min(1.0, double(done) / double(total)), total_s);
  });
  *duration_s = audio.duration_s();
  seq.source = input;
  return seq;
}

namespace {

// The .mid of an audio input carries the score's bars (midi_bar_grid.h): the written tempo,
// meter and key, bar 1 where the ABC's bar 1 starts (a pickup as a short first bar) and a tempo
// map that keeps later bar lines on the ABC's; the notes keep their seconds to a tick. A MIDI
// input is written with its own metadata, as read.
std::string midi_output(const NoteSequence& seq, const ScoreLayout* layout, const Analysis* an) {
  std::vector<uint8_t> b;
  if (an && layout) {
    NoteSequence with_meta = seq;
    set_bar_grid_metadata(*layout, *an, &with_meta);
    MidiWriteOptions mo;
    mo.ticks_per_quarter = kBarGridTicksPerQuarter;
    b = write_midi_bytes(with_meta, mo);
  } else {
    b = write_midi_bytes(seq);
  }
  return std::string(b.begin(), b.end());
}

std::string json_output(const NoteSequence& seq, const std::string& input, const Analysis* an) {
  nlohmann::json j = notes_to_json(seq);
  j["input"] = input;
  if (an) {  // audio inputs: the analysis the ABC writes as Q:, M: and K:
    j["tempo_bpm"] = an->tempo_bpm;
    j["tempo_beat"] = an->meter.meter.beat.str();
    j["meter"] = an->meter.meter.text;
    j["key"] = an->key.key.text();
  }
  return j.dump(1) + "\n";
}

}  // namespace

JobResult FileTranscriber::run(const BatchJob& job, int worker) {
  JobResult res;
  double dur = 0.0;
  NoteSequence seq = read(job.input, worker, &dur);
  seq.sort();
  AbcWriterConfig ac = cfg_.abc;
  if (ac.title.empty()) ac.title = abc_title_from_path(job.input);
  // One analysis per file, shared by every output that shows it (ABC; for audio inputs also the
  // MIDI meta events and the JSON fields), so that they never disagree.
  const bool audio = is_audio_path(job.input);
  const bool want_abc = std::find(formats_.begin(), formats_.end(), "abc") != formats_.end() ||
                        std::any_of(formats_.begin(), formats_.end(), is_view_format);  // pages, roll bars
  const bool want_xml = std::find(formats_.begin(), formats_.end(), "musicxml") != formats_.end();
  std::unique_ptr<Analysis> an;
  if (audio || want_abc || want_xml) an = std::make_unique<Analysis>(analyse_for_abc(seq, ac));
  // One score layout for ABC and MusicXML: the two notations never disagree.
  std::unique_ptr<ScoreLayout> layout;
  const bool want_mid = std::find(formats_.begin(), formats_.end(), "mid") != formats_.end();
  if (want_abc || want_xml || (audio && want_mid)) layout = std::make_unique<ScoreLayout>(lay_out_for_abc(seq, ac, *an));
  const Analysis* shown = audio ? an.get() : nullptr;
  // Every output is rendered before the batch writes any.
  res.outputs.resize(formats_.size());
  for (size_t k = 0; k < formats_.size(); ++k) {
    const auto& f = formats_[k];
    if (f == "mid") {
      res.outputs[k] = midi_output(seq, layout.get(), shown);  // shown: audio inputs only
    } else if (f == "abc") {
      AbcTune tune = write_abc(*layout, ac);
      res.outputs[k] = std::move(tune.text);
      res.record_extra["abc"] = {{"meter", tune.meter}, {"key", tune.key}, {"tempo_bpm", tune.tempo_bpm}, {"bars", tune.bars}};
    } else if (f == "json") {
      res.outputs[k] = json_output(seq, job.input, shown);
    } else if (f == "csv") {
      res.outputs[k] = notes_to_csv(seq);
    } else if (f == "txt") {
      res.outputs[k] = notes_to_mir_eval_txt(seq);
    } else if (is_view_format(f)) {  // svg pages, piano roll, audio (view_outputs.h)
      std::vector<std::string> files = render_view(f, seq, ac, *an, cfg_.views);
      res.outputs[k] = std::move(files.front());
      const size_t pages = files.size();
      for (size_t p = 1; p < pages; ++p)
        res.extra_outputs.emplace_back(engraved_page_path(job.outputs[k], p + 1), std::move(files[p]));
      res.stale_outputs = later_pages(job.outputs[k], pages);
    } else if (f == "musicxml") {
      MusicXmlConfig mc;
      mc.title = ac.title;
      res.outputs[k] = write_musicxml(*layout, mc);
    }
  }
  res.details = {{"notes", seq.notes.size()}, {"duration_s", dur}};
  res.media_seconds = dur;
  return res;
}

}  // namespace tunescribe
