// The metadata policy: which request headers a call sends to its backend and which backend
// metadata goes back to the client, on every front end (gRPC, REST, gRPC-Web), and the
// rules every key and value must meet before it is handed to gRPC.
//
// gRPC's rules (gRPC core aborts the process, GRPC_CALL_ERROR_INVALID_METADATA, when a
// call is given metadata that breaks them; nothing may reach gRPC unchecked):
//   key         = 1*( %x30-39 / %x61-7A / "_" / "-" / "." )  ; lower case, never ":..."
//   text value  = *( %x20-7E )                                ; printable ASCII and space
//   binary key  = key ending in "-bin"; its value is any bytes. Over HTTP/1.1 and gRPC-Web
//                 it arrives as base64 text and is decoded here (padded or not).
//
// What the gateway does with a request header, in this order:
//   1. Headers of the transport or of gRPC (IsProtocolHeader: pseudo headers, grpc-*,
//      hop-by-hop, content-*, host, user-agent, ...) are never forwarded.
//   2. Headers the gateway owns (MetadataPolicy::IsOwned: the header a JWT provider
//      forwards its verified payload in, and any other header an interceptor claims) are
//      removed from what the client sent; only the gateway sets them.
//   3. gRPC forwards every other header; gRPC-Web every other header except the browser's
//      own (IsBrowserHeader); REST only the headers named by the HTTP listener's list
//      (x-request-id, traceparent, http_listener.forwarded_request_headers).
//   4. A header whose name is not a valid gRPC key is dropped (it cannot be metadata).
//      A forwarded header whose value breaks the rules (a control byte, a byte above 0x7E,
//      a "-bin" value that is not base64) refuses the call: INVALID_ARGUMENT (HTTP 400)
//      naming the header.
//   5. Interceptors then set, replace, add or remove entries (MetadataEdits); an entry they
//      add that breaks the rules, or is a protocol header, refuses the call with INTERNAL
//      naming it.
//   6. The whole (client's entries and the interceptors') is held to a size limit
//      (limits.max_metadata_bytes; CheckMetadataSize): a backend's gRPC refuses a header
//      block over its own limit (8 KiB by default) by closing the connection that every
//      other call to it shares, so the gateway refuses such a call itself, with
//      RESOURCE_EXHAUSTED (HTTP 431), before it reaches the backend.
// Backend metadata headed for the client passes when it is not a protocol header and meets
// the rules; anything else is dropped.
//
// Thread-safety: the functions are pure; a MetadataPolicy is immutable and shared; a
// MetadataEdits belongs to one call.
//
// Example:
//   absl::StatusOr<MetadataPolicy> policy = MetadataPolicy::Create({"x-jwt-payload"});
//   std::vector<std::pair<std::string, std::string>> out;
//   absl::Status status = policy->CollectRequestMetadata(
//       Protocol::kGrpc, client_entries, /*http_forwarded=*/nullptr, &edits, &out);

#ifndef GATEWAY_METADATA_METADATA_POLICY_H_
#define GATEWAY_METADATA_METADATA_POLICY_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace gateway::metadata {

using Entry = std::pair<absl::string_view, absl::string_view>;
using OwnedEntry = std::pair<std::string, std::string>;

// --- gRPC's rules ---

// True when `key` is a valid gRPC metadata key (grammar above).
bool IsValidKey(absl::string_view key);
// True when `key` ends in "-bin" (its value is binary).
bool IsBinaryKey(absl::string_view key);
// True when `value` is a valid non-binary value: bytes 0x20-0x7E only.
bool IsValidTextValue(absl::string_view value);
// OK when (key, value) may be handed to gRPC as it is (a binary key takes any value);
// else INVALID_ARGUMENT saying what is wrong and naming the key (values are not quoted:
// they may be credentials).
absl::Status CheckEntry(absl::string_view key, absl::string_view value);
// The bytes of the binary header `key` received as text: standard base64 with or without
// padding. INVALID_ARGUMENT naming the header otherwise.
absl::StatusOr<std::string> DecodeBinaryText(absl::string_view key, absl::string_view text);

// --- Whose headers ---

// Headers of the transport or of gRPC itself, never passed on in either direction: empty
// or ":"-prefixed names, "grpc-*", connection, keep-alive, proxy-connection,
// transfer-encoding, upgrade, te, trailer, expect, http2-settings, host, content-type,
// content-length, content-encoding, accept-encoding, user-agent. `key` is lower case.
bool IsProtocolHeader(absl::string_view key);
// Headers a browser sends for itself (gRPC-Web requests do not forward them): origin,
// referer, cookie, accept, accept-language, cache-control, pragma, x-grpc-web,
// x-user-agent, proxy-authorization, sec-*, access-control-*.
bool IsBrowserHeader(absl::string_view key);

enum class Protocol { kGrpc, kGrpcWeb, kRest };

// --- Size ---

