// log.h — the library's single logging sink.
//
// What it does: levelled messages ("[component] text") sent to a callback;
// the default callback writes to stderr. The library never prints directly.
// What it does not: format results (those go to stdout from the CLI).
#pragma once

#include <functional>
#include <string>

namespace tunescribe {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Quiet = 4 };

using LogCallback = std::function<void(LogLevel, const std::string&)>;

void set_log_level(LogLevel level);
LogLevel log_level();
void set_log_callback(LogCallback cb);  // nullptr restores the stderr sink
void log_message(LogLevel level, const std::string& component, const std::string& msg);

inline void log_debug(const std::string& c, const std::string& m) { log_message(LogLevel::Debug, c, m); }
inline void log_info(const std::string& c, const std::string& m) { log_message(LogLevel::Info, c, m); }
inline void log_warn(const std::string& c, const std::string& m) { log_message(LogLevel::Warn, c, m); }
inline void log_error(const std::string& c, const std::string& m) { log_message(LogLevel::Error, c, m); }

}  // namespace tunescribe
