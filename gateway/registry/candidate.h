// Building and comparing complete route tables for the registry: the services the gateway
// config defines plus every service the registry serves, compiled into one RouteTable
// (one descriptor pool, gRPC routes and HTTP routes), so a change is validated against the
// whole candidate state before anything is swapped.
//
// Thread-safety: BaseRoutes is immutable once built; the functions are pure.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const RouteTable>> table = BuildRouteTable(base, state);
//   ChangeSummary summary = Summarize(current_table.get(), **table);

#ifndef GATEWAY_REGISTRY_CANDIDATE_H_
#define GATEWAY_REGISTRY_CANDIDATE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/registry/registry_state.h"
#include "gateway/registry/service_rules.h"
#include "gateway/route_table.h"
#include "gateway/upstream.h"
#include "transcoder/transcoder.h"

namespace gateway::registry {

// What the gateway config contributes to every route table.
struct BaseRoutes {
  struct DescriptorSet {
    std::string bytes;   // a serialized FileDescriptorSet
    std::string origin;  // names it in errors (the file name)
    // A set the gateway adds for its own services (reflection, the admin API): a file it
    // shares with an earlier set (google/api/http.proto, ...) is taken from that set.
    bool builtin = false;
  };
  std::vector<DescriptorSet> descriptor_sets;
  // The pool built from descriptor_sets, which the config's route table uses. Registered
  // services are built in a pool layered over it, so the config's services keep the very
  // descriptors the interceptor chain resolved its rules against.
  std::shared_ptr<const google::protobuf::DescriptorPool> pool;
  // The services the config binds (never changed through the registry).
  std::vector<ServiceBinding> services;
  // Every backend of the config, by name.
  std::map<std::string, std::shared_ptr<Backend>> backends;
  transcoder::TranscoderOptions http_options;
  // The interceptors of every call; each table resolves their rules for all its methods,
  // registered ones included. Null: none.
  std::shared_ptr<const InterceptorChain> chain;
  // What the backends that registrations define are built with, as the config's own: the
  // config's limits, and the directory relative TLS file paths are resolved against.
  config::v1::Limits limits;
  std::string base_dir;
  // The clock of the registered services' deadline and quota rules (null: the real one).
  std::shared_ptr<const Clock> clock;
  // The config's `quotas` section: registered services' quota rules use its shared store
  // (`redis`) and `max_keys_per_rule` (service_rules.h).
  config::v1::Quotas quotas;
};

// What registrations' auth and quota rules build on: the config's auth interceptor (found
// in base.chain) and quotas section.
GatewayAccess GatewayAccessOf(const BaseRoutes& base);

// `config` as a registration's backend is compiled: `required` (whether /readyz waits for
// it) defaults to false, so that a team's backend being down does not make the gateway
// unready unless the registration asks for it.
config::v1::Backend AsRegisteredBackend(const config::v1::Backend& config);

// The running backends that registered versions define (ServiceVersion::backend_config), by
// name, kept from one route table to the next: a definition that did not change
// (Backend::Fingerprint) keeps its Backend, with its connections, health and outlier state.
//
// Thread-safety: none; the registry uses it under its lock.
class RegisteredBackends {
 public:
  // The Backend for `config` (validated by CompileBackend, the config's own validator;
  // `key` names it in errors): the one kept under its name when its fingerprint is the
  // same, else a new one, which is kept from now on. INVALID_ARGUMENT naming the key.
  absl::StatusOr<std::shared_ptr<Backend>> Get(const config::v1::Backend& config,
                                               const config::v1::Limits& limits,
                                               const std::string& base_dir,
                                               const std::string& key);

  // Keeps only the registered backends `table` serves with (the very Backends it holds);
  // the others are dropped (their clusters end once no call holds them).
  void Retain(const RouteTable& table);

  std::size_t size() const { return by_name_.size(); }

