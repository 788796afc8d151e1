// Placeholder: replaced by the FFTW log-mel implementation (foundation issue).
#include "tunescribe/frontend.h"
#include <nlohmann/json.hpp>
#include "tunescribe/errors.h"
namespace tunescribe {
struct LogMel::Impl {};
void LogMelConfig::validate() const {}
nlohmann::json LogMelConfig::to_json() const { return {}; }
LogMelConfig LogMelConfig::from_json(const nlohmann::json&) { return {}; }
LogMel::LogMel(const LogMelConfig& cfg) : cfg_(cfg) { throw NotAvailableError("frontend: not available yet"); }
LogMel::~LogMel() = default;
std::vector<float> LogMel::compute(const float*, size_t, int*) const { return {}; }
int LogMel::num_segments(size_t) const { return 0; }
MelSegment LogMel::segment(const float*, size_t, int) const { return {}; }
std::vector<MelSegment> LogMel::segments(const std::vector<float>&) const { return {}; }
}  // namespace tunescribe
