// libFuzzer target: the ABC reader (read_abc_text), lenient and strict.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tunescribe/abc_reader.h"
#include "tunescribe/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  for (bool strict : {false, true}) {
    tunescribe::AbcReaderConfig cfg;
    cfg.strict = strict;
    try {
      auto tunes = tunescribe::read_abc_text(text, "fuzz.abc", cfg);
      for (auto& t : tunes) (void)t.sequence.end_time();
    } catch (const tunescribe::Error&) {
    }
  }
  return 0;
}
