// output_target.h — what `-o PATH` means for a command that writes one file per input and format.
//
// What it does: decides between an output folder and one output file. `-o out.mid` with a single
// input file writes exactly out.mid (the format from --format when given, which must then name one
// format, else from the extension; .midi counts as mid); an existing folder, a name ending in '/' or
// a name without an output format's extension is a folder (created when missing). With several inputs (or a folder
// input) -o must be a folder: an existing file there, or a new name with an output format's
// extension, is a ConfigError naming -o.
// What it does not: create folders or write files (batch.h does), expand folders or stdin lists.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tunescribe {

struct OutputTarget {
  std::string dir;     // "" = beside each input (or `file` is set)
  std::string file;    // one output file ("" = a folder or beside the inputs)
  std::string format;  // with `file`: the one format written there
};

struct OutputTargetRequest {
  std::string component = "transcribe";      // names the command in errors
  std::string output;                        // the -o value ("" = none)
  std::vector<std::string> inputs;           // after stdin expansion
  std::vector<std::string> formats;          // the formats asked for, in order
  bool format_given = false;                 // --format was on the command line
  std::function<bool(const std::string&)> is_format;  // "mid" → true: a format this command writes
};

// Throws ConfigError (messages name -o / --format and the path).
OutputTarget resolve_output_target(const OutputTargetRequest& req);

}  // namespace tunescribe
