// audio.cpp — decode audio files (libsndfile), downmix, resample (libsamplerate).
#include "tunescribe/audio.h"

#include <samplerate.h>
#include <sndfile.h>
#include <sys/stat.h>

#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>

#include "tunescribe/audio_formats.h"
#include "tunescribe/errors.h"
#include "tunescribe/resampler.h"
#include "tunescribe/fileutil.h"

namespace tunescribe {

namespace {

std::string prefix(const std::string& path) { return "audio: " + path + ": "; }

struct SndfileCloser {
  void operator()(SNDFILE* f) const {
    if (f) sf_close(f);
  }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

struct SrcDeleter {
  void operator()(SRC_STATE* s) const {
    if (s) src_delete(s);
  }
};
using SrcPtr = std::unique_ptr<SRC_STATE, SrcDeleter>;

std::string format_name(int format) {
  SF_FORMAT_INFO major{}, sub{};
  major.format = format & SF_FORMAT_TYPEMASK;
  sub.format = format & SF_FORMAT_SUBMASK;
  std::string out = "unknown";
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &major, sizeof(major)) == 0 && major.name) out = major.name;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &sub, sizeof(sub)) == 0 && sub.name)
    out += std::string(" (") + sub.name + ")";
  return out;
}

// True when libsndfile's header log says the data chunk is shorter than declared.
bool header_says_truncated(SNDFILE* f) {
  char log[4096];
  log[0] = '\0';
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof(log));
  std::istringstream is(log);
  std::string line;
  while (std::getline(is, line)) {
    size_t p = line.find_first_not_of(" \t");
    if (p == std::string::npos) continue;
    line = line.substr(p);
    const bool data_chunk = line.rfind("data", 0) == 0 || line.rfind("SSND", 0) == 0;
    const size_t colon = line.find(':'), sb = line.find("(should be");
    if (!data_chunk || colon == std::string::npos || sb == std::string::npos || sb < colon) continue;
    // "data : 32000 (should be 15979)": declared size, then what the file holds.
    char* end = nullptr;
    const long long declared = std::strtoll(line.c_str() + colon + 1, &end, 0);
    if (end == line.c_str() + colon + 1) continue;
    const long long present = std::strtoll(line.c_str() + sb + 10, &end, 0);
    if (end == line.c_str() + sb + 10) continue;
    // Streaming writers leave 0 or 0xFFFFFFFF as the size: not truncation.
    if (declared == 0 || declared >= 0xFFFFFFF0LL || declared < 0) continue;
    if (declared > present) return true;
  }
  return false;
}

struct OpenFile {
  SndfilePtr file;
  SF_INFO info{};
};

OpenFile open_checked(const std::string& path, const AudioConfig& cfg) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) throw InputError(prefix(path) + "file not found");
    throw InputError(prefix(path) + "cannot access file: " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw InputError(prefix(path) + "is a directory, not an audio file");
  if (st.st_size == 0) throw InputError(prefix(path) + "empty file (0 bytes), not audio");
  OpenFile of;
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &of.info);
  if (!f) {
    const int err = sf_error(nullptr);
    const std::string why = sf_strerror(nullptr);
    const std::string hint = audio_conversion_hint(path);  // AAC/M4A, WMA …: say how to convert
    if (!hint.empty()) throw InputError(prefix(path) + hint + " (libsndfile: " + why + ")");
    if (err == SF_ERR_UNRECOGNISED_FORMAT)
      throw InputError(prefix(path) + "not an audio file or unsupported format (libsndfile: " + why + ")");
    if (err == SF_ERR_MALFORMED_FILE)
      throw InputError(prefix(path) + "corrupt or truncated audio file (libsndfile: " + why + ")");
    throw InputError(prefix(path) + "corrupt, truncated or unsupported audio file (libsndfile: " + why + ")");
  }
  of.file.reset(f);
  const SF_INFO& in = of.info;
  if (in.channels <= 0) throw InputError(prefix(path) + "invalid channel count " + std::to_string(in.channels));
  if (in.samplerate < cfg.min_input_rate_hz || in.samplerate > cfg.max_input_rate_hz)
    throw InputError(prefix(path) + "absurd sample rate " + std::to_string(in.samplerate) + " Hz (accepted: " +
                     std::to_string(cfg.min_input_rate_hz) + " to " + std::to_string(cfg.max_input_rate_hz) + " Hz)");
  if (header_says_truncated(f))
    throw InputError(prefix(path) + "truncated file: the audio data chunk is shorter than its header declares");
  if (in.frames <= 0) throw InputError(prefix(path) + "contains zero samples");
  return of;
}

