#include "transcoder/percent_encoding.h"

namespace gateway::transcoder {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(absl::string_view in, PercentDecodeMode mode) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+' && mode == PercentDecodeMode::kQueryPlusAsSpace) {
      out.push_back(' ');
      continue;
    }
    if (c == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        char decoded = static_cast<char>(hi * 16 + lo);
        if (decoded == '/' && mode == PercentDecodeMode::kKeepSlash) {
          out.append(in.data() + i, 3);
        } else {
          out.push_back(decoded);
        }
        i += 2;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace gateway::transcoder
