// Fuzz target: the Connect codec's parsers of untrusted bytes. The first input byte picks
// the envelope limit and how the rest is cut into pieces; the rest is a streaming request
// body for EnvelopeReader, a GET query for ParseGetQuery and compressed data for
// gzip::Decompress. Whatever it is: no crash, no
// envelope larger than the limit, envelopes that re-encode to the bytes they came from.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "gateway/http/connect.h"
#include "gateway/http/gzip.h"

namespace cn = gateway::http::connect;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t limit = (data[0] & 1) ? 16 : (1u << 20);
  const size_t piece = 1 + (data[0] >> 1);
  const absl::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  cn::EnvelopeReader reader(limit);
  std::string again;
  bool failed = false;
  for (size_t at = 0; at < body.size() && !failed; at += piece) {
    if (!reader.Feed(body.substr(at, piece)).ok()) {
      failed = true;
      break;
    }
    while (std::optional<cn::Envelope> e = reader.Next()) {
      if (e->data.size() > limit) std::abort();
      again += cn::MakeEnvelope(e->flags, e->data);
    }
  }
  if (!failed && body.substr(0, again.size()) != again) std::abort();
  if (!failed && reader.CheckComplete().ok() && again.size() != body.size()) std::abort();

  absl::StatusOr<cn::GetRequest> get = cn::ParseGetQuery(body);
  if (get.ok()) (void)cn::ErrorJson(absl::InvalidArgumentError(get->message), get->message);
  (void)cn::ParseContentType(body);
  (void)cn::ParseTimeoutMs(body);
  absl::StatusOr<std::string> inflated = gateway::http::gzip::Decompress(body, limit);
  if (inflated.ok() && inflated->size() > limit) std::abort();
  return 0;
}
