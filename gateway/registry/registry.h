// Registry: the descriptor registry of a running gateway. Platform teams register,
// replace, roll back and remove services; each change is validated against the complete
// candidate state, persisted, and only then published as a new RouteTable.
//
// A change goes through these steps, and stops at the first failure with nothing changed:
//   1. the request is complete (service name, owner, a known backend, or a backend the
//      registration defines, validated as a config `backends[]` entry);
//   2. the descriptor set parses and is self-contained (every import inside it) and
//      defines the service;
//   3. ownership: a service belongs to the owner that registered it first, a package to
//      the owner of its first service; services of the gateway config belong to nobody;
//      a restricted request (a team's token) must stay in its packages, and (step 5) its
//      HTTP routes under its path prefixes;
//   4. compatibility with the registered version (compatibility.h): breaking changes are
//      refused unless forced; with a backend check (RegistryOptions), the backend is asked
//      whether it serves the service (backend_check.h): refused unless forced when it says
//      no, a warning when it cannot be asked;
//   5. the whole candidate route table builds (every HTTP rule valid, no conflict with
//      any other service, no file differing between two services' sets), and no new HTTP
//      route of the service overlaps a route of another service (same method, a path both
//      match: candidate.h OverlappingRoutes) unless forced;
//   6. with a store, the new version is written (atomically) before it is served;
//   7. the new table is handed to the publisher (e.g. Snapshot<RouteTable>::Publish);
//      calls already running keep the table they started with.
// A dry run stops after step 5 and reports what would change.
//
// Registering the content that is already current (same descriptor set, compared
// canonically, same owner and backend) changes nothing: no version, no write, no swap; the
// result says `unchanged`. Each service keeps the newest `history_limit` versions; older
// ones are pruned from memory and from the store after a change.
//
// Thread-safety: thread-safe; changes are serialized by one mutex (they are rare and
// off the hot path; serving never takes it).
//
// Example:
//   absl::StatusOr<std::unique_ptr<Registry>> registry = Registry::Create(
//       std::move(base), std::move(store),
//       [&](std::shared_ptr<const RouteTable> t) { snapshot.Publish(std::move(t)); },
//       &problems);
//   absl::StatusOr<ChangeResult> r = (*registry)->Register(request);

#ifndef GATEWAY_REGISTRY_REGISTRY_H_
#define GATEWAY_REGISTRY_REGISTRY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/registry/backend_check.h"
#include "gateway/registry/candidate.h"
#include "gateway/registry/directory_store.h"
#include "gateway/registry/registry_state.h"
#include "gateway/route_table.h"

namespace gateway::registry {

struct RegisterRequest {
  std::string service;         // full name
  std::string owner;           // team name
  std::string backend;         // a config backend name (empty with backend_config)
  std::string descriptor_set;  // serialized FileDescriptorSet with imports
  bool force = false;          // accept breaking changes
  bool dry_run = false;        // report, change nothing
  std::string changed_by;      // who asks (kept with the version); may be empty
  // A caller limited to some packages and path prefixes (a team's admin token): the
  // service's package must be one of `allowed_packages` or below one (PackageAllowed), and
  // every HTTP route of the service must lie under one of `allowed_path_prefixes`
  // (PathAllowed), or the request is refused with PERMISSION_DENIED naming the package or
  // the routes (also for a dry run).
  bool restricted = false;
  std::vector<std::string> allowed_packages;
  std::vector<std::string> allowed_path_prefixes;
  // The backend the registration defines itself (a config `backends[]` entry, validated as
  // one): its name defaults to `service` and must not be a config backend's or another
  // service's; with `restricted`, its TLS may name no file (PERMISSION_DENIED).
  std::optional<config::v1::Backend> backend_config;
  // The service's own rules (service_rules.h): a rule without selectors covers the service;
  // a selector outside it, or a gateway-wide key, is INVALID_ARGUMENT naming the key.
  config::v1::Deadlines deadlines;
  config::v1::Retries retries;
  // Its auth and quota rules (service_rules.h): they add requirements and limits to the
  // config's, never loosen them; gateway-owned keys (providers, key files, the quota store)
  // are INVALID_ARGUMENT naming the key.
  config::v1::Auth auth;
  config::v1::Quotas quotas;
};

struct ChangeResult {
  ServiceVersion version;  // the version written (or that would be written)
  ChangeSummary changes;
  bool dry_run = false;
  // The request matched the current version: nothing was written or swapped, and
  // `version` is the current one.
  bool unchanged = false;
  // Things the caller should know that did not stop the change, one per line.
  std::vector<std::string> warnings;
};

// The number of versions per service the registry keeps unless told otherwise.
inline constexpr int kDefaultHistoryLimit = 10;

struct RegistryOptions {
  // How many versions of each service are kept (the current one included); older ones
  // are pruned after each change, from memory and from the store. Values below 1 count
  // as 1.
  int history_limit = kDefaultHistoryLimit;

  // Asks `backend` whether it serves `service` (e.g. CheckBackendServes with a bounded
  // timeout); called by Register without the registry's lock held, on the caller's thread.
  // Null: backends are not asked.
  std::function<ServiceCheck(const Backend& backend, const std::string& service)> check_backend;
};

class Registry {
 public:
  using Publisher = std::function<void(std::shared_ptr<const RouteTable>)>;
  using Now = std::function<absl::Time()>;

  // Restores the state kept in `store` (may be null: nothing persisted), builds the
  // complete route table and publishes it. A stored service that no longer validates
  // (e.g. its backend left the config) is not served; each such service and each skipped
  // file is reported in `problems`. Returns an error only when the store cannot be opened
  // or listed, or when the config's own services do not build.
  static absl::StatusOr<std::unique_ptr<Registry>> Create(
      BaseRoutes base, std::unique_ptr<RegistryStore> store, Publisher publish,
      std::vector<std::string>* problems, Now now = absl::Now,
      RegistryOptions options = RegistryOptions());

