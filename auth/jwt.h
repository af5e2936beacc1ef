// JwtVerifier: verification of compact-serialized JWS JSON Web Tokens
// (RFC 7519, RFC 7515) for one provider (issuer), against that provider's
// current JWKS (a KeySetHolder), with a cache of verified tokens.
//
// A JwtVerifier is built once from a JwtProviderConfig, is immutable apart
// from its internal cache, and is thread-safe.
//
// Example:
//   auto keys = std::make_shared<KeySetHolder>();
//   RETURN_IF_ERROR(keys->Replace(jwks_bytes));
//   JwtProviderConfig config;
//   config.issuer = "https://issuer.example";
//   config.audiences = {"bookstore"};
//   config.allowed_algorithms = {"RS256", "ES256"};
//   ASSIGN_OR_RETURN(std::shared_ptr<const JwtVerifier> verifier,
//                    JwtVerifier::Create(config, keys, [] { return absl::Now(); }));
//   absl::StatusOr<std::shared_ptr<const VerifiedJwt>> jwt = verifier->Verify(token);
//   if (!jwt.ok() && IsUnknownKeyId(jwt.status())) { /* schedule a JWKS refresh */ }
//
// Token grammar (compact JWS, RFC 7515 section 7.1):
//   token   = segment "." segment "." segment     ; header, payload, signature
//   segment = *base64url-char                     ; unpadded, see jose_util.h
// The header is a JSON object with "alg" (a name from jwa.h that the provider
// allows; "none" in any spelling is refused) and optionally "kid" (string).
// With a kid, only the keys with that kid are tried; without one, the first
// four keys of the set that fit the algorithm.
// Tokens with "crit" are refused (no extension is supported), as are tokens
// with "b64" other than true. "jku", "jwk", "x5u" and "x5c" are ignored: keys
// only ever come from the provider's JWKS. The payload is a JSON object (claims):
//   "iss" string, must equal the provider's issuer
//   "aud" string or array of strings, one must be a configured audience
//         (checked only when audiences are configured)
//   "exp" number (NumericDate), required unless require_expiration is false
//   "nbf", "iat" numbers, optional
//   "sub" string, optional
// JSON objects with a repeated key are refused (both header and payload).
//
// Errors: every failure is UNAUTHENTICATED (callers map a failed Check of a
// JwtRequirement, not a failed Verify, to PERMISSION_DENIED). Messages start
// with the kind of failure and never contain key material or the token:
//   "token too large: ..."             "malformed token: ..."
//   "algorithm not allowed: ..."       "unknown key id \"k\""
//   "bad signature"                    "wrong issuer: ..."
//   "wrong audience: ..."              "token expired at 2026-01-01T00:00:00+00:00"
//   "token not yet valid: ..."         "no keys loaded"
// Time checks allow `clock_skew` in both directions.
#ifndef GATEWAY_AUTH_JWT_H_
#define GATEWAY_AUTH_JWT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "auth/jwa.h"
#include "auth/jwks.h"
#include "auth/token_cache.h"
#include "google/protobuf/struct.pb.h"

namespace gateway::auth {

// The source of the current time. Tests pass a function reading a fake clock.
using Clock = std::function<absl::Time()>;

struct JwtProviderConfig {
  // Required: the exact "iss" value of accepted tokens.
  std::string issuer;
  // Accepted "aud" values; empty means "aud" is not checked.
  std::vector<std::string> audiences;
  // Accepted "alg" names (jwa.h). Empty means every asymmetric algorithm
  // (RS*, PS*, ES*, EdDSA); HS* are accepted only when listed.
  std::vector<std::string> allowed_algorithms;
  // Tolerance for exp, nbf and iat.
  absl::Duration clock_skew = absl::Seconds(60);
  // Longer tokens are refused before any decoding.
  size_t max_token_bytes = 16 * 1024;
  // Refuse tokens without "exp".
  bool require_expiration = true;
  // The claim copied into VerifiedJwt::caller_id (e.g. for quotas).
  std::string caller_id_claim = "sub";
  // Verified tokens to remember (TokenCache::Options::max_entries); 0: no cache.
  size_t cache_entries = 10000;
};

// What a verified token says. Immutable once returned.
struct VerifiedJwt {
  Algorithm algorithm = Algorithm::kRS256;
  std::string key_id;             // the header's "kid", or empty
  std::string header_json;        // the decoded header bytes, as signed
  std::string payload_json;       // the decoded payload bytes, as signed
  std::string payload_base64url;  // the payload segment as it appeared in the token
  google::protobuf::Struct header;
  google::protobuf::Struct claims;
  std::string issuer;
  std::string subject;                 // "sub", or empty
  std::vector<std::string> audiences;  // "aud" as a list (a string becomes one element)
  absl::Time expiry = absl::InfiniteFuture();     // "exp"
  absl::Time not_before = absl::InfinitePast();   // "nbf"
  absl::Time issued_at = absl::InfinitePast();    // "iat"
  std::string caller_id;  // the caller_id_claim's value if it is a string, else empty
};

class JwtVerifier {
 public:
  // Validates `config` and builds a verifier reading keys from `keys`
  // (non-null, shared with whoever refreshes it). `clock` defaults to
  // absl::Now. Returns INVALID_ARGUMENT naming the bad config field (empty
  // issuer, unknown or "none" algorithm name, negative clock skew, zero
  // max_token_bytes, null keys).
  static absl::StatusOr<std::shared_ptr<const JwtVerifier>> Create(
      const JwtProviderConfig& config, std::shared_ptr<KeySetHolder> keys,
      Clock clock = nullptr);

  // Verifies `token` (the bare compact JWS, without "Bearer "). On success
  // returns the verified token, possibly shared with earlier calls through the
  // cache. On failure returns UNAUTHENTICATED as described at the top of this
  // file; IsUnknownKeyId() tells whether a JWKS refresh might help.
  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> Verify(absl::string_view token) const;

  const JwtProviderConfig& config() const { return config_; }

 private:
  JwtVerifier(const JwtProviderConfig& config, std::shared_ptr<KeySetHolder> keys,
              Clock clock);

  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> VerifyUncached(
      absl::string_view token, const KeySet* keys, absl::Time now) const;

  const JwtProviderConfig config_;
  uint32_t allowed_mask_ = 0;  // bit i: Algorithm(i) is allowed
  const std::shared_ptr<KeySetHolder> keys_;
  const Clock clock_;
  mutable TokenCache cache_;
};

// True when `status` came from Verify because the token's "kid" (or, without
// a kid, its algorithm) matched no key of the current set, or no set was
// loaded yet: the caller may refresh the JWKS (rate-limited) and retry.
bool IsUnknownKeyId(const absl::Status& status);

// Extracts the token from an Authorization header value "Bearer <token>" (the
// scheme is case-insensitive, RFC 6750 section 2.1). Returns a view into
// `authorization`, or UNAUTHENTICATED when the scheme is not Bearer or the
// token is empty or contains characters outside token68.
absl::StatusOr<absl::string_view> ExtractBearerToken(absl::string_view authorization);

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_JWT_H_
