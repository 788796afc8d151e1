// json_fields.h — typed reads of single fields of a JSON config object, shared by the config
// readers of the front end, the codec and the model (private to the library).
//
// Does: look a key up, check its type and range, store it, and throw ConfigError with
// "<prefix><key> …" and the offending value on a mismatch. An integral number written as a float
// (2.0) is accepted where an int is expected.
// Does not: decide which keys are required or allowed, or check semantic ranges (validate() does).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tunescribe::json_fields {

// Each returns false (and leaves `out` alone) when `key` is absent.
bool read_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out);
bool read_number(const nlohmann::json& obj, const char* key, const std::string& prefix, double& out);
bool read_bool(const nlohmann::json& obj, const char* key, const std::string& prefix, bool& out);
bool read_string(const nlohmann::json& obj, const char* key, const std::string& prefix, std::string& out);

// read_int that throws "<prefix><key> is missing" when the key is absent.
void require_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out);

}  // namespace tunescribe::json_fields
