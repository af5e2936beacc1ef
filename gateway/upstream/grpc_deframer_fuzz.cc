// Fuzzes GrpcDeframer and GrpcFrameScanner side by side: arbitrary bytes, fed in chunks
// whose sizes come from the input, must never crash; the deframer never yields more bytes
// than were fed nor buffers past the limit; the scanner, which reads the same prefixes,
// agrees with it on every frame and every error (the scanner alone accepts the compressed
// flag, so an input with one stops the comparison there).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gateway/upstream/grpc_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 16;
  absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  gateway::upstream::GrpcDeframer d(/*max_message_size=*/1024);
  gateway::upstream::GrpcFrameScanner scan(/*max_message_size=*/1024);
  size_t out_bytes = 0;
  uint64_t messages = 0;
  bool compared = true;
  while (!in.empty()) {
    const size_t n = std::min(chunk, in.size());
    const bool fed = d.Feed(in.substr(0, n)).ok();
    const bool scanned = scan.Scan(in.substr(0, n)).ok();
    if (compared && fed != scanned) {
      // Only a compressed flag may make the scanner accept what the deframer refuses.
      if (fed || !absl::StartsWith(d.CheckComplete().message(),
                                   "backend sent a message with compressed flag 1")) {
        __builtin_trap();
      }
      compared = false;
    }
    if (!fed) break;
    in.remove_prefix(n);
    while (auto m = d.Next()) {
      if (m->size() > 1024) __builtin_trap();
      out_bytes += m->size();
      ++messages;
    }
    if (d.partial_bytes() > 1024 + 5) __builtin_trap();
    if (compared && (scan.frames() != messages || scan.message_bytes() < out_bytes)) {
      __builtin_trap();
    }
  }
  if (out_bytes > size) __builtin_trap();
  if (compared && d.CheckComplete().ok() != scan.CheckComplete().ok()) __builtin_trap();
  return 0;
}
