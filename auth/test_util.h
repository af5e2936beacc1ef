// Test helpers: in-process key generation (RSA, EC P-256/384/521, Ed25519,
// HMAC secrets), public JWK encoding and JWS token minting with OpenSSL, so
// that tests never depend on key files or a fixed clock of the real world.
//
// Not thread-safe; for tests only.
//
// Example:
//   TestKey key = TestKey::Ec("P-256", "ec-1");
//   std::string jwks = MakeJwks({key.PublicJwk()});
//   std::string token = MintToken(key, Algorithm::kES256,
//                                 R"({"alg":"ES256","kid":"ec-1"})", R"({"sub":"a"})");
#ifndef GATEWAY_AUTH_TEST_UTIL_H_
#define GATEWAY_AUTH_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "auth/jwa.h"

struct evp_pkey_st;

namespace gateway::auth {

class TestKey {
 public:
  static TestKey Rsa(int bits, std::string kid);
  // curve: "P-256", "P-384" or "P-521".
  static TestKey Ec(absl::string_view curve, std::string kid);
  static TestKey Ed25519(std::string kid);
  static TestKey Hmac(std::string secret, std::string kid);

  TestKey(TestKey&&) noexcept;
  TestKey& operator=(TestKey&&) noexcept;
  ~TestKey();

  const std::string& kid() const { return kid_; }
  const std::string& secret() const { return secret_; }

  // The public JWK as a JSON object, with "kid" when set and extra members
  // (e.g. R"("alg":"RS256")") spliced in.
  std::string PublicJwk(absl::string_view extra_members = "") const;
  // The public key as PEM (SubjectPublicKeyInfo) and as DER.
  std::string PublicPem() const;
  std::string PublicDer() const;

  // A JWS signature over `input` (R || S for ECDSA). For PS*, `pss_salt_length`
  // overrides the salt length JWS requires (the hash length), e.g. with
  // RSA_PSS_SALTLEN_MAX.
  std::string Sign(Algorithm alg, absl::string_view input, int pss_salt_length = 0) const;

 private:
  TestKey() = default;
  evp_pkey_st* pkey_ = nullptr;
  std::string kid_;
  std::string secret_;
  std::string curve_;
};

// {"keys":[jwk, ...]}
std::string MakeJwks(const std::vector<std::string>& jwks);

// base64url(header) "." base64url(payload) "." base64url(signature by key).
std::string MintToken(const TestKey& key, Algorithm alg, absl::string_view header_json,
                      absl::string_view payload_json);

// base64url(header) "." base64url(payload) "." base64url(signature) with a
// given signature.
std::string AssembleToken(absl::string_view header_json, absl::string_view payload_json,
                          absl::string_view signature);

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_TEST_UTIL_H_
