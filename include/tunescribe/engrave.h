// engrave.h — ABC text → engraved sheet music as SVG pages, with the external program abcm2ps.
// What it does: finds abcm2ps ($TUNESCRIBE_ABCM2PS, else `abcm2ps` on PATH), runs it (no shell)
// on the tune in a private temporary folder with `-v` (SVG, one file per page), a time limit,
// and reads the pages back in order; the pages are made reproducible (the temporary file name in
// <title> is replaced by the tune's title, abcm2ps' CreationDate/CommandLine comments dropped).
// What it does not: write files (the caller writes the pages, e.g. STEM.svg, STEM-2.svg),
// lay out notation itself, or judge the ABC (abcm2ps' warnings are logged at debug level).
// Errors: NotAvailableError when abcm2ps is not installed (the message names the Debian package),
// OutputError when it fails, times out or writes no page.
// Thread-safety: safe to call concurrently (each call has its own temporary folder).
#pragma once

#include <string>
#include <vector>

namespace tunescribe {

struct EngraveConfig {
  std::string program;        // "" = $TUNESCRIBE_ABCM2PS, else abcm2ps on PATH
  double timeout_s = 120.0;   // abcm2ps is killed after this many seconds (1..3600)
  void validate() const;      // throws ConfigError
};

// The abcm2ps executable to run, or "" when there is none (a set $TUNESCRIBE_ABCM2PS that is
// not an executable file counts as none).
std::string find_abcm2ps(const EngraveConfig& cfg = {});
// "<component>: --format svg needs abcm2ps, which is not installed (Debian package abcm2ps:
// apt-get install abcm2ps)" — the one line every caller prints.
std::string abcm2ps_missing_message(const std::string& component);

// SVG pages (each a complete document) of the tune, page 1 first.
std::vector<std::string> engrave_abc_svg(const std::string& abc_text, const std::string& title,
                                         const EngraveConfig& cfg = {});

// Path of page `page` (1-based) of an engraving whose first page is `first`:
// "out/song.svg" → "out/song.svg", "out/song-2.svg", "out/song-3.svg" …
std::string engraved_page_path(const std::string& first, size_t page);

}  // namespace tunescribe