// The default of limits.max_metadata_bytes: gRPC's default limit for a received header
// block is 8 KiB, and the request's own headers (:path, :authority, content-type, te,
// user-agent, grpc-timeout, ...) take up to about 1 KiB of it.
inline constexpr size_t kDefaultMaxMetadataBytes = 7 * 1024;

// The size of `entries` as HTTP/2 counts a header list (SETTINGS_MAX_HEADER_LIST_SIZE,
// RFC 9113 section 6.5.2) and gRPC counts its metadata: per entry the name, the value and
// 32 bytes; a binary value as the base64 text it travels as.
size_t MetadataSize(absl::Span<const OwnedEntry> entries);
// RESOURCE_EXHAUSTED when MetadataSize(entries) is over `limit`, saying how large the
// metadata is, the limit (limits.max_metadata_bytes) and the largest entry's name.
absl::Status CheckMetadataSize(absl::Span<const OwnedEntry> entries, size_t limit);

// Changes the interceptors of one call make to the metadata its backend gets. Keys are
// lower case. Not thread-safe (one call's interceptors run one at a time).
class MetadataEdits {
 public:
  // Sends (key, value) in addition to whatever else there is.
  void Add(std::string key, std::string value);
  // Sends exactly this value of `key`: the client's values and earlier entries are dropped.
  void Set(std::string key, std::string value);
  // Sends no value of `key`: neither the client's nor earlier entries.
  void Remove(absl::string_view key);

  // True when the client's values of `key` are not to be sent (Set or Remove named it).
  bool Replaces(absl::string_view key) const { return replaced_.contains(key); }
  // The entries to send, in the order they were added.
  const std::vector<OwnedEntry>& added() const { return added_; }
  bool empty() const { return added_.empty() && replaced_.empty(); }

 private:
  std::vector<OwnedEntry> added_;
  absl::flat_hash_set<std::string> replaced_;
};

// The policy of one gateway config: the fixed rules above plus the headers the gateway
// owns. Immutable after Create.
class MetadataPolicy {
 public:
  // Owns nothing.
  MetadataPolicy() = default;

  // `owned`: the headers the gateway sets itself (any case; kept lower case).
  // INVALID_ARGUMENT when one is not a valid gRPC key, is binary, or is a protocol header.
  static absl::StatusOr<MetadataPolicy> Create(const std::vector<std::string>& owned);

  // True when only the gateway may set `key` (lower case).
  bool IsOwned(absl::string_view key) const { return owned_.contains(key); }
  // True when configuration may not name `key` as a header to forward or expose: a
  // protocol header, a binary one, or an owned one.
  bool IsReserved(absl::string_view key) const;
  // Step 1-3 above for the client's header `key` (lower case): whether it may be sent.
  // `http_forwarded` is the HTTP listener's list (REST forwards only these; gRPC-Web
  // forwards them even when they are browser headers); null for none.
  bool ForwardsFromClient(Protocol protocol, absl::string_view key,
                          const absl::flat_hash_set<std::string>* http_forwarded) const;
  // Whether backend metadata (key, value) may be passed back to the client as it is.
  bool ForwardsToClient(absl::string_view key, absl::string_view value) const;

  // The client's part of what a call sends to its backend, appended to `out`: each entry
  // of `client` with a valid key that ForwardsFromClient() allows (a "-bin" value decoded
  // from base64 unless `protocol` is kGrpc, whose transport decodes it). Returns
  // INVALID_ARGUMENT naming the header for a forwarded value that breaks the rules; `out`
  // is then incomplete and must not be used. Front ends call it before the interceptors.
  absl::Status CollectClientMetadata(Protocol protocol, absl::Span<const Entry> client,
                                     const absl::flat_hash_set<std::string>* http_forwarded,
                                     std::vector<OwnedEntry>* out) const;
  // The same for headers held as strings (an HTTP request's header list).
  absl::Status CollectClientMetadata(Protocol protocol, absl::Span<const OwnedEntry> client,
                                     const absl::flat_hash_set<std::string>* http_forwarded,
                                     std::vector<OwnedEntry>* out) const;
  // Applies the interceptors' `edits` to `out` (the result of CollectClientMetadata):
  // removes the keys they replace, appends what they added. INTERNAL naming the key when
  // an added entry breaks the rules or is a protocol header; `out` must then not be used.
  static absl::Status ApplyEdits(const MetadataEdits& edits, std::vector<OwnedEntry>* out);
  // Both of the above (edits may be null).
  absl::Status CollectRequestMetadata(Protocol protocol, absl::Span<const Entry> client,
                                      const absl::flat_hash_set<std::string>* http_forwarded,
                                      const MetadataEdits* edits,
                                      std::vector<OwnedEntry>* out) const;

  const absl::flat_hash_set<std::string>& owned() const { return owned_; }

 private:
  absl::flat_hash_set<std::string> owned_;
};

}  // namespace gateway::metadata

#endif  // GATEWAY_METADATA_METADATA_POLICY_H_
