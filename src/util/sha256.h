// sha256.h — SHA-256 (FIPS 180-4) of byte strings, private to the library.
//
// Does: hash data fed in pieces; the digest as 64 lower-case hex digits.
// Does not: read files (mt3_import.h's sha256_file_hex does), or anything cryptographic beyond that.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tunescribe {

class Sha256 {
 public:
  Sha256();
  void update(const uint8_t* data, size_t n);
  std::string hex_digest();  // finishes the hash; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace tunescribe
