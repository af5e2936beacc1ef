// Fuzz target: traceparent and tracestate parsing of hostile header values.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/tracing/trace_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto context = gateway::tracing::ParseTraceparent(input)) {
    // A parsed context prints back as the same (lower-case) value.
    if (gateway::tracing::FormatTraceparent(*context) != input) __builtin_trap();
  }
  const std::string state = gateway::tracing::NormalizeTracestate(input);
  // Normalizing is idempotent.
  if (gateway::tracing::NormalizeTracestate(state) != state) __builtin_trap();
  return 0;
}
