#include "gateway/registry/candidate.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/gateway_config.h"
#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/registry/compatibility.h"
#include "gateway/registry/service_rules.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway::registry {
namespace {

std::vector<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::set<std::string> ServiceNames(const RouteTable& table) {
  std::set<std::string> out;
  for (const ServiceBinding& b : table.services()) out.insert(b.service);
  return out;
}

std::set<std::string> MethodPaths(const RouteTable& table) {
  std::set<std::string> out;
  for (const ServiceBinding& b : table.services()) {
    const google::protobuf::ServiceDescriptor* s = table.pool().FindServiceByName(b.service);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      out.insert(absl::StrCat("/", s->full_name(), "/", s->method(i)->name()));
    }
  }
  return out;
}

}  // namespace

namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FileDescriptorProto;

struct FileEntry {
  FileDescriptorProto proto;  // without source info
  std::string origin;
};

// Adds the files of one serialized set to `files`; a file already in `base_files` or
// `files` must be equivalent to it (FileDifferences: what matters to the wire and the
// mapping); the copy seen first is kept.
absl::Status AddFiles(const std::string& bytes, const std::string& origin,
                      const std::map<std::string, FileEntry>& base_files,
                      std::map<std::string, FileEntry>* files, bool builtin = false) {
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a FileDescriptorSet"));
  }
  for (FileDescriptorProto& file : *set.mutable_file()) {
    file.clear_source_code_info();
    const FileEntry* existing = nullptr;
    if (auto it = base_files.find(file.name()); it != base_files.end()) existing = &it->second;
    if (auto it = files->find(file.name()); it != files->end()) existing = &it->second;
    if (existing != nullptr) {
      if (builtin) continue;
      std::vector<std::string> differences =
          FileDifferences(file, origin, existing->proto, existing->origin);
      if (!differences.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            origin, ": file \"", file.name(), "\" differs from the one in ", existing->origin,
            ":\n", absl::StrJoin(differences, "\n")));
      }
      continue;
    }
    FileEntry& entry = (*files)[file.name()];
    entry.origin = origin;
    entry.proto = std::move(file);
  }
  return absl::OkStatus();
}

class CollectingErrors : public DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message*, ErrorLocation,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(
        filename, element_name.empty() ? "" : absl::StrCat(" (", element_name, ")"), ": ",
        message));
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

