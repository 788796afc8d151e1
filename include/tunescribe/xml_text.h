// xml_text.h — text for XML, SVG and HTML documents.
// What it does: escapes the five markup characters (& < > " ') for element text and attribute
// values, and drops the control characters XML 1.0 forbids (all below 0x20 but tab, LF, CR).
// What it does not: validate UTF-8 or build elements. Thread-safety: pure function.
#pragma once

#include <string>

namespace tunescribe {

std::string xml_escape(const std::string& s);

}  // namespace tunescribe
