// bench_frontend — speed of the MT3 log-mel front end and cost of audio loading.
//
//   build/bin/bench_frontend [--minutes 10] [--segment-frames 256] [--load]
//                            [--load-rate 44100] [--load-channels 2] [--quality 0]
//
// 1. Log-mel of `minutes` of synthetic 16 kHz audio (tones + noise) on one
//    thread, cut into §1.3 segments; prints the real-time factor (audio seconds
//    per second of compute). Target: >= 500x.
// 2. With --load: writes a PCM16 WAV of that length at --load-rate Hz with
//    --load-channels channels to a temp dir, then load_audio()s it in a child
//    process and prints wall time and the child's peak RSS against the size of
//    the 16 kHz mono float output (memory should stay near that size).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <sndfile.h>

#include "tunescribe/audio.h"
#include "tunescribe/frontend.h"

namespace {

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

std::vector<float> synth(size_t n, int rate) {
  std::vector<float> x(n);
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  for (size_t i = 0; i < n; ++i) {
    const double t = double(i) / rate;
    x[i] = float(0.3 * std::sin(2 * M_PI * 440.0 * t) + 0.2 * std::sin(2 * M_PI * (200.0 + 50.0 * t) * t)) + nd(rng);
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  double minutes = 10.0;
  int segment_frames = 256, load_rate = 44100, load_channels = 2, quality = 0;
  bool load = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--minutes") minutes = std::atof(next());
    else if (a == "--segment-frames") segment_frames = std::atoi(next());
    else if (a == "--load") load = true;
    else if (a == "--load-rate") load_rate = std::atoi(next());
    else if (a == "--load-channels") load_channels = std::atoi(next());
    else if (a == "--quality") quality = std::atoi(next());
    else {
      std::fprintf(stderr, "usage: %s [--minutes M] [--segment-frames F] [--load] [--load-rate HZ] "
                   "[--load-channels C] [--quality 0|1|2]\n", argv[0]);
      return 2;
    }
  }

  // 1. Log-mel speed, one thread.
  tunescribe::LogMelConfig cfg;
  cfg.segment_frames = segment_frames;
  tunescribe::LogMel lm(cfg);
  const size_t n = size_t(minutes * 60.0 * cfg.sample_rate_hz);
  const std::vector<float> x = synth(n, cfg.sample_rate_hz);
  const double audio_s = double(n) / cfg.sample_rate_hz;
  {
    auto warm = lm.segment(x.data(), std::min(n, size_t(cfg.segment_samples())), 0);  // plan + caches
    (void)warm;
  }
  double best = 1e30, best_cpu = 1e30;
  size_t frames = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = now_s(), c0 = cpu_s();
    const int count = lm.num_segments(n);
    frames = 0;
    for (int k = 0; k < count; ++k) frames += size_t(lm.segment(x.data(), n, k).n_frames);
    best = std::min(best, now_s() - t0);
    best_cpu = std::min(best_cpu, cpu_s() - c0);
  }
  std::printf("logmel: %.1f min of audio, %zu frames, %d-frame segments, one thread: best of 3 wall %.3f s "
              "=> %.0fx real time (%.2f us/frame); thread CPU %.3f s => %.0fx\n",
              minutes, frames, segment_frames, best, audio_s / best, 1e6 * best / double(frames), best_cpu,
              audio_s / best_cpu);

  if (!load) return 0;

  // 2. Loading a long file: time and peak memory (in a child process).
  char dir_tmpl[] = "/tmp/bench_frontend_XXXXXX";
  if (!mkdtemp(dir_tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string path = std::string(dir_tmpl) + "/long.wav";
  {
    SF_INFO info{};
    info.samplerate = load_rate;
    info.channels = load_channels;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) {
      std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), sf_strerror(nullptr));
      return 1;
    }
    const size_t total = size_t(minutes * 60.0 * load_rate), block = 1 << 16;
    std::vector<float> buf(block * size_t(load_channels));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (size_t done = 0; done < total; done += block) {
      const size_t m = std::min(block, total - done);
      for (size_t i = 0; i < m; ++i)
        for (int c = 0; c < load_channels; ++c)
          buf[i * size_t(load_channels) + size_t(c)] =
              float(0.4 * std::sin(2 * M_PI * 440.0 * double(done + i) / load_rate)) + nd(rng);
      sf_writef_float(f, buf.data(), sf_count_t(m));
    }
    sf_close(f);
  }
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    struct rusage before {};
    getrusage(RUSAGE_SELF, &before);
    tunescribe::AudioConfig acfg;
    acfg.resample_quality = quality;
    const double t0 = now_s();
    const tunescribe::Audio a = tunescribe::load_audio(path, acfg);
    const double dt = now_s() - t0;
    std::printf("load_audio: %.1f min, %d Hz x %d ch PCM16 -> %zu samples at 16 kHz (quality %d): %.2f s "
                "=> %.0fx real time; output %.1f MiB; RSS before load %.1f MiB\n",
                minutes, load_rate, load_channels, a.samples.size(), quality, dt, a.duration_s() / dt,
                double(a.samples.size()) * 4.0 / 1048576.0, double(before.ru_maxrss) / 1024.0);
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  std::printf("load_audio child: peak RSS %.1f MiB, CPU %.2f s user + %.2f s sys\n", double(ru.ru_maxrss) / 1024.0,
              double(ru.ru_utime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec),
              double(ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_stime.tv_usec));
  std::remove(path.c_str());
  rmdir(dir_tmpl);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
