// progress_meter.h — percent-done and ETA text for long inputs, for a terminal or a log.
//
// What it does: turns "this much of that input is done after so many seconds" into the text to
// print on stderr: nothing for inputs shorter than min_total (a minute of audio by default); on a
// terminal one line rewritten in place ("\r…", at most every terminal_interval_s, ended by a
// newline at 100 %); in a log (stderr not a terminal) whole lines only — no carriage returns —
// one each time the percentage has grown by log_step_percent or log_interval_s has passed, and
// one at 100 %. Several inputs may be tracked at once (one per batch worker), from any thread.
// What it does not: print, read clocks (the caller passes elapsed seconds) or know what the units are
// beyond the word it is given ("audio").
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace tunescribe {

struct ProgressMeterConfig {
  std::string component = "transcribe";  // "[component] " starts each line
  bool terminal = false;                 // stderr is a terminal: "\r" updates
  double min_total = 60.0;               // inputs shorter than this (in the caller's units) print nothing
  double terminal_interval_s = 0.25;     // terminal: the fastest rewrite rate
  double log_step_percent = 10.0;        // log: a line per this many percent …
  double log_interval_s = 30.0;          // … or after this long without one
  void validate() const;                 // throws ConfigError
};

class ProgressMeter {
 public:
  explicit ProgressMeter(ProgressMeterConfig cfg);
  // `name` is `done` of `total` (seconds of audio) after `elapsed_s` seconds of work on it. Returns
  // the text to write to stderr now ("" = nothing): e.g. "[transcribe] song.flac: 42% of 5:12 audio,
  // 0:21 elapsed, ETA 0:29\n" in a log.
  std::string update(const std::string& name, double done, double total, double elapsed_s);
  // Forget an input (finished or failed): a later update of the same name starts afresh. Returns a
  // newline on a terminal when a line of it is still open, else "".
  std::string finish(const std::string& name);

 private:
  struct State {
    double last_print_s = -1e300;
    double last_percent = -1e300;
    bool open_line = false;  // terminal: a "\r" line without its newline yet
    bool done = false;
  };
  ProgressMeterConfig cfg_;
  std::mutex mu_;
  std::map<std::string, State> states_;
};

// "m:ss" (or "h:mm:ss" from an hour) of whole seconds, rounded; "?" for negative or non-finite values.
std::string format_clock(double seconds);

}  // namespace tunescribe
