#include "test_util.h"

#include <sndfile.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace tunescribe::test {

std::string q(const std::string& s) { return "'" + s + "'"; }

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

std::string shared_dir() {
  const char* env = std::getenv("TUNESCRIBE_SHARED");
  fs::path p = env ? fs::path(env) : fs::path(TUNESCRIBE_SHARED_DIR);
  std::error_code ec;
  if (fs::is_directory(p / "corpora", ec)) return fs::weakly_canonical(p).string();
  return "";
}

std::string write_audio_file(const std::string& path, int format, int rate, int channels,
                             const std::vector<float>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  EXPECT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
  if (!f) return path;
  const sf_count_t frames = sf_count_t(interleaved.size() / size_t(channels));
  if (frames > 0) EXPECT_EQ(sf_writef_float(f, interleaved.data(), frames), frames);
  sf_close(f);
  return path;
}

std::string data_dir() { return TUNESCRIBE_TEST_DATA_DIR; }
std::string tunescribe_bin() { return TUNESCRIBE_BIN; }
std::string python() { return TUNESCRIBE_PYTHON; }

std::string temp_dir(const std::string& tag) {
  std::random_device rd;
  fs::path p = fs::temp_directory_path() /
               ("tunescribe_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
  fs::create_directories(p);
  return p.string();
}

static std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::string& cmdline) {
  std::string dir = temp_dir("cmd");
  std::string out = dir + "/out", err = dir + "/err";
  std::string full = "( " + cmdline + " ) >'" + out + "' 2>'" + err + "' </dev/null";
  int st = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

bool have_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<size_t>* shape) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error("not npy: " + path);
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, '\0');
  f.read(&header[0], hlen);
  if (header.find("'<f4'") == std::string::npos) throw std::runtime_error("not <f4: " + header);
  if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error("fortran order");
  const size_t a = header.find("'shape': (") + 10, b = header.find(')', a);
  std::string dims = header.substr(a, b - a);
  shape->clear();
  size_t count = 1;
  size_t pos = 0;
  while (pos < dims.size()) {
    size_t comma = dims.find(',', pos);
    std::string d = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (d.find_first_of("0123456789") != std::string::npos) {
      shape->push_back(std::stoul(d));
      count *= shape->back();
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::vector<float> v(count);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(float)));
  if (!f) throw std::runtime_error("short npy: " + path);
  return v;
}

}  // namespace tunescribe::test
