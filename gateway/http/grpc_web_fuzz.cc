// Fuzz target: the gRPC-Web codec. The first input byte chooses the encoding (even:
// binary, odd: text) and the frame limit; the rest is a request body. Whatever it is, the
// decoder must return frames or an error (never crash), decoded frames must re-encode to
// the same bytes, and the response-side encoders must round-trip.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/http/grpc_web.h"

namespace gw = gateway::http::grpc_web;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const gw::Encoding encoding = (data[0] & 1) ? gw::Encoding::kText : gw::Encoding::kBinary;
  const uint32_t limit = (data[0] & 2) ? 64 : (4u << 20);
  const absl::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string storage;
  absl::StatusOr<std::vector<gw::Frame>> frames =
      gw::DecodeRequestBody(body, encoding, limit, &storage);
  if (frames.ok()) {
    std::string again;
    for (const gw::Frame& f : *frames) {
      if (f.payload.size() > limit) std::abort();
      again += gw::EncodeFrame(f.flags, f.payload, gw::Encoding::kBinary);
    }
    const absl::string_view binary = encoding == gw::Encoding::kText ? storage : body;
    if (again != binary) std::abort();
  }

  // Response side: any bytes as message and metadata give a well-formed block and frame.
  const std::string block = gw::TrailerBlock(3, body, {{"x-k", std::string(body)},
                                                       {"x-k-bin", std::string(body)}});
  for (char c : block) {
    if (c == '\0') std::abort();
  }
  if (gw::PercentDecodeMessage(gw::PercentEncodeMessage(body)) != body) std::abort();
  const std::string text = gw::EncodeFrame(gw::kTrailerFrame, block, gw::Encoding::kText);
  absl::StatusOr<std::string> decoded = gw::DecodeBase64Chunks(text + text);
  if (!decoded.ok()) std::abort();
  absl::StatusOr<std::vector<gw::Frame>> split = gw::SplitFrames(*decoded, 1u << 30);
  if (!split.ok() || split->size() != 2 || (*split)[1].payload != block) std::abort();
  return 0;
}
