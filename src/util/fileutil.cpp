#include "tunescribe/fileutil.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <random>
#include <unistd.h>

#include "tunescribe/errors.h"

namespace fs = std::filesystem;

namespace tunescribe {

namespace {
// Temporary files being written right now, so that a signal handler can remove
// them before a forced exit (remove_pending_temp_files). State per slot:
// 0 free, 1 being filled in, 2 holds a path to remove.
constexpr int kTempSlots = 64;
constexpr size_t kTempPathMax = 4096;
struct TempSlot {
  std::atomic<int> state{0};
  char path[kTempPathMax];
};
TempSlot g_temp_slots[kTempSlots];

int register_temp(const std::string& tmp) {
  if (tmp.size() >= kTempPathMax) return -1;
  for (int i = 0; i < kTempSlots; ++i) {
    int expected = 0;
    if (g_temp_slots[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_temp_slots[i].path, tmp.c_str(), tmp.size() + 1);
      g_temp_slots[i].state.store(2);
      return i;
    }
  }
  return -1;  // more writers than slots: not tracked (still removed on errors)
}
void unregister_temp(int slot) {
  if (slot >= 0) g_temp_slots[slot].state.store(0);
}
struct TempGuard {
  int slot;
  ~TempGuard() { unregister_temp(slot); }
};

void write_atomic_raw(const std::string& path, const char* data, size_t n) {
  fs::path p(path);
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  std::random_device rd;
  std::string tmp = (dir / ("." + p.filename().string() + ".tmp" + std::to_string(::getpid()) + "_" +
                            std::to_string(rd() % 1000000)))
                        .string();
  TempGuard guard{register_temp(tmp)};
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw OutputError(path + ": cannot write: " + std::strerror(errno));
  bool ok = n == 0 || std::fwrite(data, 1, n, f) == n;
  ok = (std::fflush(f) == 0) && ok;
  ok = (::fsync(::fileno(f)) == 0 || errno == EINVAL) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    int e = errno;
    std::remove(tmp.c_str());
    throw OutputError(path + ": write failed: " + std::strerror(e));
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw OutputError(path + ": cannot rename into place: " + ec.message());
  }
}
}  // namespace

void remove_pending_temp_files() noexcept {
  for (int i = 0; i < kTempSlots; ++i)
    if (g_temp_slots[i].state.load() == 2) ::unlink(g_temp_slots[i].path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic_raw(path, bytes.data(), bytes.size());
}
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_atomic_raw(path, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": no such file");
  if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) throw InputError(path + ": cannot determine size");
  if (static_cast<size_t>(size) > max_bytes)
    throw InputError(path + ": file too large (" + std::to_string(size) + " bytes)");
  in.seekg(0);
  std::vector<uint8_t> buf(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(buf.data()), size))
    throw InputError(path + ": read error");
  return buf;
}

std::string read_file_text(const std::string& path, size_t max_bytes) {
  auto b = read_file_bytes(path, max_bytes);
  return std::string(b.begin(), b.end());
}

std::string lower_extension(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

std::string path_stem(const std::string& path) { return fs::path(path).stem().string(); }

}  // namespace tunescribe
