// json_fields.cpp — see json_fields.h.
#include "json_fields.h"

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

}  // namespace

bool read_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return false;
  if (!v->is_number()) type_error(prefix, key, *v, "an integer");
  const double x = v->get<double>();
  if (!v->is_number_integer() && std::floor(x) != x) type_error(prefix, key, *v, "an integer");
  if (!(x >= -2147483648.0 && x <= 2147483647.0))
    throw ConfigError(prefix + key + " = " + v->dump() + " does not fit a 32-bit integer");
  out = static_cast<int>(v->is_number_integer() ? v->get<long long>() : static_cast<long long>(x));
  return true;
}

bool read_number(const nlohmann::json& obj, const char* key, const std::string& prefix, double& out) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return false;
  if (!v->is_number()) type_error(prefix, key, *v, "a number");
  out = v->get<double>();
  return true;
}

bool read_bool(const nlohmann::json& obj, const char* key, const std::string& prefix, bool& out) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) type_error(prefix, key, *v, "true or false");
  out = v->get<bool>();
  return true;
}

bool read_string(const nlohmann::json& obj, const char* key, const std::string& prefix, std::string& out) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return false;
  if (!v->is_string()) type_error(prefix, key, *v, "a string");
  out = v->get<std::string>();
  return true;
}

void require_int(const nlohmann::json& obj, const char* key, const std::string& prefix, int& out) {
  if (!read_int(obj, key, prefix, out)) throw ConfigError(prefix + key + " is missing");
}

}  // namespace tunescribe::json_fields
