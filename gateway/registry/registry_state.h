// RegistryState: the services registered at run time, each with the history of its
// versions (the last one is current; a removal is recorded as a version too).
//
// A RegistryState is a value: the registry copies it, changes the copy, validates the
// copy as a whole, and only then makes it current.
//
// Thread-safety: none of its own (a value type); a const state may be read from any thread.
//
// Example:
//   RegistryState state;
//   ServiceVersion v{.service = "bookstore.v1.Bookstore", .owner = "books", ...};
//   state.Append(v);                                  // v.version becomes 1
//   const ServiceVersion* current = state.Current("bookstore.v1.Bookstore");

#ifndef GATEWAY_REGISTRY_REGISTRY_STATE_H_
#define GATEWAY_REGISTRY_REGISTRY_STATE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/config/v1/config.pb.h"

namespace gateway::registry {

struct ServiceVersion {
  std::string service;  // full name, "pkg.Service"
  std::string owner;    // the team that owns it
  std::string backend;  // a backend name from the gateway config, or backend_config's
  int64_t version = 0;  // 1, 2, ... per service
  std::string descriptor_set;  // serialized FileDescriptorSet (empty when removed)
  absl::Time registered_at = absl::UnixEpoch();
  bool removed = false;  // this version records a removal
  std::string changed_by;  // who made it (audit name of the admin token; may be empty)
  // The backend this version defines itself (a config `backends[]` entry; its name is
  // `backend`); unset: `backend` names a backend of the gateway config.
  std::optional<config::v1::Backend> backend_config;
  // The service's own rules for its own methods (service_rules.h); empty: none.
  config::v1::Deadlines deadlines;
  config::v1::Retries retries;
  config::v1::Auth auth;
  config::v1::Quotas quotas;
};

class RegistryState {
 public:
  // The current version of `service` when it is served, nullptr when it was never
  // registered or its current version is a removal. Valid until the state changes.
  const ServiceVersion* Current(const std::string& service) const;

  // Every version of `service`, oldest first (empty when never registered).
  const std::vector<ServiceVersion>& History(const std::string& service) const;

  // The version `version` of `service`, or nullptr.
  const ServiceVersion* Find(const std::string& service, int64_t version) const;

  // Appends `v` as the next version of v.service (its `version` field is set here and
  // returned).
  int64_t Append(ServiceVersion v);

  // Adds `v` with the version number it carries (restoring a stored history). Versions of
  // a service may be inserted in any order; they are kept sorted.
  void Restore(ServiceVersion v);

  // Drops the oldest versions of `service` so that at most `keep` remain (the current one
  // always stays; `keep` below 1 counts as 1). Returns the version numbers dropped, oldest
  // first. Numbering continues after the newest version, as before.
  std::vector<int64_t> Prune(const std::string& service, std::size_t keep);

  // The services currently served (not removed), ordered by name.
  std::vector<const ServiceVersion*> Served() const;

  // Every service name with a history, ordered.
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, std::vector<ServiceVersion>> services_;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REGISTRY_STATE_H_