// Builds `files` into `pool` (layered over the config's pool) in dependency order.
absl::Status BuildFiles(const std::map<std::string, FileEntry>& files, DescriptorPool* pool) {
  std::set<std::string> built, in_progress;
  std::function<absl::Status(const std::string&, const std::string&)> build =
      [&](const std::string& name, const std::string& importer) -> absl::Status {
    if (built.count(name) > 0) return absl::OkStatus();
    auto it = files.find(name);
    if (it == files.end()) {
      if (pool->FindFileByName(name) != nullptr) return absl::OkStatus();  // the config's
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", importer, "\" imports \"", name,
          "\", which is in no descriptor set (build the set with protoc --include_imports)"));
    }
    if (!in_progress.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("import cycle through \"", name, "\""));
    }
    for (const std::string& dep : it->second.proto.dependency()) {
      if (absl::Status s = build(dep, name); !s.ok()) return s;
    }
    CollectingErrors errors;
    if (pool->BuildFileCollectingErrors(it->second.proto, &errors) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(it->second.origin, ": invalid file \"",
                                                     name, "\": ", errors.Joined()));
    }
    in_progress.erase(name);
    built.insert(name);
    return absl::OkStatus();
  };
  for (const auto& [name, entry] : files) {
    if (absl::Status s = build(name, name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

config::v1::Backend AsRegisteredBackend(const config::v1::Backend& config) {
  config::v1::Backend out = config;
  if (!out.has_required()) out.set_required(false);
  return out;
}

absl::StatusOr<std::shared_ptr<Backend>> RegisteredBackends::Get(
    const config::v1::Backend& config, const config::v1::Limits& limits,
    const std::string& base_dir, const std::string& key) {
  std::shared_ptr<Backend>& kept = by_name_[config.name()];
  absl::StatusOr<std::shared_ptr<Backend>> backend =
      CompileBackend(AsRegisteredBackend(config), limits, base_dir, key, kept);
  if (!backend.ok()) {
    if (kept == nullptr) by_name_.erase(config.name());
    return backend.status();
  }
  kept = *backend;
  return backend;
}

void RegisteredBackends::Retain(const RouteTable& table) {
  std::map<std::string, std::shared_ptr<Backend>> kept;
  for (const ServiceBinding& b : table.services()) {
    if (b.backend != nullptr && by_name_.count(b.backend->name()) > 0) {
      kept[b.backend->name()] = b.backend;
    }
  }
  by_name_ = std::move(kept);
}

GatewayAccess GatewayAccessOf(const BaseRoutes& base) {
  GatewayAccess access;
  access.quotas = base.quotas;
  if (base.chain != nullptr) {
    for (const auto& interceptor : base.chain->interceptors()) {
      if (auto auth = std::dynamic_pointer_cast<const AuthInterceptor>(interceptor)) {
        access.auth = std::move(auth);
        break;
      }
    }
  }
  return access;
}

absl::StatusOr<std::shared_ptr<const RouteTable>> BuildRouteTable(const BaseRoutes& base,
                                                                  const RegistryState& state,
                                                                  RegisteredBackends* backends,
                                                                  RegisteredQuotas* quotas) {
  if (base.pool == nullptr) return absl::InternalError("BuildRouteTable: no config pool");
  std::map<std::string, FileEntry> base_files;
  for (const BaseRoutes::DescriptorSet& set : base.descriptor_sets) {
    std::map<std::string, FileEntry> none;
    if (absl::Status s = AddFiles(set.bytes, set.origin, none, &base_files, set.builtin);
        !s.ok()) {
      return s;
    }
  }
  // Base files that the config's pool lacks (built-in services' files) go into the layer.
  std::map<std::string, FileEntry> files;
  for (const auto& [name, entry] : base_files) {
    if (base.pool->FindFileByName(name) == nullptr) files.emplace(name, entry);
  }
  std::vector<ServiceBinding> bindings = base.services;
  std::map<std::string, std::string> own_backends;  // backend name -> service
  for (const ServiceVersion* v : state.Served()) {
    absl::Status status = AddFiles(v->descriptor_set,
                                   absl::StrCat("service ", v->service, " v", v->version),
                                   base_files, &files);
    if (!status.ok()) return status;
    if (v->backend_config.has_value()) {
      const std::string& name = v->backend_config->name();
      if (base.backends.count(name) > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service ", v->service, ": backend_config.name: \"", name,
            "\" is a backend of the gateway config (name the service's own backend "
            "differently, or name the config's with `backend` alone)"));
      }
      if (auto [it, added] = own_backends.emplace(name, v->service); !added) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service ", v->service, ": backend_config.name: \"", name,
            "\" is already the backend of service ", it->second));
      }
      const std::string key = absl::StrCat("service ", v->service, ": backend_config");
      absl::StatusOr<std::shared_ptr<Backend>> backend =
          backends != nullptr
              ? backends->Get(*v->backend_config, base.limits, base.base_dir, key)
              : CompileBackend(AsRegisteredBackend(*v->backend_config), base.limits,
                               base.base_dir, key, nullptr);
      if (!backend.ok()) return backend.status();
      bindings.push_back({v->service, *std::move(backend)});
      continue;
    }
    auto backend = base.backends.find(v->backend);
    if (backend == base.backends.end()) {
      return absl::InvalidArgumentError(absl::StrCat("service ", v->service,
                                                     ": unknown backend \"", v->backend, "\""));
    }
    bindings.push_back({v->service, backend->second});
  }
  // The layered pool keeps the config's pool alive for as long as it lives.
  std::shared_ptr<const DescriptorPool> underlay = base.pool;
  std::shared_ptr<DescriptorPool> pool(new DescriptorPool(underlay.get()),
                                       [underlay](DescriptorPool* p) { delete p; });
  if (absl::Status s = BuildFiles(files, pool.get()); !s.ok()) return s;
  std::vector<ServiceRules> rules;
  for (const ServiceVersion* v : state.Served()) {
    rules.push_back({v->service, &v->deadlines, &v->retries});
  }
  const std::shared_ptr<const Clock> clock = base.clock != nullptr ? base.clock : RealClock();
  absl::StatusOr<std::shared_ptr<const Interceptor>> service_rules =
      BuildServiceRules(rules, *pool, clock);
  if (!service_rules.ok()) return service_rules.status();
  // Auth and quota rules.
  const GatewayAccess access = GatewayAccessOf(base);
  std::vector<ServiceAuth> auth_rules;
  std::map<std::string, std::shared_ptr<const QuotaInterceptor>> quota_rules;
  for (const ServiceVersion* v : state.Served()) {
    if (v->auth.rules_size() > 0) auth_rules.push_back({v->service, &v->auth});
    if (v->quotas.rules_size() == 0) continue;
    absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> q =
        quotas != nullptr ? quotas->Get(v->service, v->quotas, *pool, access, clock)
                          : CompileServiceQuotas(v->service, v->quotas, *pool, access, clock);
    if (!q.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("service ", v->service, ": ", q.status().message()));
    }
    quota_rules[v->service] = *std::move(q);
  }
  absl::StatusOr<std::shared_ptr<const Interceptor>> service_auth =
      BuildServiceAuth(auth_rules, *pool, access);
  if (!service_auth.ok()) return service_auth.status();
  std::shared_ptr<const Interceptor> service_quotas = BuildServiceQuotas(std::move(quota_rules));
  std::shared_ptr<const InterceptorChain> chain = base.chain;
  if (*service_rules != nullptr || *service_auth != nullptr || service_quotas != nullptr) {
    std::vector<std::shared_ptr<const Interceptor>> config;
    if (base.chain != nullptr) config = base.chain->interceptors();
    auto named = [&](absl::string_view name) {
      for (const auto& i : config) {
        if (i->name() == name) return true;
      }
      return false;
    };
    const bool has_auth = named("auth");
    const bool has_quota = named("quota");
    // The config's auth, the services' auth, the config's quotas, the services' quotas,
    // then the rest of the config's chain and the services' deadline and retry rules.
    std::vector<std::shared_ptr<const Interceptor>> interceptors;
    if (!has_auth && *service_auth != nullptr) interceptors.push_back(*service_auth);
    if (!has_auth && !has_quota && service_quotas != nullptr) {
      interceptors.push_back(service_quotas);
    }
    for (const auto& i : config) {
      interceptors.push_back(i);
      if (i->name() == "auth") {
        if (*service_auth != nullptr) interceptors.push_back(*service_auth);
        if (!has_quota && service_quotas != nullptr) interceptors.push_back(service_quotas);
      }
      if (i->name() == "quota" && service_quotas != nullptr) {
        interceptors.push_back(service_quotas);
      }
    }
    if (*service_rules != nullptr) interceptors.push_back(*std::move(service_rules));
    chain = std::make_shared<const InterceptorChain>(std::move(interceptors));
  }
  return RouteTable::Create(std::move(pool), std::move(bindings), base.http_options,
                            std::move(chain));
}

