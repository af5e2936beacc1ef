// Fuzz target: JWT parsing and verification against a fixed key set (an HMAC
// secret, a P-256 key and an Ed25519 key; testdata/make_fuzz_seeds.py mints
// seed tokens that verify against it), then the bearer-header extraction and
// a requirement check on whatever verifies. Besides not crashing: a verified
// token must carry the configured issuer and its payload segment.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "auth/jose_util.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/jwt_requirement.h"

namespace {

using namespace gateway::auth;  // NOLINT: fuzz target

constexpr char kJwks[] =
    R"({"keys":[{"kty":"oct","kid":"hs","k":"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZi0wMTIzNDU2Nzg5YWJjZGVm"},)"
    R"({"kty":"EC","crv":"P-256","kid":"ec","x":"lFuvv-Sbv_5cM9Sc0IPadc6AWq8fKoLPsBDgloFjWCo","y":"QPf2kqMlBp4izA_gTA5oMi9EWeRRBtVDJe4juMZr0YQ"},)"
    R"({"kty":"OKP","crv":"Ed25519","kid":"ed","x":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}]})";

struct Target {
  std::shared_ptr<const JwtVerifier> verifier;
  std::shared_ptr<const JwtRequirement> requirement;

  Target() {
    auto holder = std::make_shared<KeySetHolder>();
    if (!holder->Replace(kJwks).ok()) std::abort();
    JwtProviderConfig config;
    config.issuer = "https://issuer.example";
    config.audiences = {"api"};
    config.allowed_algorithms = {"HS256", "HS384", "HS512", "ES256", "EdDSA"};
    config.cache_entries = 0;  // every input takes the full path
    verifier = *JwtVerifier::Create(config, holder,
                                    [] { return absl::FromUnixSeconds(1800000000); });
    JwtRequirementConfig req;
    req.scopes = {"read"};
    req.claims = {{"realm.roles", "a"}};
    requirement = *JwtRequirement::Create(req);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Target* const target = new Target();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::string_view token = input;
  if (absl::StatusOr<absl::string_view> bearer = ExtractBearerToken(input); bearer.ok()) {
    token = *bearer;
  }
  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> jwt = target->verifier->Verify(token);
  if (!jwt.ok()) {
    if (jwt.status().code() != absl::StatusCode::kUnauthenticated) std::abort();
    return 0;
  }
  const VerifiedJwt& v = **jwt;
  if (v.issuer != "https://issuer.example") std::abort();
  if (token.find(v.payload_base64url) == absl::string_view::npos) std::abort();
  if (*DecodeBase64Url(v.payload_base64url) != v.payload_json) std::abort();
  const absl::Status s = target->requirement->Check(v);
  if (!s.ok() && s.code() != absl::StatusCode::kPermissionDenied) std::abort();
  return 0;
}
