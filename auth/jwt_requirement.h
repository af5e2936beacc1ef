// JwtRequirement: what a route demands of an already verified token beyond
// its validity: scopes and claim values. A token that fails a requirement is
// valid but not allowed: the result is PERMISSION_DENIED.
//
// Built once from a JwtRequirementConfig; immutable and thread-safe.
//
// Example:
//   JwtRequirementConfig config;
//   config.scopes = {"books.write"};
//   config.claims = {{"tenant", "acme"}, {"realm_access.roles", "admin"}};
//   ASSIGN_OR_RETURN(auto requirement, JwtRequirement::Create(config));
//   absl::Status s = requirement->Check(*verified_jwt);
//   // PERMISSION_DENIED: missing scope "books.write"
//
// Scopes: a token has scope X when its "scope" claim is a string whose
// space-separated words include X (RFC 8693 section 4.2), or its "scp" claim is
// such a string or an array of strings including X.
// Claims: the name is a dotted path into nested objects ("a.b" reads
// {"a":{"b":...}}); the claim matches when it is a string equal to the value,
// an array with a string element equal to the value, or a number or boolean
// whose JSON text ("42", "true") equals the value.
#ifndef GATEWAY_AUTH_JWT_REQUIREMENT_H_
#define GATEWAY_AUTH_JWT_REQUIREMENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/jwt.h"

namespace gateway::auth {

struct JwtRequirementConfig {
  struct ClaimMatch {
    std::string name;   // dotted path, e.g. "tenant" or "realm_access.roles"
    std::string value;  // required value
  };
  // Every scope listed is required.
  std::vector<std::string> scopes;
  // Every claim listed must match.
  std::vector<ClaimMatch> claims;
};

class JwtRequirement {
 public:
  // Returns INVALID_ARGUMENT for an empty or whitespace-containing scope, or a
  // claim name that is empty or has an empty path component.
  static absl::StatusOr<std::shared_ptr<const JwtRequirement>> Create(
      const JwtRequirementConfig& config);

  // OK when `jwt` meets every requirement; otherwise PERMISSION_DENIED naming
  // the first unmet one: `missing scope "x"`, `claim "a.b" is missing`, or
  // `claim "a.b" does not have the required value`.
  absl::Status Check(const VerifiedJwt& jwt) const;

 private:
  struct Claim {
    std::string name;
    std::vector<std::string> path;
    std::string value;
  };
  JwtRequirement() = default;
  std::vector<std::string> scopes_;
  std::vector<Claim> claims_;
};

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_JWT_REQUIREMENT_H_
