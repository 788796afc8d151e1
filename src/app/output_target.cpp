// output_target.cpp — -o as one output file or an output folder.
#include "tunescribe/output_target.h"

#include <filesystem>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"

namespace fs = std::filesystem;

namespace tunescribe {

OutputTarget resolve_output_target(const OutputTargetRequest& req) {
  OutputTarget t;
  if (req.output.empty()) return t;
  const std::string& o = req.output;
  std::error_code ec;
  if (fs::is_directory(o, ec)) {
    t.dir = o;
    return t;
  }
  const bool exists = fs::exists(fs::symlink_status(o, ec)) && !ec;
  std::string ext = lower_extension(o);
  if (!ext.empty()) ext.erase(0, 1);
  if (ext == "midi") ext = "mid";
  const bool format_ext = !ext.empty() && req.is_format && req.is_format(ext);
  std::error_code ec2;
  const bool single = req.inputs.size() == 1 && !fs::is_directory(req.inputs.front(), ec2);
  const std::string many = req.inputs.size() == 1 ? "a folder input" : std::to_string(req.inputs.size()) + " inputs";
  if (!single) {
    if (exists)
      throw ConfigError(req.component + ": -o " + o + " is a file; with " + many + " -o must be a folder");
    if (format_ext)
      throw ConfigError(req.component + ": -o " + o + " names a ." + ext + " file, but with " + many +
                        " -o must be a folder (one output file needs one input file)");
    t.dir = o;
    return t;
  }
  if (!exists && !format_ext) {  // a new folder, as before
    t.dir = o;
    return t;
  }
  t.file = o;
  if (req.format_given) {
    if (req.formats.size() != 1)
      throw ConfigError(req.component + ": -o " + o + " writes one file: give one --format, not " +
                        std::to_string(req.formats.size()) + " (or -o a folder)");
    t.format = req.formats.front();
  } else if (format_ext) {
    t.format = ext;
  } else {
    throw ConfigError(req.component + ": -o " + o +
                      " is an existing file whose extension names no output format: add --format or give a folder");
  }
  return t;
}

}  // namespace tunescribe