  // Reads the store again (another gateway changed the shared registry) and, when the
  // state differs, publishes the new complete table. Services that no longer validate are
  // left out and reported in `problems`, as in Create. Returns the store's error (the
  // served table is kept then).
  absl::Status Reload(std::vector<std::string>* problems);

  // Replaces what the gateway config contributes (its services, backends, interceptor
  // chain: a reloaded config) and publishes the complete table over the registered
  // services. A registered service that no longer validates against `base` (e.g. its
  // backend left the config) is left out and reported in `problems`, as in Create. Returns
  // the error of the config's own services (the old base and table are kept then).
  absl::Status Rebase(BaseRoutes base, std::vector<std::string>* problems);

  // Registers a new service or a new version. Errors (nothing changed):
  //   INVALID_ARGUMENT     a missing field, an unknown backend, a descriptor set that does
  //                        not parse or misses an import or the service, an invalid or
  //                        conflicting HTTP rule (naming both methods and the path);
  //   PERMISSION_DENIED    the service or its package belongs to another owner or to the
  //                        gateway config;
  //   FAILED_PRECONDITION  breaking changes without force: "breaking changes (to accept
  //                        them: gatewayctl --force, or "force": true in the admin API
  //                        request):" then one change per line; without force, a
  //                        backend that says it does not serve the service, or a new
  //                        route overlapping another service's (one pair per line);
  //   UNAVAILABLE          the store could not write the version.
  // An identical registration succeeds with `unchanged` set and changes nothing.
  absl::StatusOr<ChangeResult> Register(const RegisterRequest& request);

  // Stops serving `service` (records a removal version). NOT_FOUND when it is not served;
  // PERMISSION_DENIED for another owner.
  absl::StatusOr<ChangeResult> Remove(const std::string& service, const std::string& owner,
                                      bool dry_run, const std::string& changed_by = "");

  // Serves the content of version `to_version` (0: the one before the current) again, as
  // a new version. NOT_FOUND for an unknown service or version (naming the versions kept
  // when `to_version` was pruned from the history); PERMISSION_DENIED for another owner;
  // INVALID_ARGUMENT when the result does not validate.
  absl::StatusOr<ChangeResult> Rollback(const std::string& service, int64_t to_version,
                                        const std::string& owner, bool dry_run,
                                        const std::string& changed_by = "");

  // The served services (current versions), ordered by name.
  std::vector<ServiceVersion> List() const;

  // The current version of `service`; NOT_FOUND when it is not served.
  absl::StatusOr<ServiceVersion> Get(const std::string& service) const;

  // Every version of `service`, oldest first; NOT_FOUND when it has none.
  absl::StatusOr<std::vector<ServiceVersion>> Versions(const std::string& service) const;

  // The route table currently published.
  std::shared_ptr<const RouteTable> routes() const;

  // How many gRPC methods and HTTP routes `service` has in the current table.
  std::pair<int, int> Counts(const std::string& service) const;

  // What the registry did since Create (for metrics).
  struct Stats {
    // Changes applied (dry runs and refusals are not counted).
    int64_t registered = 0;
    int64_t removed = 0;
    int64_t rolled_back = 0;
    // Route tables published: by Create, by Reload and by every change.
    int64_t swaps = 0;
    // The last publication: when, and how long it took from the start of building the
    // table (after the request's own checks) to the table being published.
    absl::Time last_swap = absl::InfinitePast();
    absl::Duration last_swap_duration;
  };
  Stats stats() const;

 private:
  Registry(BaseRoutes base, std::unique_ptr<RegistryStore> store, Publisher publish, Now now,
           RegistryOptions options)
      : base_(std::move(base)),
        store_(std::move(store)),
        publish_(std::move(publish)),
        now_(std::move(now)),
        options_(std::move(options)) {}

  // Validates `candidate` (which has `version` as its newest change), and unless dry_run
  // persists the version, makes the candidate current and publishes its table.
  // `check`, when set, may refuse the built table (or add warnings) before it is persisted.
  using TableCheck = std::function<absl::Status(const RouteTable& table, ChangeResult* result)>;
  absl::StatusOr<ChangeResult> Apply(RegistryState candidate, const ServiceVersion& version,
                                     std::vector<std::string> breaking, bool dry_run,
                                     const TableCheck& check = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Drops the versions of `service` beyond the history limit from state_ and the store;
  // a store that fails to delete is reported in `warnings`.
  void PruneHistory(const std::string& service, std::vector<std::string>* warnings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Records a publication that started building at `started`.
  void CountSwap(absl::Time started) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status CheckOwner(const std::string& service, const std::string& package,
                          const std::string& owner) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  BaseRoutes base_ ABSL_GUARDED_BY(mu_);  // replaced by Rebase
  // The served subset of `loaded` (versions that validate) and its table.
  absl::Status Restore(RegistryState loaded, std::vector<std::string>* problems)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<RegistryStore> store_;
  const Publisher publish_;
  const Now now_;
  const RegistryOptions options_;

  mutable absl::Mutex mu_;
  RegistryState state_ ABSL_GUARDED_BY(mu_);
  // The backends registered versions define, kept across tables (candidate.h).
  RegisteredBackends own_backends_ ABSL_GUARDED_BY(mu_);
  // The quota counters of registered services' rules, kept across tables (service_rules.h);
  // cleared by Rebase (a config reload restarts the config's own counters too).
  RegisteredQuotas own_quotas_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const RouteTable> routes_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REGISTRY_H_
