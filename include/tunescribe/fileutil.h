// fileutil.h — small file helpers shared by every component.
//
// What it does: atomic writes (temporary name in the same folder + rename),
// whole-file reads with a size cap, path stem/extension helpers.
// What it does not: decide whether to overwrite (the CLI does, via --force).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tunescribe {

// Write bytes to `path` atomically. Throws OutputError naming the path.
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);
// Read a whole file; throws InputError when missing/unreadable or larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = size_t(1) << 31);
std::string read_file_text(const std::string& path, size_t max_bytes = size_t(1) << 31);
// Lower-case extension including the dot ("song.WAV" -> ".wav").
std::string lower_extension(const std::string& path);
std::string path_stem(const std::string& path);

}  // namespace tunescribe
