#include "tunescribe/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tunescribe {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mutex;
LogCallback g_callback;
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void set_log_callback(LogCallback cb) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_callback = std::move(cb);
}

void log_message(LogLevel level, const std::string& component, const std::string& msg) {
  if (static_cast<int>(level) < g_level.load()) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = "[" + component + "] " + msg;
  if (g_callback) {
    g_callback(level, line);
    return;
  }
  const char* prefix = level == LogLevel::Error ? "error: " : level == LogLevel::Warn ? "warning: " : "";
  std::fprintf(stderr, "%s%s\n", prefix, line.c_str());
}

}  // namespace tunescribe
