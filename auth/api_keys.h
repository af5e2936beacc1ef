// ApiKeySet: API keys held as SHA-256 digests only, loaded from a keys file,
// looked up by the digest of the key a caller presents.
//
// An ApiKeySet is immutable once parsed and thread-safe.
//
// Keys file format (UTF-8 text, one key per line):
//   file     = *( line LF ) [ line ]        ; CR before LF is ignored
//   line     = *WSP [ entry / comment ] *WSP
//   entry    = id 1*WSP digest *WSP [ comment ]
//   comment  = "#" *any-char-but-LF
//   id       = 1*128( ALPHA / DIGIT / "-" / "_" / "." / ":" / "@" )
//   digest   = 64HEXDIG                     ; SHA-256 of the key's bytes, any case
//   WSP      = SP / HTAB
// Ids and digests must each be unique in the file. Produce a digest with
//   printf '%s' "$KEY" | sha256sum
// Example:
//   # team       sha256 of the key
//   billing-ui   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// Example:
//   ASSIGN_OR_RETURN(std::shared_ptr<const ApiKeySet> keys, ApiKeySet::Parse(file_bytes));
//   absl::StatusOr<const ApiKey*> key = keys->Authenticate(presented);
//   if (key.ok()) quota_id = (*key)->id;
#ifndef GATEWAY_AUTH_API_KEYS_H_
#define GATEWAY_AUTH_API_KEYS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::auth {

struct ApiKey {
  std::string id;  // the caller's id, e.g. for quotas
  int line = 0;    // line of the keys file that defined it
};

class ApiKeySet {
 public:
  // Longest key Find/Authenticate will hash; longer presented keys never match.
  static constexpr size_t kMaxPresentedKeyBytes = 4096;

  // Parses a keys file (format above). Returns INVALID_ARGUMENT naming the
  // line, e.g. `line 3: digest must be 64 hex digits` or
  // `line 7: id "ci" already defined on line 2`. An empty file is valid.
  static absl::StatusOr<std::shared_ptr<const ApiKeySet>> Parse(absl::string_view file);

  // The key whose digest is SHA-256(presented), or nullptr. The digest is
  // found through a hash map and compared with CRYPTO_memcmp, so the time
  // taken does not depend on how much of a stored digest matches. The pointer
  // is valid while this set lives.
  const ApiKey* Find(absl::string_view presented) const;

  // Find() as a status: UNAUTHENTICATED "missing API key" for an empty key,
  // "API key too long" beyond kMaxPresentedKeyBytes, "unknown API key" when not found.
  absl::StatusOr<const ApiKey*> Authenticate(absl::string_view presented) const;

  size_t size() const { return keys_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  struct DigestEq {
    bool operator()(const Digest& a, const Digest& b) const;
  };

  std::vector<std::unique_ptr<ApiKey>> keys_;
  absl::flat_hash_map<Digest, const ApiKey*, DigestHash, DigestEq> by_digest_;
};

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_API_KEYS_H_
