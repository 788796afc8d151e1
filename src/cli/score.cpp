// `tunescribe score`: options are parsed now; the scorer lands with the score issue.
#include "commands.h"

namespace tunescribe::cli {

struct ScoreOptions {
  std::vector<std::string> files;
  std::string ref_dir, est_dir;
  bool json = false, csv = false;
};

void setup_score(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<ScoreOptions>();
  auto* sub = app.add_subcommand("score", "Score transcriptions (MIDI, ABC, JSON, mir_eval .txt) against ground truth");
  sub->add_option("files", o->files, "REF EST")->expected(0, 2);
  sub->add_option("--ref-dir", o->ref_dir, "Folder of reference files (paired with --est-dir by stem)");
  sub->add_option("--est-dir", o->est_dir, "Folder of estimated files");
  sub->add_flag("--json", o->json, "Machine-readable JSON on stdout");
  sub->add_flag("--csv", o->csv, "CSV on stdout");
  sub->callback([o, global]() {
    apply_global_options(*global);
    throw NotAvailableError("score: not available yet");
  });
}

}  // namespace tunescribe::cli
