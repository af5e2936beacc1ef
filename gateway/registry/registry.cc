#include "gateway/registry/registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gateway/descriptor_sets.h"
#include "gateway/registry/admin_tokens.h"
#include "gateway/registry/compatibility.h"
#include "gateway/registry/service_rules.h"

namespace gateway::registry {
namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::ServiceDescriptor;

// How a caller accepts what a refusal names, as each client spells it: the flag of
// gatewayctl, the field of the REST admin API's JSON body (RegisterRequest.force).
constexpr char kForceHint[] =
    "gatewayctl --force, or \"force\": true in the admin API request";

// A full protobuf name: dot-separated identifiers.
bool IsFullName(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  bool segment_start = true;
  for (char c : name) {
    if (c == '.') {
      if (segment_start) return false;
      segment_start = true;
      continue;
    }
    if (!(absl::ascii_isalnum(c) || c == '_')) return false;
    if (segment_start && absl::ascii_isdigit(c)) return false;
    segment_start = false;
  }
  return true;
}

// The package of a service as its descriptor declares it.
std::string PackageOf(const ServiceDescriptor& service) { return service.file()->package(); }

// Builds the pool of one descriptor set alone: it must be self-contained.
absl::StatusOr<std::shared_ptr<const DescriptorPool>> PoolOf(const std::string& bytes,
                                                              const std::string& origin) {
  DescriptorSetBuilder builder;
  absl::Status status = builder.AddSerialized(bytes, origin);
  if (!status.ok()) return status;
  return builder.Build();
}

std::vector<std::string> ServicesIn(const DescriptorPool& pool, const std::string& bytes) {
  google::protobuf::FileDescriptorSet set;
  std::vector<std::string> out;
  if (!set.ParseFromString(bytes)) return out;
  for (const auto& file : set.file()) {
    for (const auto& service : file.service()) {
      out.push_back(file.package().empty() ? service.name()
                                           : absl::StrCat(file.package(), ".", service.name()));
    }
  }
  return out;
}

// The descriptor set in a canonical form: files ordered by name, without source info,
// serialized deterministically. Empty when `bytes` does not parse.
std::string CanonicalDescriptorSet(const std::string& bytes) {
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromString(bytes)) return "";
  for (auto& file : *set.mutable_file()) file.clear_source_code_info();
  std::sort(set.mutable_file()->begin(), set.mutable_file()->end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  set.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// How the service's own settings differ between `before` (null: not served) and `after`.
std::vector<std::string> SettingsChanges(const ServiceVersion* before,
                                         const ServiceVersion& after) {
  std::vector<std::string> out;
  if (after.removed) return out;
  auto text = [](const ServiceVersion* v) -> std::string {
    if (v == nullptr || !v->backend_config.has_value()) {
      return v == nullptr ? "none" : absl::StrCat("(config backend \"", v->backend, "\")");
    }
    return v->backend_config->ShortDebugString();
  };
  const bool before_own = before != nullptr && before->backend_config.has_value();
  if (after.backend_config.has_value() || before_own) {
    const std::string a = text(before);
    const std::string b = text(&after);
    if (a != b) out.push_back(absl::StrCat("backend_config: ", a, " -> ", b));
  }
  auto rules = [](const google::protobuf::Message* m) -> std::string {
    const std::string text = m == nullptr ? "" : m->ShortDebugString();
    return text.empty() ? "none" : text;
  };
  const std::string deadlines_before = rules(before ? &before->deadlines : nullptr);
  const std::string deadlines_after = rules(&after.deadlines);
  if (deadlines_before != deadlines_after) {
    out.push_back(absl::StrCat("deadlines: ", deadlines_before, " -> ", deadlines_after));
  }
  const std::string retries_before = rules(before ? &before->retries : nullptr);
  const std::string retries_after = rules(&after.retries);
  if (retries_before != retries_after) {
    out.push_back(absl::StrCat("retries: ", retries_before, " -> ", retries_after));
  }
  const std::string auth_before = rules(before ? &before->auth : nullptr);
  const std::string auth_after = rules(&after.auth);
  if (auth_before != auth_after) {
    out.push_back(absl::StrCat("auth: ", auth_before, " -> ", auth_after));
  }
  const std::string quotas_before = rules(before ? &before->quotas : nullptr);
  const std::string quotas_after = rules(&after.quotas);
  if (quotas_before != quotas_after) {
    out.push_back(absl::StrCat("quotas: ", quotas_before, " -> ", quotas_after));
  }
  return out;
}

bool SameBackendConfig(const std::optional<config::v1::Backend>& a,
                       const std::optional<config::v1::Backend>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || a->SerializeAsString() == b->SerializeAsString();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Registry>> Registry::Create(BaseRoutes base,
                                                           std::unique_ptr<RegistryStore> store,
                                                           Publisher publish,
                                                           std::vector<std::string>* problems,
                                                           Now now, RegistryOptions options) {
  RegistryState loaded;
  if (store != nullptr) {
    absl::Status status = store->Open();
    if (!status.ok()) return status;
    absl::StatusOr<RegistryStore::Loaded> result = store->Load();
    if (!result.ok()) return result.status();
    for (std::string& p : result->problems) problems->push_back(std::move(p));
    loaded = std::move(result->state);
  }
  std::unique_ptr<Registry> registry(
      new Registry(std::move(base), std::move(store), std::move(publish), std::move(now),
                   std::move(options)));
  absl::MutexLock lock(&registry->mu_);
  absl::Status status = registry->Restore(std::move(loaded), problems);
  if (!status.ok()) return status;
  return registry;
}

absl::Status Registry::Reload(std::vector<std::string>* problems) {
  if (store_ == nullptr) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  absl::StatusOr<RegistryStore::Loaded> result = store_->Load();
  if (!result.ok()) return result.status();
  for (std::string& p : result->problems) problems->push_back(std::move(p));
  return Restore(std::move(result->state), problems);
}

absl::Status Registry::Rebase(BaseRoutes base, std::vector<std::string>* problems) {
  absl::MutexLock lock(&mu_);
  BaseRoutes old = std::move(base_);
  base_ = std::move(base);
  // The registered services' quota counters start again, as the config's do.
  RegisteredQuotas old_quotas = own_quotas_;
  own_quotas_.Clear();
  absl::Status status = Restore(state_, problems);
  if (!status.ok()) {
    base_ = std::move(old);
    if (routes_ != nullptr) own_backends_.Retain(*routes_);
    own_quotas_ = std::move(old_quotas);
  }
  return status;
}

absl::Status Registry::Restore(RegistryState loaded, std::vector<std::string>* problems) {
  // The config's services alone must build; then each stored service is added in the order
  // it was registered, and one that no longer validates is left out (and reported).
  const absl::Time started = absl::Now();
  RegistryState accepted;
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      BuildRouteTable(base_, accepted, &own_backends_, &own_quotas_);
  if (!table.ok()) return table.status();
  std::vector<const ServiceVersion*> served = loaded.Served();
  std::stable_sort(served.begin(), served.end(),
                   [](const ServiceVersion* a, const ServiceVersion* b) {
                     return a->registered_at < b->registered_at;
                   });
  for (const std::string& name : loaded.Names()) {
    for (const ServiceVersion& v : loaded.History(name)) {
      if (&v == loaded.Current(name)) continue;  // added below once it validates
      accepted.Restore(v);
    }
  }
  for (const ServiceVersion* v : served) {
    RegistryState candidate = accepted;
    candidate.Restore(*v);
    absl::StatusOr<std::shared_ptr<const RouteTable>> next =
        BuildRouteTable(base_, candidate, &own_backends_, &own_quotas_);
    if (!next.ok()) {
      problems->push_back(absl::StrCat("service ", v->service, " v", v->version,
                                       " is not served: ", next.status().message()));
      // Keep its number taken so a later registration does not reuse it.
      ServiceVersion hidden = *v;
      hidden.removed = true;
      hidden.descriptor_set.clear();
      accepted.Restore(std::move(hidden));
      continue;
    }
    accepted = std::move(candidate);
    table = std::move(next);
  }
  // A store may hold more than the history keeps (the limit was lowered); the store itself
  // is pruned with the service's next change.
  for (const std::string& name : accepted.Names()) {
    accepted.Prune(name, static_cast<std::size_t>(std::max(options_.history_limit, 1)));
  }
  state_ = std::move(accepted);
  routes_ = *table;
  own_backends_.Retain(*routes_);
  own_quotas_.Retain(&routes_->chain());
  if (publish_) publish_(*table);
  CountSwap(started);
  return absl::OkStatus();
}

void Registry::PruneHistory(const std::string& service, std::vector<std::string>* warnings) {
  const std::vector<int64_t> dropped =
      state_.Prune(service, static_cast<std::size_t>(std::max(options_.history_limit, 1)));
  if (store_ == nullptr) return;
  for (int64_t version : dropped) {
    absl::Status status = store_->Delete(service, version);
    if (!status.ok()) {
      warnings->push_back(absl::StrCat("service ", service, " v", version,
                                       " was pruned from the history but could not be deleted "
                                       "from the store: ", status.message()));
    }
  }
}

void Registry::CountSwap(absl::Time started) {
  ++stats_.swaps;
  stats_.last_swap = absl::Now();
  stats_.last_swap_duration = stats_.last_swap - started;
}

Registry::Stats Registry::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status Registry::CheckOwner(const std::string& service, const std::string& package,
                                  const std::string& owner) const {
  for (const ServiceBinding& b : base_.services) {
    if (b.service == service) {
      return absl::PermissionDeniedError(absl::StrCat(
          "service ", service, " is defined in the gateway config and cannot be changed "
                               "through the registry"));
    }
    const ServiceDescriptor* config_service =
        routes_ == nullptr ? nullptr : routes_->pool().FindServiceByName(b.service);
    if (config_service != nullptr && !package.empty() && PackageOf(*config_service) == package) {
      return absl::PermissionDeniedError(absl::StrCat("package ", package,
                                                      " is defined in the gateway config "
                                                      "(service ", b.service, ")"));
    }
  }
  const std::vector<ServiceVersion>& history = state_.History(service);
  if (!history.empty() && history.back().owner != owner) {
    return absl::PermissionDeniedError(absl::StrCat("service ", service, " is owned by \"",
                                                    history.back().owner, "\", not \"", owner,
                                                    "\""));
  }
  if (package.empty() || routes_ == nullptr) return absl::OkStatus();
  for (const ServiceVersion* other : state_.Served()) {
    if (other->service == service || other->owner == owner) continue;
    const ServiceDescriptor* d = routes_->pool().FindServiceByName(other->service);
    if (d != nullptr && PackageOf(*d) == package) {
      return absl::PermissionDeniedError(absl::StrCat("package ", package,
                                                      " is registered by \"", other->owner,
                                                      "\" (service ", other->service, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ChangeResult> Registry::Register(const RegisterRequest& request) {
  if (request.service.empty()) return absl::InvalidArgumentError("service: required");
  if (!IsFullName(request.service)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service: \"", request.service, "\" is not a full service name (e.g. pkg.v1.Service)"));
  }
  if (request.owner.empty()) return absl::InvalidArgumentError("owner: required");
  std::optional<config::v1::Backend> backend_config = request.backend_config;
  if (backend_config.has_value()) {
    if (backend_config->name().empty()) backend_config->set_name(request.service);
    if (!request.backend.empty() && request.backend != backend_config->name()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "backend: \"", request.backend, "\" differs from backend_config.name \"",
          backend_config->name(), "\" (with backend_config, leave backend empty)"));
    }
    const config::v1::ClientTls& tls = backend_config->tls();
    const std::pair<const char*, const std::string*> files[] = {
        {"ca_file", &tls.ca_file()}, {"cert_file", &tls.cert_file()},
        {"key_file", &tls.key_file()}};
    for (const auto& [field, value] : files) {
      if (request.restricted && !value->empty()) {
        return absl::PermissionDeniedError(absl::StrCat(
            "backend_config.tls.", field, ": a team token may not name files on the "
            "gateway's host (ask the platform team for a backend of the gateway config)"));
      }
    }
  } else if (request.backend.empty()) {
    return absl::InvalidArgumentError("backend: required (or backend_config)");
  }
  const std::string backend_name =
      backend_config.has_value() ? backend_config->name() : request.backend;
  std::shared_ptr<Backend> backend;
  if (backend_config.has_value()) {
    absl::MutexLock lock(&mu_);
    if (base_.backends.count(backend_name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "backend_config.name: \"", backend_name,
          "\" is a backend of the gateway config (name the service's own backend "
          "differently, or name the config's with `backend` alone)"));
    }
    absl::StatusOr<std::shared_ptr<Backend>> own =
        own_backends_.Get(*backend_config, base_.limits, base_.base_dir, "backend_config");
    if (!own.ok()) return own.status();
    backend = *std::move(own);
  } else {
    absl::MutexLock lock(&mu_);
    auto it = base_.backends.find(request.backend);
    if (it == base_.backends.end()) {
      std::vector<std::string> known;
      for (const auto& [name, b] : base_.backends) known.push_back(name);
      return absl::InvalidArgumentError(
          absl::StrCat("backend: unknown backend \"", request.backend, "\" (known: ",
                       known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
    }
    backend = it->second;
  }
  if (request.descriptor_set.empty()) {
    return absl::InvalidArgumentError("descriptor_set: required");
  }
  absl::StatusOr<std::shared_ptr<const DescriptorPool>> pool =
      PoolOf(request.descriptor_set, "descriptor_set");
  if (!pool.ok()) return pool.status();
  const ServiceDescriptor* service = (*pool)->FindServiceByName(request.service);
  if (service == nullptr) {
    std::vector<std::string> defined = ServicesIn(**pool, request.descriptor_set);
    return absl::InvalidArgumentError(absl::StrCat(
        "descriptor_set: service ", request.service, " is not defined in it (it defines: ",
        defined.empty() ? "no service" : absl::StrJoin(defined, ", "), ")"));
  }

  config::v1::Deadlines deadlines = request.deadlines;
  config::v1::Retries retries = request.retries;
  DefaultSelectors(request.service, &deadlines, &retries);
  if (absl::Status s = CheckServiceRules(request.service, deadlines, retries, **pool); !s.ok()) {
    return s;
  }
  config::v1::Auth auth = request.auth;
  config::v1::Quotas quotas = request.quotas;
  DefaultSelectors(request.service, &auth, &quotas);
  {
    GatewayAccess access;
    {
      absl::MutexLock lock(&mu_);
      access = GatewayAccessOf(base_);
    }
    if (absl::Status s = CheckServiceAccess(request.service, auth, quotas, **pool, access);
        !s.ok()) {
      return s;
    }
  }

  if (request.restricted && !PackageAllowed(PackageOf(*service), request.allowed_packages)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "package ", PackageOf(*service).empty() ? "(none)" : PackageOf(*service),
        " of service ", request.service, " is not one this token may register in (",
        request.allowed_packages.empty() ? "none" : absl::StrJoin(request.allowed_packages, ", "),
        ")"));
  }
  // Ownership first (cheap, and the more basic refusal); the backend is asked without the
  // lock held, as it may take its time (bounded by the check); ownership is checked again
  // below since another change may have happened meanwhile.
  {
    absl::MutexLock lock(&mu_);
    absl::Status status = CheckOwner(request.service, PackageOf(*service), request.owner);
    if (!status.ok()) return status;
  }
  std::vector<std::string> warnings;
  if (options_.check_backend) {
    const ServiceCheck check =
        options_.check_backend(*backend, request.service);
    if (check.verdict == ServiceCheck::kNotServed) {
      if (!request.force && !request.dry_run) {
        return absl::FailedPreconditionError(absl::StrCat(
            "backend \"", backend_name, "\" does not serve ", request.service, " (",
            check.detail, "); register it with the backend that serves it, or force it (",
            kForceHint, ")"));
      }
      warnings.push_back(absl::StrCat("backend \"", backend_name, "\" does not serve ",
                                      request.service, " (", check.detail, ")"));
    } else if (check.verdict == ServiceCheck::kUnknown) {
      warnings.push_back(absl::StrCat("backend \"", backend_name,
                                      "\" could not be asked whether it serves ",
                                      request.service, ": ", check.detail));
    }
  }

  absl::MutexLock lock(&mu_);
  absl::Status status = CheckOwner(request.service, PackageOf(*service), request.owner);
  if (!status.ok()) return status;

  if (const ServiceVersion* current = state_.Current(request.service);
      current != nullptr && current->owner == request.owner &&
      current->backend == backend_name &&
      SameBackendConfig(current->backend_config, backend_config) &&
      current->deadlines.SerializeAsString() == deadlines.SerializeAsString() &&
      current->retries.SerializeAsString() == retries.SerializeAsString() &&
      current->auth.SerializeAsString() == auth.SerializeAsString() &&
      current->quotas.SerializeAsString() == quotas.SerializeAsString() &&
      CanonicalDescriptorSet(current->descriptor_set) ==
          CanonicalDescriptorSet(request.descriptor_set)) {
    ChangeResult result;
    result.version = *current;
    result.version.descriptor_set.clear();
    result.dry_run = request.dry_run;
    result.unchanged = true;
    result.warnings = std::move(warnings);
    return result;
  }

  std::vector<std::string> breaking;
  if (const ServiceVersion* current = state_.Current(request.service)) {
    absl::StatusOr<std::shared_ptr<const DescriptorPool>> old_pool = PoolOf(
        current->descriptor_set, absl::StrCat("service ", current->service, " v",
                                              current->version));
    if (!old_pool.ok()) return old_pool.status();
    const ServiceDescriptor* old_service = (*old_pool)->FindServiceByName(request.service);
    if (old_service != nullptr) breaking = BreakingChanges(*old_service, *service);
    if (!breaking.empty() && !request.force && !request.dry_run) {
      return absl::FailedPreconditionError(
          absl::StrCat("breaking changes (to accept them: ", kForceHint, "):\n",
                       absl::StrJoin(breaking, "\n")));
    }
  }
  ServiceVersion version;
  version.service = request.service;
  version.owner = request.owner;
  version.backend = backend_name;
  version.backend_config = backend_config;
  version.deadlines = deadlines;
  version.retries = retries;
  version.auth = auth;
  version.quotas = quotas;
  version.descriptor_set = request.descriptor_set;
  version.registered_at = now_();
  version.changed_by = request.changed_by;
  RegistryState candidate = state_;
  version.version = candidate.Append(version);
  // Routes overlapping another service's: only those this change adds count (one accepted
  // earlier with force is not asked about again).
  std::set<std::string> known_overlaps;
  if (routes_ != nullptr) {
    for (std::string& o : OverlappingRoutes(*routes_, request.service)) {
      known_overlaps.insert(std::move(o));
    }
  }
  auto check_overlaps = [&](const RouteTable& table, ChangeResult* result) -> absl::Status {
    if (request.restricted) {
      std::vector<std::string> outside = RoutesOutside(
          table, request.service,
          [&](absl::string_view path) { return PathAllowed(path, request.allowed_path_prefixes); });
      if (!outside.empty()) {
        return absl::PermissionDeniedError(absl::StrCat(
            "routes of ", request.service, " outside the path prefixes this token may claim (",
            request.allowed_path_prefixes.empty()
                ? "none"
                : absl::StrJoin(request.allowed_path_prefixes, ", "),
            "):\n", absl::StrJoin(outside, "\n")));
      }
    }
    std::vector<std::string> overlaps;
    for (std::string& o : OverlappingRoutes(table, request.service)) {
      if (known_overlaps.count(o) == 0) overlaps.push_back(std::move(o));
    }
    if (!overlaps.empty() && !request.force && !request.dry_run) {
      return absl::FailedPreconditionError(absl::StrCat(
          "new routes of ", request.service, " overlap routes of another service (requests "
          "meant for one could reach the other; to accept them: ", kForceHint, "):\n",
          absl::StrJoin(overlaps, "\n")));
    }
    for (const std::string& o : overlaps) {
      result->warnings.push_back(absl::StrCat("route overlap: ", o));
    }
    for (std::string& w : warnings) result->warnings.push_back(std::move(w));
    return absl::OkStatus();
  };
  absl::StatusOr<ChangeResult> result = Apply(std::move(candidate), version, std::move(breaking),
                                              request.dry_run, check_overlaps);
  if (result.ok() && !request.dry_run) ++stats_.registered;
  if (routes_ != nullptr) {
    own_backends_.Retain(*routes_);
    own_quotas_.Retain(&routes_->chain());
  }
  return result;
}

absl::StatusOr<ChangeResult> Registry::Remove(const std::string& service,
                                              const std::string& owner, bool dry_run,
                                              const std::string& changed_by) {
  absl::MutexLock lock(&mu_);
  const ServiceVersion* current = state_.Current(service);
  if (current == nullptr) {
    for (const ServiceBinding& b : base_.services) {
      if (b.service == service) {
        return absl::PermissionDeniedError(absl::StrCat(
            "service ", service, " is defined in the gateway config and cannot be removed "
                                 "through the registry"));
      }
    }
    return absl::NotFoundError(absl::StrCat("service ", service, " is not registered"));
  }
  if (current->owner != owner) {
    return absl::PermissionDeniedError(absl::StrCat("service ", service, " is owned by \"",
                                                    current->owner, "\", not \"", owner, "\""));
  }
  ServiceVersion version;
  version.service = service;
  version.owner = owner;
  version.backend = current->backend;
  version.registered_at = now_();
  version.changed_by = changed_by;
  version.removed = true;
  RegistryState candidate = state_;
  version.version = candidate.Append(version);
  absl::StatusOr<ChangeResult> result = Apply(std::move(candidate), version, {}, dry_run);
  if (result.ok() && !dry_run) ++stats_.removed;
  if (routes_ != nullptr) {
    own_backends_.Retain(*routes_);
    own_quotas_.Retain(&routes_->chain());
  }
  return result;
}

absl::StatusOr<ChangeResult> Registry::Rollback(const std::string& service, int64_t to_version,
                                                const std::string& owner, bool dry_run,
                                                const std::string& changed_by) {
  absl::MutexLock lock(&mu_);
  const std::vector<ServiceVersion>& history = state_.History(service);
  if (history.empty()) {
    return absl::NotFoundError(absl::StrCat("service ", service, " is not registered"));
  }
  if (history.back().owner != owner) {
    return absl::PermissionDeniedError(absl::StrCat("service ", service, " is owned by \"",
                                                    history.back().owner, "\", not \"", owner,
                                                    "\""));
  }
  const ServiceVersion* target = nullptr;
  if (to_version == 0) {
    // The newest served version before the current one.
    for (auto it = history.rbegin() + 1; it < history.rend(); ++it) {
      if (!it->removed) {
        target = &*it;
        break;
      }
    }
    if (target == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("service ", service, " has no earlier version to roll back to"));
    }
  } else {
    target = state_.Find(service, to_version);
    if (target == nullptr && to_version > 0 && to_version < history.front().version) {
      return absl::NotFoundError(absl::StrCat(
          "service ", service, " version ", to_version,
          " was pruned from the history, which keeps the newest ",
          std::max(options_.history_limit, 1), " versions (now v", history.front().version,
          " to v", history.back().version, ")"));
    }
    if (target == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("service ", service, " has no version ", to_version));
    }
    if (target->removed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "service ", service, " version ", to_version, " records a removal; use remove"));
    }
  }
  std::vector<std::string> breaking;
  if (const ServiceVersion* current = state_.Current(service)) {
    absl::StatusOr<std::shared_ptr<const DescriptorPool>> old_pool =
        PoolOf(current->descriptor_set, "current version");
    absl::StatusOr<std::shared_ptr<const DescriptorPool>> new_pool =
        PoolOf(target->descriptor_set, "target version");
    if (old_pool.ok() && new_pool.ok()) {
      const ServiceDescriptor* a = (*old_pool)->FindServiceByName(service);
      const ServiceDescriptor* b = (*new_pool)->FindServiceByName(service);
      if (a != nullptr && b != nullptr) breaking = BreakingChanges(*a, *b);
    }
  }
  ServiceVersion version = *target;
  version.owner = owner;
  version.registered_at = now_();
  version.changed_by = changed_by;
  RegistryState candidate = state_;
  version.version = candidate.Append(version);
  absl::StatusOr<ChangeResult> result =
      Apply(std::move(candidate), version, std::move(breaking), dry_run);
  if (result.ok() && !dry_run) ++stats_.rolled_back;
  if (routes_ != nullptr) {
    own_backends_.Retain(*routes_);
    own_quotas_.Retain(&routes_->chain());
  }
  return result;
}

