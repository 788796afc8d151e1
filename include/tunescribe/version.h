// version.h — version, git commit and build information of this build.
//
// What it does: the project version, the short git commit the build was configured at
// (src/util/version.cpp.in, filled in by CMake) and one line of dependency versions.
// What it does not: print them (the CLI's --version does) or compare versions.
#pragma once
#include <string>

namespace tunescribe {
const char* version_string();   // "0.1.0"
const char* git_commit();       // short sha or "unknown"
std::string build_info();       // libtorch / FFTW / libsndfile versions, one line
}  // namespace tunescribe
