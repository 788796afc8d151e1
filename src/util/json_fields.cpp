// json_fields.cpp — see json_fields.h.
#include "util/json_fields.h"

#include <cmath>

#include "tunescribe/errors.h"

namespace tunescribe::json_fields {

namespace {

const nlohmann::json* find(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

[[noreturn]] void type_error(const std::string& prefix, const char* key, const nlohmann::json& v,
                             const char* want) {
  throw ConfigError(prefix + key + " must be " + want + ", got " + v.dump());
}

// The shared shape of the plain reads: absent → false; wrong JSON type → error; else store.
template <class T>
bool read_typed(const nlohmann::json& obj, const char* key, const std::string& prefix, T& out,
                bool (nlohmann::json::*has_type)() const noexcept, const char* want) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return false;
  if (!(v->*has_type)()) type_error(prefix, key, *v, want);
  out = v->get<T>();
  return true;
}

}  // namespace

bool read_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out) {
  double x = 0.0;
  if (!read_typed(obj, key, prefix, x, &nlohmann::json::is_number, "an integer")) return false;
  if (std::floor(x) != x) type_error(prefix, key, obj.at(key), "an integer");
  if (!(x >= -2147483648.0 && x <= 2147483647.0))
    throw ConfigError(prefix + key + " = " + obj.at(key).dump() + " does not fit a 32-bit integer");
  out = static_cast<int>(x);  // every int32 is exact in a double
  return true;
}

bool read_number(const nlohmann::json& obj, const char* key, const std::string& prefix, double& out) {
  return read_typed(obj, key, prefix, out, &nlohmann::json::is_number, "a number");
}

bool read_bool(const nlohmann::json& obj, const char* key, const std::string& prefix, bool& out) {
  return read_typed(obj, key, prefix, out, &nlohmann::json::is_boolean, "true or false");
}

bool read_string(const nlohmann::json& obj, const char* key, const std::string& prefix, std::string& out) {
  return read_typed(obj, key, prefix, out, &nlohmann::json::is_string, "a string");
}

void require_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out) {
  if (!read_int(obj, key, prefix, out)) throw ConfigError(prefix + key + " is missing");
}

}  // namespace tunescribe::json_fields
