// fileutil.h — small file helpers shared by every component.
//
// What it does: atomic writes (temporary name in the same folder + rename),
// whole-file reads with a size cap, path stem/extension helpers.
// What it does not: decide whether to overwrite (the CLI does, via --force).
// Thread-safety: all functions may be called from several threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tunescribe {

// Write bytes to `path` atomically. Throws OutputError naming the path.
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);
// Removes the temporary files of writes in progress (any thread). Async-signal-
// safe (lock-free atomics + unlink): a CLI signal handler calls it before a
// forced _exit so that no "<dir>/.<name>.tmp<pid>_<n>" file is left behind.
void remove_pending_temp_files() noexcept;
// Read a whole file; throws InputError when missing/unreadable or larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = size_t(1) << 31);
std::string read_file_text(const std::string& path, size_t max_bytes = size_t(1) << 31);
// Lower-case extension including the dot ("song.WAV" -> ".wav").
std::string lower_extension(const std::string& path);
std::string path_stem(const std::string& path);

}  // namespace tunescribe
