// Fuzzes GrpcDeframer: arbitrary response bytes, fed in chunks whose sizes come from the
// input, must never crash, never yield more bytes than were fed, and never buffer past the
// limit.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "gateway/upstream/grpc_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 16;
  absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  gateway::upstream::GrpcDeframer d(/*max_message_size=*/1024);
  size_t out_bytes = 0;
  while (!in.empty()) {
    const size_t n = std::min(chunk, in.size());
    if (!d.Feed(in.substr(0, n)).ok()) break;
    in.remove_prefix(n);
    while (auto m = d.Next()) {
      if (m->size() > 1024) __builtin_trap();
      out_bytes += m->size();
    }
    if (d.partial_bytes() > 1024 + 5) __builtin_trap();
  }
  if (out_bytes > size) __builtin_trap();
  (void)d.CheckComplete();
  return 0;
}
