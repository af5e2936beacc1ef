// JSON Web Key Sets (RFC 7517): parsing a JWKS document into an immutable
// KeySet of verification keys, and KeySetHolder, which holds the current set
// of one provider and replaces it on rotation.
//
// Jwk and KeySet are immutable once built and safe to share between threads
// (verification only reads the OpenSSL key objects). KeySetHolder is
// thread-safe.
//
// Example:
//   auto holder = std::make_shared<KeySetHolder>();
//   absl::Status s = holder->Replace(jwks_bytes);  // bytes fetched by the caller
//   // On error the previous set (if any) stays current.
//   KeySetHolder::Snapshot snap = holder->Current();
//   for (const Jwk* key : snap.keys->FindByKid("2024-01")) { ... }
//   // After a token named an unknown kid:
//   if (holder->TryBeginRefresh(now, absl::Seconds(30))) { /* fetch, Replace */ }
//
// Accepted documents:
//   jwks     = "{" "keys" ":" "[" jwk *( "," jwk ) "]" *other-member "}"
//   jwk      = a JSON object with
//     "kty": "RSA"  with "n", "e"          (base64url big-endian unsigned integers;
//                                           n of at least JwksOptions::min_rsa_bits)
//     "kty": "EC"   with "crv" ("P-256" | "P-384" | "P-521"), "x", "y"
//                                          (base64url, exactly the field size each;
//                                           the point must lie on the curve)
//     "kty": "OKP"  with "crv": "Ed25519", "x" (32 bytes)
//     "kty": "oct"  with "k"               (at least 32 bytes)
//   and optionally "kid" (string), "alg" (one of jwa.h's names, which must fit
//   the key type and curve), "use" (string).
// Every key that cannot be used is skipped and listed, with the reason, in
// KeySet::skipped(); the document's other keys stay usable. Skipped are keys
// whose "use" is not "sig", whose kty or "alg" is unknown, whose curve is not a
// signature curve we support (X25519, Ed448, secp256k1, ...), and keys with a
// bad or missing parameter (an RSA modulus below min_rsa_bits, an EC point off
// its curve, an "alg" that does not fit the key, an entry that is not an
// object). A skipped key is never used, even when a usable key has its kid.
// Private-key members ("d", "p", ...) are ignored. A document that is not a
// JSON object with a "keys" array (or repeats a JSON key in an object, or is
// over the size limits) fails as a whole, and so does one that yields no
// usable key: the error lists why each key was skipped.
#ifndef GATEWAY_AUTH_JWKS_H_
#define GATEWAY_AUTH_JWKS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "auth/jwa.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace gateway::auth {

struct JwksOptions {
  // Documents longer than this are rejected before parsing.
  size_t max_bytes = 1 << 20;
  // At most this many entries in "keys".
  size_t max_keys = 100;
  // Smallest accepted RSA modulus. Never set it below 2048 outside tests.
  int min_rsa_bits = 2048;
};

// One verification key.
class Jwk {
 public:
  ~Jwk();
  Jwk(const Jwk&) = delete;
  Jwk& operator=(const Jwk&) = delete;

  KeyType type() const { return type_; }
  // Empty when the JWK has no "kid".
  const std::string& kid() const { return kid_; }
  // The JWK's "alg", when it has one: the key then verifies only that algorithm.
  absl::optional<Algorithm> alg() const { return alg_; }
  // "P-256", "P-384", "P-521", "Ed25519"; empty for RSA and oct.
  const std::string& curve() const { return curve_; }
  // Modulus size for RSA, field size for EC, 256 for Ed25519, secret size for oct.
  int bits() const { return bits_; }

  // Checks that this key may verify `alg`: the kty is the algorithm's family
  // (so an HS* token never meets an RSA or EC key), the curve matches ES*/EdDSA,
  // the JWK's own "alg" (if any) equals `alg`, and an oct secret is at least
  // as long as the HMAC hash. Returns UNAUTHENTICATED saying which check failed.
  absl::Status CheckUsableFor(Algorithm alg) const;

