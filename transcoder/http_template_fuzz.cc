// Fuzz target: the google.api.http template parser. Besides not crashing, a
// parsed template's Shape() must itself parse to the same shape.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "transcoder/http_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<gateway::transcoder::HttpTemplate> t =
      gateway::transcoder::ParseHttpTemplate(text);
  if (!t.ok()) return 0;
  for (const auto& v : t->variables) {
    if (v.start_segment < 0 || v.end_segment > static_cast<int>(t->segments.size()) ||
        v.start_segment >= v.end_segment) {
      std::abort();
    }
  }
  std::string shape = t->Shape();
  absl::StatusOr<gateway::transcoder::HttpTemplate> again =
      gateway::transcoder::ParseHttpTemplate(shape);
  if (!again.ok() || again->Shape() != shape) std::abort();
  return 0;
}
