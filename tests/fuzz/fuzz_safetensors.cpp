// libFuzzer target: the safetensors reader (parse_safetensors), then a
// serialise/parse round trip of whatever was accepted.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tunescribe/errors.h"
#include "tunescribe/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = tunescribe::parse_safetensors(data, size, "fuzz.safetensors");
    std::string again = tunescribe::serialize_safetensors(f.tensors, "F32", f.metadata);
    (void)tunescribe::parse_safetensors(reinterpret_cast<const uint8_t*>(again.data()), again.size(), "again");
  } catch (const tunescribe::Error&) {
  }
  return 0;
}