namespace {

// The path template of a plan: rule_text is `get "/v1/x"`, the path is between the quotes.
std::string PathOf(const transcoder::MethodPlan& plan) {
  const std::string& rule = plan.rule_text;
  const std::size_t open = rule.find('"');
  const std::size_t close = rule.rfind('"');
  return open != std::string::npos && close > open ? rule.substr(open + 1, close - open - 1)
                                                   : rule;
}

// "GET /v1/x/{id} -> pkg.S.M"
std::string RouteText(const transcoder::MethodPlan& plan) {
  return absl::StrCat(plan.http_method, " ", PathOf(plan), " -> ", plan.method->full_name());
}

using Segment = transcoder::HttpTemplate::Segment;

// Whether a[i..] and b[j..] can match the same segments ("**" is only ever last).
bool SegmentsOverlap(const std::vector<Segment>& a, std::size_t i, const std::vector<Segment>& b,
                     std::size_t j) {
  for (;; ++i, ++j) {
    const bool a_rest = i < a.size() && a[i].kind == Segment::Kind::kMultiWildcard;
    const bool b_rest = j < b.size() && b[j].kind == Segment::Kind::kMultiWildcard;
    if (a_rest || b_rest) return true;  // "**" takes whatever the other has left
    if (i == a.size() || j == b.size()) return i == a.size() && j == b.size();
    if (a[i].kind == Segment::Kind::kLiteral && b[j].kind == Segment::Kind::kLiteral &&
        a[i].literal != b[j].literal) {
      return false;
    }
  }
}

bool EndsWithWildcard(const transcoder::HttpTemplate& t) {
  return !t.segments.empty() && t.segments.back().kind != Segment::Kind::kLiteral;
}

}  // namespace

