// JSON Web Algorithms (RFC 7518, RFC 8037) accepted for JWS signatures: the
// `alg` names, and which key type and curve each one needs.
//
// Thread-safe (stateless).
//
// Example:
//   absl::optional<Algorithm> alg = ParseAlgorithm("ES256");
//   // *alg == Algorithm::kES256, AlgorithmName(*alg) == "ES256",
//   // RequiredKeyType(*alg) == KeyType::kEc
//   ParseAlgorithm("none");  // absl::nullopt: never accepted
#ifndef GATEWAY_AUTH_JWA_H_
#define GATEWAY_AUTH_JWA_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace gateway::auth {

enum class Algorithm {
  kRS256, kRS384, kRS512,  // RSASSA-PKCS1-v1_5
  kPS256, kPS384, kPS512,  // RSASSA-PSS, MGF1 with the same hash, salt = hash length
  kES256, kES384, kES512,  // ECDSA on P-256 / P-384 / P-521, signature R || S
  kEdDSA,                  // Ed25519 (RFC 8037)
  kHS256, kHS384, kHS512,  // HMAC
};

// The JWK `kty` family a key must have to verify an algorithm.
enum class KeyType { kRsa, kEc, kOkp, kOct };

// The `alg` name, e.g. "PS384".
absl::string_view AlgorithmName(Algorithm alg);

// Parses an `alg` name, case-sensitively (RFC 7515 section 4.1.1). Returns
// nullopt for "none", for any other spelling of it, and for every algorithm not
// listed above.
absl::optional<Algorithm> ParseAlgorithm(absl::string_view name);

// All algorithms above, in declaration order.
const std::vector<Algorithm>& AllAlgorithms();

// True for RS*, PS*, ES* and EdDSA; false for HS*.
bool IsAsymmetric(Algorithm alg);

KeyType RequiredKeyType(Algorithm alg);

// The `kty` name: "RSA", "EC", "OKP", "oct".
absl::string_view KeyTypeName(KeyType type);

// For ES*: the required curve ("P-256", "P-384", "P-521"); for EdDSA:
// "Ed25519"; otherwise empty.
absl::string_view RequiredCurve(Algorithm alg);

// Size in bytes of the hash the algorithm uses (32, 48, 64); 0 for EdDSA.
int HashSize(Algorithm alg);

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_JWA_H_