absl::StatusOr<ChangeResult> Registry::Apply(RegistryState candidate,
                                             const ServiceVersion& version,
                                             std::vector<std::string> breaking, bool dry_run,
                                             const TableCheck& check) {
  const absl::Time started = absl::Now();
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      BuildRouteTable(base_, candidate, &own_backends_, &own_quotas_);
  if (!table.ok()) return table.status();
  ChangeResult result;
  result.version = version;
  result.version.descriptor_set.clear();
  result.changes = Summarize(routes_.get(), **table);
  result.changes.breaking_changes = std::move(breaking);
  result.changes.settings_changes = SettingsChanges(state_.Current(version.service), version);
  result.dry_run = dry_run;
  if (check) {
    if (absl::Status status = check(**table, &result); !status.ok()) return status;
  }
  if (dry_run) return result;
  if (store_ != nullptr) {
    absl::Status status = store_->Write(version);
    if (!status.ok()) return status;
  }
  state_ = std::move(candidate);
  routes_ = *table;
  if (publish_) publish_(*std::move(table));
  CountSwap(started);
  PruneHistory(version.service, &result.warnings);
  return result;
}

std::vector<ServiceVersion> Registry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ServiceVersion> out;
  for (const ServiceVersion* v : state_.Served()) out.push_back(*v);
  return out;
}

absl::StatusOr<ServiceVersion> Registry::Get(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  const ServiceVersion* v = state_.Current(service);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("service ", service, " is not registered"));
  }
  return *v;
}

absl::StatusOr<std::vector<ServiceVersion>> Registry::Versions(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  const std::vector<ServiceVersion>& history = state_.History(service);
  if (history.empty()) {
    return absl::NotFoundError(absl::StrCat("service ", service, " has no versions"));
  }
  return history;
}

std::shared_ptr<const RouteTable> Registry::routes() const {
  absl::MutexLock lock(&mu_);
  return routes_;
}

std::pair<int, int> Registry::Counts(const std::string& service) const {
  std::shared_ptr<const RouteTable> table = routes();
  int methods = 0;
  int http_routes = 0;
  if (const ServiceDescriptor* d = table->pool().FindServiceByName(service)) {
    methods = d->method_count();
  }
  for (const auto& plan : table->transcoder().routes().plans()) {
    if (plan->method->service()->full_name() == service) ++http_routes;
  }
  return {methods, http_routes};
}

}  // namespace gateway::registry
