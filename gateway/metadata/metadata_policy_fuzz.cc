// Fuzz target: the metadata policy. The input is split into a header list ("name\0value\n"
// records; the first byte picks the protocol and whether the edits set the first name).
// Whatever the bytes, CollectRequestMetadata must return OK or an error (never crash), and
// on OK every entry it returns must pass CheckEntry with a valid key: exactly what gRPC
// core accepts without aborting. Owned and protocol headers must never come out of the
// client's entries; what goes back to a client must be valid as well.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gateway/metadata/metadata_policy.h"

namespace md = gateway::metadata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const md::Protocol protocol = static_cast<md::Protocol>(data[0] % 3);
  const bool set_first = (data[0] & 4) != 0;
  const absl::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<md::Entry> client;
  for (absl::string_view record : absl::StrSplit(input, '\n')) {
    const std::size_t nul = record.find('\0');
    if (nul == absl::string_view::npos) {
      client.emplace_back(record, absl::string_view());
    } else {
      client.emplace_back(record.substr(0, nul), record.substr(nul + 1));
    }
  }
  static const md::MetadataPolicy policy = *md::MetadataPolicy::Create({"x-jwt-payload"});
  const absl::flat_hash_set<std::string> http_forwarded = {"x-request-id", "x-jwt-payload"};

  md::MetadataEdits edits;
  edits.Set("x-jwt-payload", "eyJzdWIiOiJhIn0");
  if (set_first && !client.empty()) {
    // An entry built from untrusted bytes: must be refused (INTERNAL), never passed on.
    edits.Set(std::string(client[0].first), std::string(client[0].second));
  }
  std::vector<md::OwnedEntry> out;
  const absl::Status status =
      policy.CollectRequestMetadata(protocol, client, &http_forwarded, &edits, &out);
  if (status.ok()) {
    int payloads = 0;
    for (const auto& [key, value] : out) {
      if (!md::IsValidKey(key) || !md::CheckEntry(key, value).ok()) std::abort();
      if (md::IsProtocolHeader(key)) std::abort();
      if (key == "x-jwt-payload" && ++payloads > 1) std::abort();
    }
    if (payloads != 1) std::abort();
  }
  if (set_first && !client.empty() &&
      !md::CheckEntry(client[0].first, client[0].second).ok() &&
      status.ok()) {
    std::abort();  // an invalid entry an interceptor added went through
  }
  for (const auto& [key, value] : client) {
    if (md::CheckEntry(key, value).ok() != (md::IsValidKey(key) &&
                                            (md::IsBinaryKey(key) ||
                                             md::IsValidTextValue(value)))) {
      std::abort();
    }
    if (policy.ForwardsToClient(key, value) && !md::CheckEntry(key, value).ok()) std::abort();
    absl::StatusOr<std::string> raw = md::DecodeBinaryText(key, value);
    (void)raw;
  }
  return 0;
}
