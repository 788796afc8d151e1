// errors.h — the typed errors the tunescribe library throws.
//
// What it does: one exception hierarchy for the whole library. Every message
// starts with the component and, where there is one, the file it concerns
// ("audio: song.wav: truncated file"), so the CLI can print it as one line.
// What it does not: choose exit codes or print anything — only main() does.
#pragma once

#include <stdexcept>
#include <string>

namespace tunescribe {

// Base of everything the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input data: unreadable/corrupt audio, MIDI, ABC, note lists.
class InputError : public Error {
 public:
  using Error::Error;
};

// A model directory that is missing, truncated or inconsistent with its config.
class ModelError : public Error {
 public:
  using Error::Error;
};

// A T5X checkpoint that cannot be imported (mt3_import.h). A ModelError, so
// the CLI exits 3; kind() says which check failed, the message names the array.
class CheckpointError : public ModelError {
 public:
  enum class Kind { MissingArray, WrongShape, WrongDtype, UnknownLayout, CorruptChunk };
  CheckpointError(Kind kind, const std::string& message) : ModelError(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// A configuration value out of range (names the field, the value and the range).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Writing an output failed (disk full, permission, refused overwrite).
class OutputError : public Error {
 public:
  using Error::Error;
};

// A feature that is declared but whose engine has not landed yet.
class NotAvailableError : public Error {
 public:
  using Error::Error;
};

}  // namespace tunescribe
