// version.h — version, git commit and build information of this build.
#pragma once
#include <string>

namespace tunescribe {
const char* version_string();   // "0.1.0"
const char* git_commit();       // short sha or "unknown"
std::string build_info();       // libtorch / FFTW / libsndfile versions, one line
}  // namespace tunescribe
