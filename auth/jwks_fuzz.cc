// Fuzz target: JWKS parsing. Every key of a parsed set must be usable for its
// declared algorithm, and verifying a junk signature with each usable
// (key, algorithm) pair must fail cleanly.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "auth/jwa.h"
#include "auth/jwks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gateway::auth;  // NOLINT: fuzz target
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::shared_ptr<const KeySet>> set = ParseJwks(input);
  if (!set.ok()) {
    if (set.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if ((*set)->keys().empty()) std::abort();
  const std::string junk(132, '\x01');
  for (const auto& key : (*set)->keys()) {
    if (key->alg().has_value() && !key->CheckUsableFor(*key->alg()).ok()) std::abort();
    for (Algorithm alg : AllAlgorithms()) {
      if (!key->CheckUsableFor(alg).ok()) continue;
      const absl::Status s = key->Verify(alg, "e30.e30", junk);
      if (s.ok() || s.code() != absl::StatusCode::kUnauthenticated) std::abort();
    }
    for (const Jwk* same : (*set)->FindByKid(key->kid())) {
      if (same->kid() != key->kid()) std::abort();
    }
  }
  return 0;
}
