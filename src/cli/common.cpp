#include <cstdio>
#include <iostream>

#include "commands.h"
#include "tunescribe/log.h"

namespace tunescribe::cli {

namespace {
int g_exit_code = kExitOk;
}

void set_exit_code(int code) { g_exit_code = code; }
int exit_code() { return g_exit_code; }

std::vector<std::string> expand_stdin_paths(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a != "-") {
      out.push_back(a);
      continue;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
  }
  return out;
}

int exit_code_for(const tunescribe::Error& e) {
  if (dynamic_cast<const ModelError*>(&e)) return kExitModel;
  if (dynamic_cast<const ConfigError*>(&e)) return kExitUsage;
  if (dynamic_cast<const NotAvailableError*>(&e)) return kExitUsage;
  return kExitSomeFailed;
}

int report_error(const tunescribe::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return exit_code_for(e);
}

std::shared_ptr<GlobalOptions> add_global_options(CLI::App& app) {
  auto g = std::make_shared<GlobalOptions>();
  app.add_flag("-v,--verbose", g->verbose, "Log debug details to stderr");
  app.add_flag("-q,--quiet", g->quiet, "Log only errors to stderr (no progress)");
  return g;
}

void apply_global_options(const GlobalOptions& g) {
  if (g.quiet) set_log_level(LogLevel::Error);
  else if (g.verbose) set_log_level(LogLevel::Debug);
}

}  // namespace tunescribe::cli