 private:
  std::map<std::string, std::shared_ptr<Backend>> by_name_;
};

// Builds the route table for the config's services plus every served version of `state`,
// over a pool layered on base.pool (which must be set). Returns INVALID_ARGUMENT when a
// descriptor set does not parse, a file differs between two sets or from the config's in
// what matters to the wire or the mapping (naming both origins: "service pkg.S v2", the
// config file, then each difference on a line of its own: see FileDifferences in
// compatibility.h; the copy seen first is used), an import is missing or a
// file does not build, a backend is unknown, or an HTTP rule is invalid or conflicts with
// another (the transcoder's message, naming both methods and the path). A version that
// defines its backend gets it from `backends` (null: a new Backend each time); its name must
// be neither a config backend's nor another served version's backend's (INVALID_ARGUMENT
// naming both services), and its definition must validate as a config entry. The rules
// served versions carry for their own methods (service_rules.h) join `base.chain`: their
// auth rules right after the config's auth, their quota rules right after the config's
// quotas (each service's counters from `quotas`, null: new ones each time), their
// deadline and retry rules at the end. A version whose auth or quota rules no longer
// compile against the config (a provider it names is gone) is INVALID_ARGUMENT naming it.
absl::StatusOr<std::shared_ptr<const RouteTable>> BuildRouteTable(
    const BaseRoutes& base, const RegistryState& state, RegisteredBackends* backends = nullptr,
    RegisteredQuotas* quotas = nullptr);

// What a change does to the served routes.
struct ChangeSummary {
  std::vector<std::string> services_added;
  std::vector<std::string> services_removed;
  std::vector<std::string> methods_added;    // "/pkg.S/M"
  std::vector<std::string> methods_removed;
  std::vector<std::string> routes_added;     // "GET /v1/x/{id} -> pkg.S.M"
  std::vector<std::string> routes_removed;
  std::vector<std::string> breaking_changes;  // see compatibility.h
  // The service's own settings that change (its backend definition), e.g.
  // "backend_config: target: \"dns:///a:1\" -> target: \"dns:///b:1\"".
  std::vector<std::string> settings_changes;

  // Multi-line text for people ("+ service pkg.S", "- route GET /v1/x -> pkg.S.M",
  // "! pkg.S.M: removed", "~ backend_config: ..."); "no changes" when empty.
  std::string ToString() const;
};

// The services, methods and HTTP routes in `after` but not in `before` and the reverse,
// each list sorted. `before` may be null (everything is added).
ChangeSummary Summarize(const RouteTable* before, const RouteTable& after);

// The HTTP routes of a table, "GET /v1/x/{id} -> pkg.S.M", sorted.
std::vector<std::string> HttpRoutes(const RouteTable& table);

// True when some request path matches both templates: every segment pair can match the
// same text ("*" one segment, "**" the rest) and the verbs agree (a template without a
// verb that ends with a wildcard also matches "x:verb", as the path matcher retries such
// paths without the verb). HTTP methods are not compared here.
bool TemplatesOverlap(const transcoder::HttpTemplate& a, const transcoder::HttpTemplate& b);

// The HTTP routes of `service` in `table` that overlap a route of another service (the same
// HTTP method, TemplatesOverlap), one line per pair, sorted:
//   "GET /v1/{name=**} -> lib.v1.Library.Get overlaps GET /v1/shelves/{shelf} ->
//   bookstore.v1.Bookstore.GetShelf (service bookstore.v1.Bookstore)"
// Such a route takes requests that the other service's clients mean for it (or for paths
// it does not serve) whenever the other route does not match exactly.
std::vector<std::string> OverlappingRoutes(const RouteTable& table, const std::string& service);

// The HTTP routes of `service` in `table` whose path template (as written in its rule, e.g.
// "/v1/shelves/{shelf}") `allowed` refuses, as "GET /v1/x -> pkg.S.M", sorted.
std::vector<std::string> RoutesOutside(const RouteTable& table, const std::string& service,
                                       const std::function<bool(absl::string_view)>& allowed);

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_CANDIDATE_H_