  // Verifies a JWS signature over `signing_input` (the ASCII
  // "base64url(header).base64url(payload)"). `signature` is the decoded
  // signature: R || S for ECDSA (exactly twice the field size). Returns OK,
  // or UNAUTHENTICATED: CheckUsableFor's errors, "bad signature", or a wrong
  // signature length. Thread-safe.
  absl::Status Verify(Algorithm alg, absl::string_view signing_input,
                      absl::string_view signature) const;

 private:
  friend class JwkBuilder;
  Jwk() = default;

  KeyType type_ = KeyType::kRsa;
  std::string kid_;
  absl::optional<Algorithm> alg_;
  std::string curve_;
  int bits_ = 0;
  evp_pkey_st* pkey_ = nullptr;  // owned; RSA, EC, OKP
  std::string secret_;           // oct; wiped on destruction
};

// The usable keys of one JWKS document. Immutable.
class KeySet {
 public:
  // All usable keys, in document order.
  const std::vector<std::unique_ptr<const Jwk>>& keys() const { return keys_; }
  // The keys whose "kid" equals `kid` (several when a document repeats a kid,
  // e.g. for different algorithms); empty when none. Valid while the KeySet lives.
  absl::Span<const Jwk* const> FindByKid(absl::string_view kid) const;
  // One line per skipped key, e.g. `keys[2] (kid "enc-1"): use "enc" is not "sig"`.
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  friend absl::StatusOr<std::shared_ptr<const KeySet>> ParseJwks(absl::string_view,
                                                                 const JwksOptions&);
  std::vector<std::unique_ptr<const Jwk>> keys_;
  absl::flat_hash_map<std::string, std::vector<const Jwk*>> by_kid_;
  std::vector<std::string> skipped_;
};

// Parses a JWKS document (grammar above). Returns INVALID_ARGUMENT naming the
// problem, e.g. `JWKS "keys" is not an array`, or, when no key is usable,
// `JWKS document has no usable signing keys (skipped keys[0] (kid "old"): RSA
// modulus has 1024 bits, at least 2048 required; keys[1] (kid "a"): EC point
// is not on curve P-256)`. The caller reports KeySet::skipped() (e.g. logs it).
absl::StatusOr<std::shared_ptr<const KeySet>> ParseJwks(absl::string_view json,
                                                        const JwksOptions& options = {});

// The current key set of one provider. Thread-safe. Starts empty.
class KeySetHolder {
 public:
  struct Snapshot {
    std::shared_ptr<const KeySet> keys;  // null until the first successful Replace/Set
    uint64_t generation = 0;             // changes whenever `keys` changes
  };

  explicit KeySetHolder(JwksOptions options = {});

  // Parses `jwks_json` and, on success, makes it the current set. On error
  // returns ParseJwks's status and keeps the current set. A document equal
  // byte for byte to the current one changes nothing (the generation stays,
  // so caches keyed by it stay warm).
  absl::Status Replace(absl::string_view jwks_json) ABSL_LOCKS_EXCLUDED(mu_);

  // Makes `keys` (non-null) the current set.
  void Set(std::shared_ptr<const KeySet> keys) ABSL_LOCKS_EXCLUDED(mu_);

  Snapshot Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Rate limit for refreshes triggered by IsUnknownKeyId errors: returns true,
  // and records `now`, when no refresh was granted in the `min_interval`
  // before `now`; otherwise false. The caller that gets true fetches the
  // document and calls Replace.
  bool TryBeginRefresh(absl::Time now, absl::Duration min_interval) ABSL_LOCKS_EXCLUDED(mu_);

  // The current generation without taking the lock.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  const JwksOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(mu_);
  std::string digest_ ABSL_GUARDED_BY(mu_);  // SHA-256 of the current document
  absl::Time last_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::atomic<uint64_t> generation_{0};
};

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_JWKS_H_
