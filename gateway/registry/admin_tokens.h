// AdminTokens: the credentials of the admin API. Each token is known only by its SHA-256
// digest and is bound to an owner and a role: an `admin` may do everything; a `team` may
// register only as its owner, only services in its packages whose HTTP routes lie under its
// path prefixes, and change, remove or roll back only its own services.
//
// The tokens file (config `admin_listener.tokens_file`) is YAML:
//   tokens:
//     - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//       owner: payments
//       role: team                 # or admin
//       packages: [payments]       # payments and payments.* (team only)
//       path_prefixes: [/v1/payments]   # "/v1/payments", "/v1/payments/..." and ":verb"
// `sha256` is the lower- or upper-case hex digest of the token (e.g.
// `printf %s "$TOKEN" | sha256sum`); the file never holds a token itself.
//
// Thread-safety: an AdminTokens is immutable once created; Find may be called from any
// thread.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const AdminTokens>> tokens =
//       AdminTokens::Parse(text, "tokens.yaml");
//   const AdminCaller* caller = (*tokens)->Find(presented_token);  // nullptr: unknown

#ifndef GATEWAY_REGISTRY_ADMIN_TOKENS_H_
#define GATEWAY_REGISTRY_ADMIN_TOKENS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::registry {

// Who calls the admin API, and what it may claim.
struct AdminCaller {
  std::string owner;    // the owner the token is bound to ("admin" for the single token)
  bool admin = false;   // may do everything
  std::vector<std::string> packages;       // team: packages it may register in
  std::vector<std::string> path_prefixes;  // team: prefixes its HTTP routes must lie under
  // How the caller is named in the audit log and the registry history: the owner and the
  // first 8 hex digits of the token's digest, e.g. "payments (sha256:9f86d081)".
  std::string who;
};

// The lower-case hex SHA-256 digest of `token`.
std::string Sha256Hex(absl::string_view token);

// True when `package` is `allowed` or lies below it ("payments.v1" under "payments").
bool PackageAllowed(absl::string_view package, const std::vector<std::string>& allowed);

// True when the HTTP path template `path` (e.g. "/v1/payments/{id}") lies under one of
// `prefixes`: equal to it, or continuing it with "/" or ":" (or the prefix ends with "/").
bool PathAllowed(absl::string_view path, const std::vector<std::string>& prefixes);

class AdminTokens {
 public:
  // Parses the tokens file's text. Returns INVALID_ARGUMENT naming the entry and key
  // (`tokens[2].sha256: ...`): text that is not YAML, an unknown key, a digest that is not
  // 64 hex digits, a digest listed twice, a missing owner, a role other than admin/team, a
  // team without packages, a path prefix not starting with "/". `origin` names the file.
  static absl::StatusOr<std::shared_ptr<const AdminTokens>> Parse(absl::string_view text,
                                                                  absl::string_view origin);

  // The caller holding `token`, or nullptr when no entry has its digest. The pointer is
  // valid as long as this AdminTokens.
  const AdminCaller* Find(absl::string_view token) const;

  std::size_t size() const { return by_digest_.size(); }

 private:
  std::map<std::string, AdminCaller> by_digest_;  // lower-case hex digest -> caller
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_ADMIN_TOKENS_H_
