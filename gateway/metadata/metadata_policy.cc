#include "gateway/metadata/metadata_policy.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace gateway::metadata {

bool IsValidKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

bool IsBinaryKey(absl::string_view key) { return absl::EndsWith(key, "-bin"); }

bool IsValidTextValue(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;  // char may be signed: bytes >= 0x80 are < 0
  }
  return true;
}

absl::Status CheckEntry(absl::string_view key, absl::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("metadata with an empty name");
  if (!IsValidKey(key)) {
    // The name may be long or hold any byte: show a printable prefix.
    std::string shown;
    for (char c : key.substr(0, 64)) shown += (c >= 0x20 && c <= 0x7e && c != '"') ? c : '?';
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata name \"", shown, key.size() > 64 ? "..." : "",
        "\" is not valid (lower-case letters, digits, '-', '_' and '.' only)"));
  }
  if (!IsBinaryKey(key) && !IsValidTextValue(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header ", key,
        ": value has bytes not allowed in metadata (printable ASCII only; binary values "
        "need a name ending in -bin)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeBinaryText(absl::string_view key, absl::string_view text) {
  // absl accepts padded and unpadded input; it refuses bytes outside the alphabet and
  // impossible lengths.
  std::string raw;
  if (!absl::Base64Unescape(text, &raw)) {
    return absl::InvalidArgumentError(
        absl::StrCat("header ", key, ": binary metadata (-bin) that is not base64"));
  }
  return raw;
}

bool IsProtocolHeader(absl::string_view key) {
  if (key.empty() || key[0] == ':' || absl::StartsWith(key, "grpc-")) return true;
  static constexpr absl::string_view kProtocol[] = {
      "connection",       "keep-alive",     "proxy-connection", "transfer-encoding",
      "upgrade",          "te",             "trailer",          "expect",
      "http2-settings",   "host",           "content-type",     "content-length",
      "content-encoding", "accept-encoding", "user-agent"};
  return std::find(std::begin(kProtocol), std::end(kProtocol), key) != std::end(kProtocol);
}

bool IsBrowserHeader(absl::string_view key) {
  static constexpr absl::string_view kBrowser[] = {
      "origin",        "referer", "cookie",     "accept",       "accept-language",
      "cache-control", "pragma",  "x-grpc-web", "x-user-agent", "proxy-authorization"};
  return absl::StartsWith(key, "sec-") || absl::StartsWith(key, "access-control-") ||
         std::find(std::begin(kBrowser), std::end(kBrowser), key) != std::end(kBrowser);
}

void MetadataEdits::Add(std::string key, std::string value) {
  added_.emplace_back(std::move(key), std::move(value));
}

void MetadataEdits::Set(std::string key, std::string value) {
  Remove(key);
  added_.emplace_back(std::move(key), std::move(value));
}

void MetadataEdits::Remove(absl::string_view key) {
  added_.erase(std::remove_if(added_.begin(), added_.end(),
                              [key](const OwnedEntry& e) { return e.first == key; }),
               added_.end());
  replaced_.insert(std::string(key));
}

absl::StatusOr<MetadataPolicy> MetadataPolicy::Create(const std::vector<std::string>& owned) {
  MetadataPolicy policy;
  for (const std::string& name : owned) {
    std::string key = absl::AsciiStrToLower(name);
    if (!IsValidKey(key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", name, "\" is not a valid metadata name (letters, digits, '-', '_', '.')"));
    }
    if (IsBinaryKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", name, "\" ends in -bin (binary metadata); use a text name"));
    }
    if (IsProtocolHeader(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", name, "\" is a header of HTTP or gRPC itself"));
    }
    policy.owned_.insert(std::move(key));
  }
  return policy;
}

bool MetadataPolicy::IsReserved(absl::string_view key) const {
  return IsProtocolHeader(key) || IsBinaryKey(key) || IsOwned(key);
}

