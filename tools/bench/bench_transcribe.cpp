// bench_transcribe — end-to-end speed and memory of the real Transcriber path.
//
//   build/bin/bench_transcribe [--model DIR]... [--random-config SPEC]...
//       [--audio FILE] [--resample-quality -1] [--duration-s S] [--threads 2] [--batch-size 0 (auto)]
//       [--max-steps 1024,128] [--decoder auto] [--precision auto|fp32|int8] [--repeat 2] [--keep-dir DIR]
//
// Models: --model DIR (a model directory; default models/tiny when no model
// is given) and/or --random-config SPEC, a random-weights model written as fp16
// safetensors (the shipped format) with the tiny model's front end and codec to
// a temporary directory and loaded like any other. SPEC is a preset — "base"
// (tools/train/train.py's base: d 384, 6x64 heads, mlp 1024, 6+4 layers),
// "20m" (bench_model's: d 384, 6x64, mlp 768, 6+6), "small" (d 256, 4x64,
// mlp 768, 4+4), "mt3" (d 512, 6x64, mlp 1024, 8+8) — or
// "D,HxHD,MLP,ENC,DEC", e.g. "320,5x64,768,5,3". Both options repeat.
//
// Audio: --audio FILE (default examples/tunescribe-waltz.flac) is decoded and
// resampled with load_audio (timed: "load"; --resample-quality is
// AudioConfig::resample_quality: -1 polyphase (resampler.h), the default, 0 SINC_BEST, 1 SINC_MEDIUM,
// 2 SINC_FASTEST); --duration-s S tiles the decoded signal to S seconds in memory (the load time is then scaled by S / file
// duration, i.e. charged as if a file of S seconds had been read).
//
// Decode cap: --max-steps (TranscriberConfig::max_decode_steps, a list).
// Random weights never emit EOS, so every segment decodes exactly the cap:
// 1024 is the worst case, 85–100 the training data's mean tokens per segment,
// 182 its p95 (docs/training.md).
//
// Decoding path: --decoder (TranscriberConfig::decoder, a list: auto, tokens,
// frames; e.g. "tokens,frames" times both paths of an hconv model). The frames
// path has no decode cap: it runs once per model, with the first --max-steps.
//
// Reports per model and cap: processing time ÷ audio duration (RTF) and its
// inverse (× real time), with and without loading; the time split (load +
// resample, front end, encoder, decoder, codec; wall and process CPU
// seconds); encoder ms per segment; decoder tokens per second (wall and per
// CPU-second); peak RSS (VmHWM) and RSS sampled during the run; load average.
// The best (lowest wall) of --repeat runs is reported.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunescribe/audio.h"
#include "tunescribe/model.h"
#include "tunescribe/safetensors.h"
#include "tunescribe/transcriber.h"

using namespace tunescribe;
namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// A field of /proc/self/status in MiB (VmRSS, VmHWM), -1 when unavailable.
double proc_status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      std::istringstream ss(line.substr(key.size() + 1));
      double kib = 0;
      ss >> kib;
      return kib / 1024.0;
    }
  }
  return -1;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, sep))
    if (!x.empty()) out.push_back(x);
  return out;
}

ModelConfig parse_spec(const std::string& spec) {
  ModelConfig c;
  c.input_depth = 512;
  c.vocab_size = 1536;
  c.max_positions = 2048;
  auto set = [&](int d, int h, int hd, int mlp, int enc, int dec) {
    c.d_model = d;
    c.num_heads = h;
    c.head_dim = hd;
    c.mlp_dim = mlp;
    c.num_encoder_layers = enc;
    c.num_decoder_layers = dec;
  };
  if (spec == "base") set(384, 6, 64, 1024, 6, 4);
  else if (spec == "20m") set(384, 6, 64, 768, 6, 6);
  else if (spec == "small") set(256, 4, 64, 768, 4, 4);
  else if (spec == "mt3") set(512, 6, 64, 1024, 8, 8);
  else {
    auto f = split(spec, ',');
    auto hh = f.size() == 5 ? split(f[1], 'x') : std::vector<std::string>{};
    if (f.size() != 5 || hh.size() != 2) {
      std::fprintf(stderr, "bench_transcribe: bad --random-config '%s' (preset base|20m|small|mt3 or D,HxHD,MLP,ENC,DEC)\n",
                   spec.c_str());
      std::exit(2);
    }
    set(std::atoi(f[0].c_str()), std::atoi(hh[0].c_str()), std::atoi(hh[1].c_str()), std::atoi(f[2].c_str()),
        std::atoi(f[3].c_str()), std::atoi(f[4].c_str()));
  }
  c.validate();
  return c;
}

