// tunescribe — command-line entry point. Thin: builds the CLI11 app from the
// per-subcommand setup functions and turns library errors into exit codes.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "tunescribe/errors.h"
#include "tunescribe/version.h"

int main(int argc, char** argv) {
  // Named, so that usage lines say "tunescribe ..." rather than the path it was started from.
  CLI::App app{"tunescribe — transcribe recordings to ABC/MIDI, generate music, score transcriptions", "tunescribe"};
  app.set_version_flag("-V,--version", std::string("tunescribe ") + tunescribe::version_string() +
                                           " (commit " + tunescribe::git_commit() + ")\n" +
                                           tunescribe::build_info());
  app.require_subcommand(1);
  app.fallthrough();
  auto global = tunescribe::cli::add_global_options(app);
  tunescribe::cli::setup_transcribe(app, global);
  tunescribe::cli::setup_generate(app, global);
  tunescribe::cli::setup_score(app, global);
  tunescribe::cli::setup_tokens(app, global);
  tunescribe::cli::setup_import_mt3(app, global);
  tunescribe::cli::setup_models(app, global);
  app.footer("Output formats (transcribe --format): abc (ABC 2.1 tune), mid (Standard MIDI File), json (note\n"
             "list), csv (note events: onset_s,offset_s,pitch,velocity,program,instrument), txt (mir_eval:\n"
             "onset offset frequency_Hz), svg (sheet music by abcm2ps), roll (piano-roll SVG), wav (the notes\n"
             "played by FluidSynth); generate writes abc and mid by default, the others with -f; score reads\n"
             ".mid .midi .abc .json .txt .csv and writes an HTML report with --report.\n"
             "Exit codes: 0 success, 1 some input failed or a --fail-under gate tripped, 2 usage or\n"
             "configuration error, 3 model error. Run 'tunescribe SUBCOMMAND --help' for details.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : tunescribe::cli::kExitUsage;
  } catch (const tunescribe::Error& e) {
    return tunescribe::cli::report_error(e);
  }
  return tunescribe::cli::exit_code();
}