bool MetadataPolicy::ForwardsFromClient(
    Protocol protocol, absl::string_view key,
    const absl::flat_hash_set<std::string>* http_forwarded) const {
  if (IsProtocolHeader(key) || IsOwned(key)) return false;
  const bool listed = http_forwarded != nullptr && http_forwarded->contains(key);
  switch (protocol) {
    case Protocol::kGrpc:
      return true;
    case Protocol::kGrpcWeb:
      return listed || !IsBrowserHeader(key);
    case Protocol::kRest:
      return listed;
  }
  return false;
}

bool MetadataPolicy::ForwardsToClient(absl::string_view key, absl::string_view value) const {
  return !IsProtocolHeader(key) && CheckEntry(key, value).ok();
}

absl::Status MetadataPolicy::CollectClientMetadata(
    Protocol protocol, absl::Span<const Entry> client,
    const absl::flat_hash_set<std::string>* http_forwarded,
    std::vector<OwnedEntry>* out) const {
  for (const auto& [key, value] : client) {
    if (!IsValidKey(key)) continue;  // cannot be metadata: not addressed to the backend
    if (!ForwardsFromClient(protocol, key, http_forwarded)) continue;
    if (IsBinaryKey(key) && protocol != Protocol::kGrpc) {
      absl::StatusOr<std::string> raw = DecodeBinaryText(key, value);
      if (!raw.ok()) return raw.status();
      out->emplace_back(std::string(key), *std::move(raw));
      continue;
    }
    absl::Status valid = CheckEntry(key, value);
    if (!valid.ok()) return valid;
    out->emplace_back(std::string(key), std::string(value));
  }
  return absl::OkStatus();
}

absl::Status MetadataPolicy::CollectClientMetadata(
    Protocol protocol, absl::Span<const OwnedEntry> client,
    const absl::flat_hash_set<std::string>* http_forwarded,
    std::vector<OwnedEntry>* out) const {
  std::vector<Entry> views(client.begin(), client.end());
  return CollectClientMetadata(protocol, views, http_forwarded, out);
}

absl::Status MetadataPolicy::ApplyEdits(const MetadataEdits& edits,
                                        std::vector<OwnedEntry>* out) {
  if (edits.empty()) return absl::OkStatus();
  out->erase(std::remove_if(out->begin(), out->end(),
                            [&edits](const OwnedEntry& e) { return edits.Replaces(e.first); }),
             out->end());
  for (const auto& [key, value] : edits.added()) {
    if (IsProtocolHeader(key)) {
      return absl::InternalError(absl::StrCat("the gateway produced metadata \"", key,
                                              "\", a header of HTTP or gRPC itself"));
    }
    absl::Status valid = CheckEntry(key, value);
    if (!valid.ok()) {
      return absl::InternalError(
          absl::StrCat("the gateway produced invalid metadata: ", valid.message()));
    }
    out->push_back({key, value});
  }
  return absl::OkStatus();
}

size_t MetadataSize(absl::Span<const OwnedEntry> entries) {
  size_t total = 0;
  for (const auto& [key, value] : entries) {
    const size_t value_bytes = IsBinaryKey(key) ? (value.size() + 2) / 3 * 4 : value.size();
    total += key.size() + value_bytes + 32;
  }
  return total;
}

absl::Status CheckMetadataSize(absl::Span<const OwnedEntry> entries, size_t limit) {
  const size_t total = MetadataSize(entries);
  if (total <= limit) return absl::OkStatus();
  const OwnedEntry* largest = nullptr;
  for (const OwnedEntry& e : entries) {
    if (largest == nullptr ||
        e.first.size() + e.second.size() > largest->first.size() + largest->second.size()) {
      largest = &e;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "request metadata is ", total, " bytes, more than limits.max_metadata_bytes (", limit,
      "); the largest header is ", largest->first, " (",
      MetadataSize(absl::MakeConstSpan(largest, 1)), " bytes)"));
}

absl::Status MetadataPolicy::CollectRequestMetadata(
    Protocol protocol, absl::Span<const Entry> client,
    const absl::flat_hash_set<std::string>* http_forwarded, const MetadataEdits* edits,
    std::vector<OwnedEntry>* out) const {
  absl::Status status = CollectClientMetadata(protocol, client, http_forwarded, out);
  if (!status.ok() || edits == nullptr) return status;
  return ApplyEdits(*edits, out);
}

}  // namespace gateway::metadata