// Writes a random-weights model directory (fp16, the tiny model's front end and codec).
void write_random_model(const std::string& dir, const ModelConfig& c, const std::string& name) {
  std::ifstream tf(std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny/config.json");
  nlohmann::json tiny = nlohmann::json::parse(tf);
  nlohmann::json cfg = {{"model_type", "tunescribe-mt3"},
                        {"format_version", 1},
                        {"name", name},
                        {"frontend", tiny.at("frontend")},
                        {"codec", tiny.at("codec")},
                        {"model", c.to_json()},
                        {"training", {{"note", "random weights (bench_transcribe); not trained"}}}};
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << cfg.dump(2) << "\n";
  write_safetensors(dir + "/model.safetensors", random_model_tensors(c, 42, /*with_null_memory=*/false), "F16");
}

struct RunResult {
  double wall_s = 0, cpu_s = 0;
  TranscribeProfile prof;
  size_t notes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, batch_size = 0, repeat = 2, resample_quality = -1;
  double duration_s = 0;
  std::string audio_path = std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.flac";
  std::string steps_arg = "1024,128", keep_dir, decoder_arg = "auto", precision = "auto";
  std::vector<std::string> model_dirs, specs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_transcribe: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") model_dirs.push_back(next());
    else if (a == "--random-config") specs.push_back(next());
    else if (a == "--audio") audio_path = next();
    else if (a == "--resample-quality") resample_quality = std::atoi(next().c_str());
    else if (a == "--duration-s") duration_s = std::atof(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--batch-size") batch_size = std::atoi(next().c_str());
    else if (a == "--max-steps") steps_arg = next();
    else if (a == "--decoder") decoder_arg = next();
    else if (a == "--precision") precision = next();
    else if (a == "--repeat") repeat = std::max(1, std::atoi(next().c_str()));
    else if (a == "--keep-dir") keep_dir = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_transcribe [--model DIR]... [--random-config base|20m|small|mt3|D,HxHD,MLP,ENC,DEC]... "
                   "[--audio FILE] [--resample-quality -1|0|1|2] [--duration-s S] [--threads N] [--batch-size N] [--max-steps N,N] "
                   "[--decoder auto|tokens|frames[,...]] [--precision auto|fp32|int8] [--repeat N] "
                   "[--keep-dir DIR]\n");
      return 2;
    }
  }
  if (model_dirs.empty() && specs.empty()) model_dirs.push_back(std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny");
  std::vector<int> caps;
  for (const auto& s : split(steps_arg, ',')) caps.push_back(std::atoi(s.c_str()));
  const std::vector<std::string> decoders = split(decoder_arg, ',');
  for (const auto& d : decoders)
    if (d != "auto" && d != "tokens" && d != "frames") {
      std::fprintf(stderr, "bench_transcribe: bad --decoder '%s' (auto, tokens or frames, comma-separated)\n", d.c_str());
      return 2;
    }
  if (caps.empty() || decoders.empty()) {
    std::fprintf(stderr, "bench_transcribe: --max-steps and --decoder need at least one value\n");
    return 2;
  }

  std::printf("load average at start: %s\n", loadavg().c_str());
  std::printf("RSS at start: %.1f MiB\n", proc_status_mib("VmRSS"));

  // Audio: decode + resample (best of `repeat`), then tile to the requested duration.
  Audio audio;
  double load_wall = 1e30, load_cpu = 0;
  for (int r = 0; r < repeat; ++r) {
    double t0 = now_s(), c0 = cpu_s();
    AudioConfig ac;
    ac.resample_quality = resample_quality;
    Audio a = load_audio(audio_path, ac);
    double w = now_s() - t0;
    if (w < load_wall) {
      load_wall = w;
      load_cpu = cpu_s() - c0;
    }
    audio = std::move(a);
  }
  const double file_s = audio.duration_s();
  std::printf("audio %s: %.2f s, %d Hz x %d ch (%s) -> 16 kHz mono; load+resample %.3f s wall, %.3f s CPU "
              "(%.0fx real time per CPU-second; resample quality %d)\n",
              audio_path.c_str(), file_s, audio.info.input_rate_hz, audio.info.channels, audio.info.format.c_str(),
              load_wall, load_cpu, file_s / std::max(1e-9, load_cpu), resample_quality);
  if (duration_s > 0) {
    const size_t n = static_cast<size_t>(duration_s * audio.rate_hz);
    std::vector<float> tiled(n);
    for (size_t i = 0; i < n; ++i) tiled[i] = audio.samples[i % audio.samples.size()];
    audio.samples = std::move(tiled);
    audio.samples.shrink_to_fit();
  }
  const double dur = audio.duration_s();
  const double load_scale = dur / file_s;
  if (duration_s > 0)
    std::printf("tiled to %.1f s (%.1f MiB of samples); load charged as %.3f s wall, %.3f s CPU\n", dur,
                audio.samples.size() * 4.0 / 1048576.0, load_wall * load_scale, load_cpu * load_scale);
  std::printf("RSS after audio: %.1f MiB\n", proc_status_mib("VmRSS"));

  // Model list: (label, dir, temp?)
  struct Entry {
    std::string label, dir;
    bool temp = false;
  };
  std::vector<Entry> entries;
  for (const auto& d : model_dirs) entries.push_back({d, d, false});
  std::string tmp_root;
  if (!specs.empty()) {
    tmp_root = keep_dir.empty() ? (fs::temp_directory_path() / ("bench_transcribe." + std::to_string(getpid()))).string()
                                : keep_dir;
    for (size_t k = 0; k < specs.size(); ++k) {
      ModelConfig c = parse_spec(specs[k]);
      std::string dir = tmp_root + "/random" + std::to_string(k);
      write_random_model(dir, c, "random:" + specs[k]);
      entries.push_back({"random:" + specs[k], dir, keep_dir.empty()});
    }
  }

  std::vector<std::pair<std::string, int>> runs;  // (decoder, cap)
  for (const auto& d : decoders)
    for (int cap : caps) runs.emplace_back(d, cap);
  for (const Entry& e : entries) {
    for (const auto& [decoder, cap] : runs) {
      TranscriberConfig tc;
      tc.model_dir = e.dir;
      tc.n_threads = threads;
      tc.batch_size = batch_size;
      tc.max_decode_steps = cap;
      tc.decoder = decoder;
      tc.precision = precision;
      const double rss0 = proc_status_mib("VmRSS");
      std::unique_ptr<Transcriber> owned;
      try {
        owned = std::make_unique<Transcriber>(tc);
      } catch (const std::exception& ex) {  // e.g. --decoder frames on a model without dense heads
        std::fprintf(stderr, "bench_transcribe: %s\n", ex.what());
        return 2;
      }
      Transcriber& tr = *owned;
      const bool frames = tr.decoder() == "frames";
      if (frames && cap != caps.front()) continue;  // no decode cap on the frames path
      nlohmann::json raw = nlohmann::json::parse(std::ifstream(e.dir + "/config.json"));
      ModelConfig mc = ModelConfig::from_json(raw.at("model"));
      const double file_mb = fs::file_size(e.dir + "/model.safetensors") / 1e6;
      const double rss_model = proc_status_mib("VmRSS");
      std::printf("\n== %s: %.2fM parameters (d_model %d, %dx%d heads, mlp %d, %d+%d layers, vocab %d), "
                  "model.safetensors %.1f MB, fp16 size %.1f MB; threads %d, batch %d, max steps %d, %s decoder, %s\n",
                  e.label.c_str(), mc.num_parameters() / 1e6, mc.d_model, mc.num_heads, mc.head_dim, mc.mlp_dim,
                  mc.num_encoder_layers, mc.num_decoder_layers, mc.vocab_size, file_mb, mc.num_parameters() * 2 / 1e6,
                  threads, tr.batch_size(), cap, tr.decoder().c_str(), tr.precision().c_str());
      std::printf("RSS: %.1f MiB before the model, %.1f MiB with it loaded\n", rss0, rss_model);
      std::printf("load average: %s\n", loadavg().c_str());
      RunResult best;
      best.wall_s = 1e30;
      std::vector<double> walls;
      std::vector<std::pair<double, double>> rss_trace;  // (fraction done, VmRSS MiB)
      for (int r = 0; r < repeat; ++r) {
        RunResult rr;
        tr.set_profile(&rr.prof);
        std::vector<std::pair<double, double>> trace;
        int last_decile = -1;
        auto progress = [&](int done, int total) {
          int decile = 10 * done / total;
          if (decile != last_decile) {
            trace.emplace_back(double(done) / total, proc_status_mib("VmRSS"));
            last_decile = decile;
          }
        };
        double t0 = now_s(), c0 = cpu_s();
        NoteSequence seq = tr.transcribe(audio, progress);
        rr.wall_s = now_s() - t0;
        rr.cpu_s = cpu_s() - c0;
        rr.notes = seq.notes.size();
        tr.set_profile(nullptr);
        walls.push_back(rr.wall_s);
        if (rr.wall_s < best.wall_s) {
          best = rr;
          rss_trace = trace;
        }
      }
      std::sort(walls.begin(), walls.end());
      const TranscribeProfile& p = best.prof;
      const double lw = load_wall * load_scale, lc = load_cpu * load_scale;
      const double seg_n = double(std::max<int64_t>(1, p.segments));
      std::printf("transcribe: %.1f s of audio, %lld segments, %lld tokens (%.1f per segment), %zu notes\n", dur,
                  (long long)p.segments, (long long)p.tokens, p.tokens / seg_n, best.notes);
      std::printf("  wall %.3f s (median of %d: %.3f), CPU %.3f s (%.2f cores busy)\n", best.wall_s, repeat,
                  walls[walls.size() / 2], best.cpu_s, best.cpu_s / best.wall_s);
      std::printf("  end to end incl. load+resample: RTF %.4f = %.1fx real time (CPU: %.1f audio-s per CPU-s)\n",
                  (lw + best.wall_s) / dur, dur / (lw + best.wall_s), dur / (lc + best.cpu_s));
      std::printf("  transcribe only (decoded 16 kHz audio in): RTF %.4f = %.1fx real time\n", best.wall_s / dur,
                  dur / best.wall_s);
      const double tot_w = lw + best.wall_s;
      auto line = [&](const char* name, double w, double c) {
        std::printf("  %-16s %8.3f s wall (%5.1f%%)  %8.3f s CPU\n", name, w, 100 * w / tot_w, c);
      };
      line("load+resample", lw, lc);
      line("front end", p.frontend_s, p.frontend_cpu_s);
      line(frames ? "hconv front" : "encoder", p.encoder_s, p.encoder_cpu_s);
      line(frames ? "frames decoder" : "decoder", p.decoder_s, p.decoder_cpu_s);
      line("codec+stitch", p.codec_s, p.codec_cpu_s);
      line("other", best.wall_s - p.frontend_s - p.encoder_s - p.decoder_s - p.codec_s,
           best.cpu_s - p.frontend_cpu_s - p.encoder_cpu_s - p.decoder_cpu_s - p.codec_cpu_s);
      std::printf("  encoder %.1f ms/segment wall (%.1f ms CPU); decoder %.0f tokens/s wall (%.0f per CPU-second); "
                  "front end %.1f ms/segment\n",
                  1e3 * p.encoder_s / seg_n, 1e3 * p.encoder_cpu_s / seg_n, p.tokens / std::max(1e-9, p.decoder_s),
                  p.tokens / std::max(1e-9, p.decoder_cpu_s), 1e3 * p.frontend_s / seg_n);
      std::printf("  RSS during the run (fraction done: MiB):");
      for (const auto& [f, m] : rss_trace) std::printf(" %.0f%%:%.0f", 100 * f, m);
      std::printf("\n  peak RSS (VmHWM, process so far) %.1f MiB; ru_maxrss %.1f MiB; load average %s\n",
                  proc_status_mib("VmHWM"), [] {
                    rusage ru{};
                    getrusage(RUSAGE_SELF, &ru);
                    return ru.ru_maxrss / 1024.0;
                  }(),
                  loadavg().c_str());
      std::printf("SUMMARY model=%s params_m=%.2f fp16_mb=%.1f cap=%d tok_per_seg=%.1f audio_s=%.1f wall_s=%.3f cpu_s=%.3f "
                  "x_rt_e2e=%.1f x_rt_transcribe=%.1f enc_ms_seg=%.1f dec_tok_s=%.0f dec_tok_cpu_s=%.0f peak_rss_mib=%.0f "
                  "decoder=%s\n",
                  e.label.c_str(), mc.num_parameters() / 1e6, mc.num_parameters() * 2 / 1e6, cap, p.tokens / seg_n, dur,
                  best.wall_s, best.cpu_s, dur / (lw + best.wall_s), dur / best.wall_s, 1e3 * p.encoder_s / seg_n,
                  p.tokens / std::max(1e-9, p.decoder_s), p.tokens / std::max(1e-9, p.decoder_cpu_s),
                  proc_status_mib("VmHWM"), tr.decoder().c_str());
      std::fflush(stdout);
    }
  }
  if (!tmp_root.empty() && keep_dir.empty()) {
    std::error_code ec;
    fs::remove_all(tmp_root, ec);
  }
  return 0;
}
