// progress_meter.cpp — percent and ETA text for long inputs.
#include "tunescribe/progress_meter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tunescribe/errors.h"

namespace tunescribe {

void ProgressMeterConfig::validate() const {
  auto check = [](const char* field, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi))
      throw ConfigError(std::string("progress: ProgressMeterConfig.") + field + " = " + std::to_string(v) +
                        " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  check("min_total", min_total, 0.0, 1e12);
  check("terminal_interval_s", terminal_interval_s, 0.0, 3600.0);
  check("log_step_percent", log_step_percent, 0.0, 100.0);
  check("log_interval_s", log_interval_s, 0.0, 1e6);
}

std::string format_clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

ProgressMeter::ProgressMeter(ProgressMeterConfig cfg) : cfg_(std::move(cfg)) { cfg_.validate(); }

std::string ProgressMeter::update(const std::string& name, double done, double total, double elapsed_s) {
  if (!(total > 0) || !(total >= cfg_.min_total) || !std::isfinite(done)) return "";
  std::lock_guard<std::mutex> lk(mu_);
  State& st = states_[name];
  if (st.done) return "";
  const double frac = std::min(1.0, std::max(0.0, done / total));
  const double percent = 100.0 * frac;
  const bool complete = frac >= 1.0;
  if (frac <= 0.0) return "";  // nothing measured yet: no rate, no ETA
  if (!complete) {
    if (cfg_.terminal && elapsed_s - st.last_print_s < cfg_.terminal_interval_s) return "";
    if (!cfg_.terminal && percent - st.last_percent < cfg_.log_step_percent &&
        elapsed_s - st.last_print_s < cfg_.log_interval_s)
      return "";
  }
  st.last_print_s = elapsed_s;
  st.last_percent = percent;
  std::string text = "[" + cfg_.component + "] " + name + ": " + std::to_string(int(std::floor(percent))) + "% of " +
                     format_clock(total) + " audio, " + format_clock(elapsed_s) + " elapsed";
  text += complete ? ", done" : ", ETA " + format_clock(elapsed_s * (1.0 - frac) / frac);
  if (complete) st.done = true;
  if (!cfg_.terminal) return text + "\n";
  // Terminal: rewrite the line in place; pad over a longer previous text; newline when done.
  st.open_line = !complete;
  return "\r" + text + "    " + (complete ? "\n" : "");
}

std::string ProgressMeter::finish(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = states_.find(name);
  if (it == states_.end()) return "";
  const bool open = it->second.open_line;
  states_.erase(it);
  return cfg_.terminal && open ? "\n" : "";
}

}  // namespace tunescribe