std::vector<std::string> HttpRoutes(const RouteTable& table) {
  std::vector<std::string> out;
  for (const auto& plan : table.transcoder().routes().plans()) out.push_back(RouteText(*plan));
  std::sort(out.begin(), out.end());
  return out;
}

bool TemplatesOverlap(const transcoder::HttpTemplate& a, const transcoder::HttpTemplate& b) {
  if (a.verb != b.verb) {
    // "/v1/*" also matches "/v1/x:verb" (the whole segment), "/v1/x:verb" never "/v1/x".
    const transcoder::HttpTemplate& plain = a.verb.empty() ? a : b;
    if (!plain.verb.empty() || !EndsWithWildcard(plain)) return false;
  }
  return SegmentsOverlap(a.segments, 0, b.segments, 0);
}

std::vector<std::string> OverlappingRoutes(const RouteTable& table, const std::string& service) {
  std::vector<std::string> out;
  const auto& plans = table.transcoder().routes().plans();
  for (const auto& mine : plans) {
    if (mine->method->service()->full_name() != service) continue;
    for (const auto& other : plans) {
      const std::string& other_service = other->method->service()->full_name();
      if (other_service == service || other->http_method != mine->http_method) continue;
      if (!TemplatesOverlap(mine->path_template, other->path_template)) continue;
      out.push_back(absl::StrCat(RouteText(*mine), " overlaps ", RouteText(*other),
                                 " (service ", other_service, ")"));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

ChangeSummary Summarize(const RouteTable* before, const RouteTable& after) {
  ChangeSummary summary;
  std::set<std::string> services_before, methods_before, routes_before;
  if (before != nullptr) {
    services_before = ServiceNames(*before);
    methods_before = MethodPaths(*before);
    for (std::string& r : HttpRoutes(*before)) routes_before.insert(std::move(r));
  }
  const std::set<std::string> services_after = ServiceNames(after);
  const std::set<std::string> methods_after = MethodPaths(after);
  std::set<std::string> routes_after;
  for (std::string& r : HttpRoutes(after)) routes_after.insert(std::move(r));
  summary.services_added = Minus(services_after, services_before);
  summary.services_removed = Minus(services_before, services_after);
  summary.methods_added = Minus(methods_after, methods_before);
  summary.methods_removed = Minus(methods_before, methods_after);
  summary.routes_added = Minus(routes_after, routes_before);
  summary.routes_removed = Minus(routes_before, routes_after);
  return summary;
}

std::string ChangeSummary::ToString() const {
  std::vector<std::string> lines;
  for (const auto& s : services_added) lines.push_back(absl::StrCat("+ service ", s));
  for (const auto& s : services_removed) lines.push_back(absl::StrCat("- service ", s));
  for (const auto& s : methods_added) lines.push_back(absl::StrCat("+ method ", s));
  for (const auto& s : methods_removed) lines.push_back(absl::StrCat("- method ", s));
  for (const auto& s : routes_added) lines.push_back(absl::StrCat("+ route ", s));
  for (const auto& s : routes_removed) lines.push_back(absl::StrCat("- route ", s));
  for (const auto& s : breaking_changes) lines.push_back(absl::StrCat("! ", s));
  for (const auto& s : settings_changes) lines.push_back(absl::StrCat("~ ", s));
  if (lines.empty()) return "no changes";
  return absl::StrJoin(lines, "\n");
}

std::vector<std::string> RoutesOutside(const RouteTable& table, const std::string& service,
                                       const std::function<bool(absl::string_view)>& allowed) {
  std::vector<std::string> out;
  for (const auto& plan : table.transcoder().routes().plans()) {
    if (plan->method->service()->full_name() != service) continue;
    if (!allowed(PathOf(*plan))) out.push_back(RouteText(*plan));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace gateway::registry
