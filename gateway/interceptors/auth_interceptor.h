// AuthInterceptor: who may call which method. For each method it applies the most
// specific auth rule: open, or a list of accepted credentials (bearer JWTs of named
// providers, API keys, client certificate identities) plus the scopes and claims a token
// must carry. Verified callers get `caller_id` (for quotas) and, if configured, the
// token's payload forwarded to the backend (the header is the gateway's: whatever a client
// sends under that name is removed, see gateway/metadata/metadata_policy.h).
//
// Outcomes: a credential header (Authorization, always; an API key header or any other
// configured `from` header) or credential query parameter sent more than once -> INVALID_ARGUMENT ("two
// Authorization headers were sent"), for every method once rules exist, open ones
// included: which copy counts would be a guess, and the backend may read it too.
// No rule for the method (when rules exist) -> PERMISSION_DENIED; no accepted
// credential presented, or an invalid one -> UNAUTHENTICATED with a `www-authenticate`
// response header; valid but lacking a scope, claim or identity -> PERMISSION_DENIED.
// Messages say what was wrong (expired, wrong audience, unknown key id, ...) and never
// contain key material or the credential.
//
// Keys: each JWT provider's JWKS comes from a file or an https:// URL, reloaded by a
// background thread every `jwks_refresh_interval`; a token whose key id is unknown
// triggers an immediate reload (at most once per `jwks_min_refresh_interval`) and the call
// waits for it (kPending) before its token is checked again. A failed reload keeps the last
// good keys.
//
// Thread-safety: thread-safe; shared by all calls.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const AuthInterceptor>> auth =
//       AuthInterceptor::Create(config.auth(), base_dir, pool, services);

#ifndef GATEWAY_INTERCEPTORS_AUTH_INTERCEPTOR_H_
#define GATEWAY_INTERCEPTORS_AUTH_INTERCEPTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
#include "gateway/interceptors/selector.h"

namespace gateway {

class AuthInterceptor : public Interceptor {
 public:
  // Compiles the config: loads JWKS files and API key files (relative to `base_dir`),
  // fetches JWKS URLs (a failure there is logged and retried in the background, not an
  // error). INVALID_ARGUMENT naming the key (`auth.rules[2].providers[0]`) for unknown
  // providers, bad selectors (or, with SelectorCheck::kStrict, selectors naming no method of
  // `services`), unreadable or invalid files, and other mistakes.
  static absl::StatusOr<std::shared_ptr<const AuthInterceptor>> Create(
      const config::v1::Auth& config, const std::string& base_dir,
      const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
      SelectorCheck check = SelectorCheck::kStrict);

  // Rules that add requirements to the methods they name, on top of the rules of `base`
  // (the gateway config's interceptor, which runs before): they accept the credentials
  // `base` defines (its JWT providers, "api_key"; null `base`: none), and a method they do
  // not name goes on unchecked. Only `rules.rules` may be set: INVALID_ARGUMENT for
  // `jwt_providers` or `api_keys` (they belong to the gateway config), for
  // `allow_unauthenticated` (these rules never open a method), and for what Create refuses
  // in a rule (unknown provider, selectors naming no method of `services`, ...). Keeps
  // `base` alive; its key refreshes serve these rules too.
  static absl::StatusOr<std::shared_ptr<const AuthInterceptor>> CreateAdditional(
      std::shared_ptr<const AuthInterceptor> base, const config::v1::Auth& rules,
      const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services);

  ~AuthInterceptor() override;

  absl::string_view name() const override { return "auth"; }
  // The most specific rule for `method`.
  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override;
  Result Intercept(CallContext* ctx, absl::Status* status) const override;
  // The providers' forward_payload_header names: only the gateway sets them (a client's
  // copy never reaches a backend, on any front end, with or without a token).
  std::vector<std::string> OwnedMetadata() const override;

  class Impl;

 private:
  explicit AuthInterceptor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The value of query parameter `name` in a raw query string, percent-decoded ('+' is a
// space); empty when absent.
std::string QueryParameter(absl::string_view query, absl::string_view name);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_AUTH_INTERCEPTOR_H_
