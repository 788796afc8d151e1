// commands.h — the CLI's subcommands. Each one has an options struct, a
// setup_*() that declares its flags on a CLI11 app and a run_*() that calls
// the library. Only this layer maps errors to exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tunescribe/errors.h"

namespace tunescribe::cli {

constexpr int kExitOk = 0;
constexpr int kExitSomeFailed = 1;  // an input failed, or a --fail-under gate tripped
constexpr int kExitUsage = 2;       // bad flags, bad configuration, feature not available
constexpr int kExitModel = 3;       // model directory missing/corrupt

struct GlobalOptions {
  bool verbose = false;
  bool quiet = false;
};

std::shared_ptr<GlobalOptions> add_global_options(CLI::App& app);
void apply_global_options(const GlobalOptions& g);

void setup_transcribe(CLI::App& app, std::shared_ptr<GlobalOptions> global);
void setup_generate(CLI::App& app, std::shared_ptr<GlobalOptions> global);
void setup_score(CLI::App& app, std::shared_ptr<GlobalOptions> global);
void setup_tokens(CLI::App& app, std::shared_ptr<GlobalOptions> global);  // hidden: training targets
void setup_import_mt3(CLI::App& app, std::shared_ptr<GlobalOptions> global);
void setup_models(CLI::App& app, std::shared_ptr<GlobalOptions> global);

// Expand the positional inputs: "-" is replaced by the paths read from stdin,
// one per line (trailing CR and spaces removed, empty lines skipped).
std::vector<std::string> expand_stdin_paths(const std::vector<std::string>& args);

// The exit code a subcommand's callback chose (callbacks cannot return one).
void set_exit_code(int code);
int exit_code();
// Print "error: <message>" to stderr and return the matching exit code.
int report_error(const tunescribe::Error& e);
int exit_code_for(const tunescribe::Error& e);

}  // namespace tunescribe::cli