AudioInfo make_info(const std::string& path, const SF_INFO& in) {
  AudioInfo info;
  info.path = path;
  info.input_rate_hz = in.samplerate;
  info.channels = in.channels;
  info.input_frames = in.frames;
  info.format = format_name(in.format);
  return info;
}

void check_rate(const char* what, int hz) {
  if (hz < 1 || hz > 10000000)
    throw ConfigError(std::string("audio: ") + what + " = " + std::to_string(hz) + " Hz is outside [1, 10000000]");
}

}  // namespace

void AudioConfig::validate() const {
  auto range = [](const char* field, int v, int lo, int hi) {
    if (v < lo || v > hi)
      throw ConfigError(std::string("audio: AudioConfig.") + field + " = " + std::to_string(v) + " is outside [" +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  range("target_rate_hz", target_rate_hz, 1000, 384000);
  range("min_input_rate_hz", min_input_rate_hz, 1, 10000000);
  range("max_input_rate_hz", max_input_rate_hz, min_input_rate_hz, 10000000);
  range("block_frames", block_frames, 1, 1 << 24);
  range("resample_quality", resample_quality, kResamplePolyphase, SRC_LINEAR);
  if (resample_quality > SRC_SINC_FASTEST)
    throw ConfigError("audio: AudioConfig.resample_quality = " + std::to_string(resample_quality) +
                      " is not band-limited; use -1 (polyphase), 0 (sinc best), 1 (sinc medium) or 2 (sinc fastest)");
}

// ---------------------------------------------------------------------------
// AudioStream: one block of input at a time through sf_readf_float, downmix,
// NaN/Inf check and libsamplerate's streaming API; the resampled block waits
// in `pending` until read() hands it out.

struct AudioStream::Impl {
  std::string path;
  AudioConfig cfg;
  OpenFile of;
  AudioInfo info;
  int ch = 1;
  bool resampling = false;
  double ratio = 1.0;
  size_t block = 0;
  std::vector<float> inter, mono, out_block;
  SrcPtr src;                                   // libsamplerate, or
  std::unique_ptr<PolyphaseResampler> poly;     // tunescribe's own (resampler.h)
  std::vector<float> pending;  // output of the last block not yet handed out
  size_t pending_pos = 0;
  long long total_in = 0;      // input frames decoded
  long long produced = 0;      // output samples put into `pending` so far
  long long limit = 0;         // output length: llround(frames * ratio)
  long long handed = 0;        // samples returned by read()
  long long estimate = 0;      // output length implied by the header (expected_samples() until the end)
  bool input_done = false;     // the last block has been decoded and the resampler drained
  // MPEG streams: without a Xing/LAME header libsndfile estimates the frame count from the file
  // size and bit rate (lame -t: 1099226 declared, 1096704 decoded), so the decoded length may
  // differ from the header's either way; MPEG files are read to their end instead (a cut MP3
  // gives what it holds, not a truncation error).
  bool length_estimated = false;

  void append(const float* p, size_t n) {
    const size_t room = produced < limit ? size_t(limit - produced) : 0;
    n = std::min(n, room);
    pending.insert(pending.end(), p, p + n);
    produced += (long long)n;
  }

  // Feed n mono frames to the resampler; at the end, until the filter is drained.
  void run_src(const float* data, size_t n, bool last) {
    if (poly) {
      out_block.clear();
      poly->process(data, n, last, &out_block);
      append(out_block.data(), out_block.size());
      return;
    }
    SRC_DATA d{};
    d.data_in = data;
    d.input_frames = long(n);
    d.src_ratio = ratio;
    d.end_of_input = last ? 1 : 0;
    for (;;) {
      d.data_out = out_block.data();
      d.output_frames = long(out_block.size());
      const int err = src_process(src.get(), &d);
      if (err) throw InputError(prefix(path) + "resampling failed: " + src_strerror(err));
      append(out_block.data(), size_t(d.output_frames_gen));
      d.data_in += d.input_frames_used;
      d.input_frames -= d.input_frames_used;
      if (d.input_frames > 0) continue;
      if (!last || d.output_frames_gen == 0) break;
    }
  }

  // Decode the next block into `pending` (which may stay empty).
  void next_block() {
    pending.clear();
    pending_pos = 0;
    SNDFILE* f = of.file.get();
    sf_count_t got = sf_readf_float(f, inter.data(), sf_count_t(block));
    if (got < 0) got = 0;
    const int err = sf_error(f);
    if (err != SF_ERR_NO_ERROR)
      throw InputError(prefix(path) + "corrupt or truncated audio data after " + std::to_string(total_in) +
                       " frames (libsndfile: " + sf_strerror(f) + ")");
    const double inv_ch = 1.0 / double(ch);
    for (sf_count_t i = 0; i < got; ++i) {
      const float* fr = inter.data() + size_t(i) * size_t(ch);
      double acc = 0.0;
      for (int c = 0; c < ch; ++c) {
        const float v = fr[c];
        if (!std::isfinite(v))
          throw InputError(prefix(path) + "contains a non-finite sample (NaN or Inf) at frame " +
                           std::to_string(total_in + i) + ", channel " + std::to_string(c));
        acc += v;
      }
      mono[size_t(i)] = ch == 1 ? fr[0] : float(acc * inv_ch);
    }
    total_in += got;
    const bool eof = got < sf_count_t(block) || (!length_estimated && total_in >= of.info.frames);
    if (resampling)
      run_src(mono.data(), size_t(got), eof);
    else
      append(mono.data(), size_t(got));
    if (!eof) return;
    input_done = true;
    if (total_in == 0) throw InputError(prefix(path) + "contains zero samples");
    if (total_in < of.info.frames && !length_estimated)
      throw InputError(prefix(path) + "truncated file: decoded " + std::to_string(total_in) + " of " +
                       std::to_string(of.info.frames) + " frames");
    info.input_frames = total_in;
    // libsamplerate's output length differs from round(N * ratio) by at most a
    // few samples; make it exact (excess was already cut by append()).
    limit = resampling ? std::llround(double(total_in) * ratio) : total_in;
    if (produced < limit) {
      pending.resize(pending.size() + size_t(limit - produced), 0.0f);
      produced = limit;
    } else if (produced > limit) {  // read to the end (MPEG): cut the resampler's few extra samples
      const size_t cut = std::min(size_t(produced - limit), pending.size() - pending_pos);
      pending.resize(pending.size() - cut);
      produced -= (long long)cut;
    }
  }
};

AudioStream::AudioStream(const std::string& path, const AudioConfig& cfg) : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  Impl& s = *impl_;
  s.path = path;
  s.cfg = cfg;
  s.of = open_checked(path, cfg);
  const SF_INFO& in = s.of.info;
  // Integer formats are normalised to [-1, 1) by libsndfile (divide by 2^(bits-1)); float data is passed through.
  s.info = make_info(path, in);
  s.ch = in.channels;
  s.resampling = in.samplerate != cfg.target_rate_hz;
  s.ratio = double(cfg.target_rate_hz) / double(in.samplerate);
  // Keep the interleaved block near 4 MiB even for files with many channels.
  s.block = std::max<size_t>(1, std::min<size_t>(size_t(cfg.block_frames), (size_t(1) << 20) / size_t(s.ch)));
  s.inter.resize(s.block * size_t(s.ch));
  s.mono.resize(s.block);
  if (s.resampling && !src_is_valid_ratio(s.ratio))
    throw InputError(prefix(path) + "cannot resample " + std::to_string(in.samplerate) + " Hz to " +
                     std::to_string(cfg.target_rate_hz) + " Hz (ratio outside 1/256 to 256)");
  if (s.resampling && cfg.resample_quality == kResamplePolyphase &&
      PolyphaseResampler::supports(in.samplerate, cfg.target_rate_hz)) {
    s.poly = std::make_unique<PolyphaseResampler>(in.samplerate, cfg.target_rate_hz);
    s.out_block.reserve(size_t(std::ceil(double(s.block) * s.ratio)) + 64);
  } else if (s.resampling) {  // libsamplerate; SINC_BEST for a ratio the polyphase filter does not take
    int err = 0;
    s.src.reset(src_new(std::max(cfg.resample_quality, int(SRC_SINC_BEST_QUALITY)), 1, &err));
    if (!s.src) throw InputError(prefix(path) + "cannot create resampler: " + src_strerror(err));
    s.out_block.resize(size_t(std::ceil(double(s.block) * s.ratio)) + 64);
  }
  // Until the end is reached the header's frame count bounds the output (a
  // file with fewer frames is rejected as truncated).
  s.limit = s.resampling ? std::llround(double(in.frames) * s.ratio) : in.frames;
  s.estimate = s.limit;
  s.length_estimated = (in.format & SF_FORMAT_TYPEMASK) == 0x230000 /* SF_FORMAT_MPEG */;
  if (s.length_estimated) s.limit = std::numeric_limits<long long>::max() / 4;  // set from the decoded count at the end
}

AudioStream::~AudioStream() = default;
AudioStream::AudioStream(AudioStream&&) noexcept = default;
AudioStream& AudioStream::operator=(AudioStream&&) noexcept = default;

size_t AudioStream::read(float* out, size_t max_samples) {
  Impl& s = *impl_;
  size_t n = 0;
  while (n < max_samples) {
    if (s.pending_pos == s.pending.size()) {
      if (s.input_done) break;
      s.next_block();
      continue;
    }
    const size_t k = std::min(max_samples - n, s.pending.size() - s.pending_pos);
    std::copy(s.pending.begin() + std::ptrdiff_t(s.pending_pos), s.pending.begin() + std::ptrdiff_t(s.pending_pos + k),
              out + n);
    s.pending_pos += k;
    n += k;
  }
  s.handed += (long long)n;
  return n;
}

int AudioStream::rate_hz() const { return impl_->cfg.target_rate_hz; }
const std::string& AudioStream::path() const { return impl_->path; }
const AudioInfo& AudioStream::info() const { return impl_->info; }
long long AudioStream::expected_samples() const { return impl_->input_done ? impl_->limit : impl_->estimate; }
long long AudioStream::samples_read() const { return impl_->handed; }
bool AudioStream::at_end() const { return impl_->input_done && impl_->pending_pos == impl_->pending.size(); }
double AudioStream::duration_s() const { return double(impl_->handed) / double(impl_->cfg.target_rate_hz); }

AudioInfo probe_audio(const std::string& path) {
  AudioConfig cfg;
  OpenFile of = open_checked(path, cfg);
  return make_info(path, of.info);
}

Audio load_audio(const std::string& path, const AudioConfig& cfg) {
  AudioStream stream(path, cfg);
  Audio audio;
  audio.rate_hz = cfg.target_rate_hz;
  // The header's frame count is only a hint for reserve(): a corrupt header can
  // claim terabytes (fuzzer finding), so trust at most 16 frames per file byte
  // (no codec here compresses more); the vector still grows if it must.
  const AudioInfo& info = stream.info();
  const double ratio = double(cfg.target_rate_hz) / double(info.input_rate_hz);
  std::error_code size_ec;
  const double file_bytes = double(std::filesystem::file_size(path, size_ec));
  const double hinted_frames = size_ec ? 0.0 : std::min(double(info.input_frames), 16.0 * file_bytes);
  const bool resampling = info.input_rate_hz != cfg.target_rate_hz;
  audio.samples.reserve(resampling ? size_t(std::ceil(hinted_frames * ratio)) + 16 : size_t(hinted_frames));
  std::vector<float> chunk(65536);
  for (;;) {
    const size_t got = stream.read(chunk.data(), chunk.size());
    if (got == 0) break;
    audio.samples.insert(audio.samples.end(), chunk.begin(), chunk.begin() + std::ptrdiff_t(got));
  }
  audio.info = stream.info();
  // Only give back a large excess (a frame count that overstated the data):
  // shrink_to_fit copies, which would double the peak memory for a long file.
  if (audio.samples.capacity() > audio.samples.size() + audio.samples.size() / 8 + 4096) audio.samples.shrink_to_fit();
  return audio;
}

std::vector<float> resample(const std::vector<float>& in, int from_hz, int to_hz) {
  check_rate("from_hz", from_hz);
  check_rate("to_hz", to_hz);
  const double ratio = double(to_hz) / double(from_hz);
  if (!src_is_valid_ratio(ratio))
    throw ConfigError("audio: resampling ratio " + std::to_string(to_hz) + "/" + std::to_string(from_hz) +
                      " is outside libsamplerate's range (1/256 to 256)");
  if (from_hz == to_hz || in.empty()) return in;
  const size_t n_out = size_t(std::llround(double(in.size()) * ratio));
  std::vector<float> out(n_out + 64);
  int err = 0;
  SrcPtr src(src_new(SRC_SINC_BEST_QUALITY, 1, &err));
  if (!src) throw ConfigError(std::string("audio: cannot create resampler: ") + src_strerror(err));
  SRC_DATA d{};
  d.data_in = in.data();
  d.input_frames = long(in.size());
  d.src_ratio = ratio;
  d.end_of_input = 1;
  size_t produced = 0;
  for (;;) {
    d.data_out = out.data() + produced;
    d.output_frames = long(out.size() - produced);
    if (d.output_frames == 0) break;
    err = src_process(src.get(), &d);
    if (err) throw ConfigError(std::string("audio: resampling failed: ") + src_strerror(err));
    produced += size_t(d.output_frames_gen);
    d.data_in += d.input_frames_used;
    d.input_frames -= d.input_frames_used;
    if (d.input_frames == 0 && d.output_frames_gen == 0) break;
  }
  out.resize(n_out, 0.0f);
  return out;
}

void write_wav(const std::string& path, const std::vector<float>& samples, int rate_hz, bool pcm16) {
  if (rate_hz < 1) throw OutputError(prefix(path) + "invalid sample rate " + std::to_string(rate_hz));
  // Temporary name in the same folder, then rename: readers never see a partial file.
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  SF_INFO info{};
  info.samplerate = rate_hz;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | (pcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw OutputError(prefix(path) + "cannot write: " + sf_strerror(nullptr));
  SndfilePtr guard(f);
  if (pcm16) {
    int clip = SF_TRUE;  // clip out-of-range floats instead of wrapping
    sf_command(f, SFC_SET_CLIPPING, &clip, sizeof(clip));
  }
  const sf_count_t n = sf_count_t(samples.size());
  const sf_count_t wrote = n > 0 ? sf_writef_float(f, samples.data(), n) : 0;
  const bool ok = wrote == n && sf_error(f) == SF_ERR_NO_ERROR;
  const std::string why = ok ? "" : sf_strerror(f);
  guard.reset();  // sf_close flushes the header
  if (!ok) {
    std::remove(tmp.c_str());
    throw OutputError(prefix(path) + "write failed: " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = std::strerror(errno);
    std::remove(tmp.c_str());
    throw OutputError(prefix(path) + "cannot rename temporary file: " + e);
  }
}

bool is_audio_path(const std::string& path) { return is_decodable_audio_extension(path); }

}  // namespace tunescribe
