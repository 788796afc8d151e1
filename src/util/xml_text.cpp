// xml_text.cpp — escaping for XML, SVG and HTML text (xml_text.h).
#include "tunescribe/xml_text.h"

namespace tunescribe {

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;  // valid in XML and in every HTML version (&apos; is not in HTML 4)
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        o += c;
    }
  }
  return o;
}

}  // namespace tunescribe
