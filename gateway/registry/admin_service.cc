#include "gateway/registry/admin_service.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gateway/config/config_loader.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace gateway::registry {
namespace {

// How long a registration waits for the backend to say whether it serves the service.
constexpr absl::Duration kBackendCheckTimeout = absl::Seconds(2);

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Constant-time comparison, so a wrong token reveals nothing through timing.
bool SameSecret(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

void FillSummary(const ChangeSummary& s, admin::v1::ChangeSummary* out) {
  for (const auto& x : s.services_added) out->add_services_added(x);
  for (const auto& x : s.services_removed) out->add_services_removed(x);
  for (const auto& x : s.methods_added) out->add_methods_added(x);
  for (const auto& x : s.methods_removed) out->add_methods_removed(x);
  for (const auto& x : s.routes_added) out->add_routes_added(x);
  for (const auto& x : s.routes_removed) out->add_routes_removed(x);
  for (const auto& x : s.breaking_changes) out->add_breaking_changes(x);
  for (const auto& x : s.settings_changes) out->add_settings_changes(x);
}

// "+1 services, +3 methods, -1 routes": the counts of a change that are not zero.
std::string SummaryLine(const ChangeSummary& s) {
  std::vector<std::string> parts;
  auto add = [&parts](std::size_t n, absl::string_view what) {
    if (n > 0) parts.push_back(absl::StrCat(what.substr(0, 1), n, " ", what.substr(1)));
  };
  add(s.services_added.size(), "+services");
  add(s.services_removed.size(), "-services");
  add(s.methods_added.size(), "+methods");
  add(s.methods_removed.size(), "-methods");
  add(s.routes_added.size(), "+routes");
  add(s.routes_removed.size(), "-routes");
  add(s.breaking_changes.size(), "+breaking changes (forced)");
  return parts.empty() ? "no change to the served methods or routes" : absl::StrJoin(parts, ", ");
}

// A serialized FileDescriptorSet of `file` and everything it imports, dependencies first.
std::string DescriptorSetOf(const google::protobuf::FileDescriptor* file) {
  google::protobuf::FileDescriptorSet set;
  std::set<std::string> added;
  std::function<void(const google::protobuf::FileDescriptor*)> add =
      [&](const google::protobuf::FileDescriptor* f) {
        if (!added.insert(f->name()).second) return;
        for (int i = 0; i < f->dependency_count(); ++i) add(f->dependency(i));
        google::protobuf::FileDescriptorProto* proto = set.add_file();
        f->CopyTo(proto);
        f->CopyJsonNameTo(proto);
      };
  add(file);
  return set.SerializeAsString();
}

// The registry's options: the history limit, and a backend check bounded by
// kBackendCheckTimeout (Register runs on the admin server's threads, never a front end's).
RegistryOptions RegistryOptionsFor(const AdminSettings& settings) {
  RegistryOptions options;
  options.history_limit = settings.history_limit;
  options.check_backend = [](const Backend& backend, const std::string& service) {
    return CheckBackendServes(*backend.channel(), service, kBackendCheckTimeout);
  };
  return options;
}

}  // namespace

bool IsLoopbackAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) return true;
  const std::size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<AdminSettings> CompileAdminListener(const config::v1::Config& config,
                                                   const std::string& base_dir) {
  const config::v1::AdminListener& a = config.admin_listener();
  AdminSettings settings;
  settings.address = a.address().empty() ? kDefaultAdminAddress : a.address();
  const std::size_t colon = settings.address.rfind(':');
  uint32_t port = 0;
  if (absl::StartsWith(settings.address, "unix:") || colon == std::string::npos ||
      colon == 0 || !absl::SimpleAtoi(settings.address.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin_listener.address: \"", settings.address, "\" is not HOST:PORT"));
  }
  if (!a.tokens_file().empty()) {
    const std::string path = ResolvePath(base_dir, a.tokens_file());
    absl::StatusOr<std::string> text = ReadFileToString(path);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin_listener.tokens_file: ", text.status().message()));
    }
    absl::StatusOr<std::shared_ptr<const AdminTokens>> tokens = AdminTokens::Parse(*text, path);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin_listener.tokens_file: ", tokens.status().message()));
    }
    settings.tokens = *std::move(tokens);
  }
  if (!a.audit_log_file().empty()) {
    settings.audit_log_file = ResolvePath(base_dir, a.audit_log_file());
  }
  if (!a.token_file().empty()) {
    absl::StatusOr<std::string> token = ReadFileToString(ResolvePath(base_dir, a.token_file()));
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin_listener.token_file: ", token.status().message()));
    }
    settings.token = std::string(absl::StripAsciiWhitespace(*token));
    if (settings.token.empty()) {
      return absl::InvalidArgumentError("admin_listener.token_file: the file is empty");
    }
  } else if (settings.tokens == nullptr && !IsLoopbackAddress(settings.address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin_listener.token_file: required (or tokens_file) when the admin listener is not "
        "on loopback (", settings.address, ")"));
  }
  if (a.registry_history_limit() > 0) {
    settings.history_limit = static_cast<int>(std::min<uint32_t>(a.registry_history_limit(),
                                                                 1 << 20));
  }
  if (a.expose_on_public_listeners()) {
    if (settings.token.empty() && settings.tokens == nullptr) {
      return absl::InvalidArgumentError(
          "admin_listener.expose_on_public_listeners: requires token_file or tokens_file (the "
          "public listeners would serve the admin API to anyone)");
    }
    settings.expose_on_public_listeners = true;
  }
  if (!a.registry_directory().empty()) {
    settings.registry_directory = ResolvePath(base_dir, a.registry_directory());
  }
  if (a.registry_redis().empty() && !a.registry_redis_cache_directory().empty()) {
    return absl::InvalidArgumentError(
        "admin_listener.registry_redis_cache_directory: only with registry_redis");
  }
  if (!a.registry_redis().empty()) {
    if (!a.registry_directory().empty()) {
      return absl::InvalidArgumentError(
          "admin_listener.registry_redis: set either registry_directory or registry_redis");
    }
    const std::size_t redis_colon = a.registry_redis().rfind(':');
    uint32_t redis_port = 0;
    if (redis_colon == std::string::npos || redis_colon == 0 ||
        !absl::SimpleAtoi(a.registry_redis().substr(redis_colon + 1), &redis_port) ||
        redis_port == 0 || redis_port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "admin_listener.registry_redis: \"", a.registry_redis(), "\" is not HOST:PORT"));
    }
    settings.registry_redis = a.registry_redis();
    if (!a.registry_redis_cache_directory().empty()) {
      settings.registry_redis_cache_directory =
          ResolvePath(base_dir, a.registry_redis_cache_directory());
    }
    settings.registry_redis_prefix =
        a.registry_redis_prefix().empty() ? kDefaultRedisPrefix : a.registry_redis_prefix();
  }
  return settings;
}

// --- RegistryService ---

RegistryService::RegistryService(std::string token, std::shared_ptr<const AdminTokens> tokens,
                                 std::unique_ptr<AuditLog> audit)
    : token_(std::move(token)), tokens_(std::move(tokens)), audit_(std::move(audit)) {}

void RegistryService::SetTokens(std::string token, std::shared_ptr<const AdminTokens> tokens) {
  absl::MutexLock lock(&tokens_mu_);
  token_ = std::move(token);
  tokens_ = std::move(tokens);
}

grpc::Status RegistryService::Authorize(grpc::ServerContext* context,
                                        AdminCaller* caller) const {
  if (registry_.load() == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the registry is starting");
  }
  std::string token;
  std::shared_ptr<const AdminTokens> tokens;
  {
    absl::MutexLock lock(&tokens_mu_);
    token = token_;
    tokens = tokens_;
  }
  if (token.empty() && tokens == nullptr) {
    caller->owner = "admin";
    caller->admin = true;
    caller->who = "admin (no token required on loopback)";
    return grpc::Status::OK;
  }
  // The challenge of RFC 6750; over REST it becomes the 401's www-authenticate header.
  auto it = context->client_metadata().find("authorization");
  if (it == context->client_metadata().end()) {
    context->AddTrailingMetadata("www-authenticate", "Bearer realm=\"gatewayd-admin\"");
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the admin API requires \"authorization: Bearer <token>\"");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  if (absl::StartsWith(value, "Bearer ")) {
    const absl::string_view presented = value.substr(7);
    if (!token.empty() && SameSecret(presented, token)) {
      caller->owner = "admin";
      caller->admin = true;
      caller->who = absl::StrCat("admin (token_file, sha256:", Sha256Hex(token).substr(0, 8), ")");
      return grpc::Status::OK;
    }
    if (const AdminCaller* known = tokens == nullptr ? nullptr : tokens->Find(presented)) {
      *caller = *known;
      return grpc::Status::OK;
    }
  }
  context->AddTrailingMetadata("www-authenticate",
                               "Bearer realm=\"gatewayd-admin\", error=\"invalid_token\"");
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong admin token");
}

grpc::Status RegistryService::OwnerFor(const AdminCaller& caller, const std::string& requested,
                                       std::string* owner) {
  *owner = requested;
  if (caller.admin) return grpc::Status::OK;
  if (requested.empty()) {
    *owner = caller.owner;
  } else if (requested != caller.owner) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("owner: the token of \"", caller.owner,
                                     "\" may not act as owner \"", requested, "\""));
  }
  return grpc::Status::OK;
}

void RegistryService::Audit(const AdminCaller& caller, const std::string& action,
                            const ServiceVersion& v, const ChangeSummary& changes) const {
  if (audit_ == nullptr) return;
  AuditEntry entry;
  entry.time = absl::Now();
  entry.who = caller.who;
  entry.action = action;
  entry.service = v.service;
  entry.version = v.version;
  entry.owner = v.owner;
  entry.changes = SummaryLine(changes);
  audit_->Write(entry);
}

void RegistryService::SetConfigHandlers(ReloadHandler reload, ConfigHandler config) {
  absl::MutexLock lock(&handlers_mu_);
  reload_ = std::move(reload);
  config_ = std::move(config);
}

grpc::Status RegistryService::Reload(grpc::ServerContext* context,
                                     const admin::v1::ReloadRequest* /*request*/,
                                     admin::v1::ReloadResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  if (!caller.admin) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("Reload needs an admin token; the token of \"", caller.owner,
                                     "\" is a team's"));
  }
  ReloadHandler reload;
  {
    absl::MutexLock lock(&handlers_mu_);
    reload = reload_;
  }
  if (!reload) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this gateway cannot reload its config");
  }
  absl::Status status = reload(response);
  AuditReload(caller.who, status, response->summary());
  if (!status.ok()) return ToGrpc(status);
  return grpc::Status::OK;
}

void RegistryService::AuditReload(const std::string& who, const absl::Status& status,
                                  const std::string& summary) const {
  if (audit_ == nullptr) return;
  audit_->Write(ReloadAuditEntry(absl::Now(), who, status, summary));
}

grpc::Status RegistryService::GetConfig(grpc::ServerContext* context,
                                        const admin::v1::GetConfigRequest* /*request*/,
                                        admin::v1::GetConfigResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  ConfigHandler config;
  {
    absl::MutexLock lock(&handlers_mu_);
    config = config_;
  }
  if (!config) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this gateway does not report its config");
  }
  config(response);
  return grpc::Status::OK;
}

void RegistryService::Fill(const ServiceVersion& v, bool with_descriptor_set,
                           admin::v1::ServiceVersion* out) const {
  out->set_service(v.service);
  out->set_owner(v.owner);
  out->set_backend(v.backend);
  out->set_version(v.version);
  out->set_registered_at_unix_seconds(absl::ToUnixSeconds(v.registered_at));
  out->set_removed(v.removed);
  out->set_changed_by(v.changed_by);
  if (v.backend_config.has_value()) *out->mutable_backend_config() = *v.backend_config;
  if (v.deadlines.rules_size() > 0) *out->mutable_deadlines() = v.deadlines;
  if (v.retries.rules_size() > 0) *out->mutable_retries() = v.retries;
  if (v.auth.rules_size() > 0) *out->mutable_auth() = v.auth;
  if (v.quotas.rules_size() > 0) *out->mutable_quotas() = v.quotas;
  if (with_descriptor_set) out->set_descriptor_set(v.descriptor_set);
  if (!v.removed) {
    auto [methods, routes] = registry_.load()->Counts(v.service);
    out->set_method_count(methods);
    out->set_route_count(routes);
  }
}

grpc::Status RegistryService::Register(grpc::ServerContext* context,
                                       const admin::v1::RegisterRequest* request,
                                       admin::v1::RegisterResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  RegisterRequest r;
  r.service = request->service();
  if (grpc::Status s = OwnerFor(caller, request->owner(), &r.owner); !s.ok()) return s;
  r.changed_by = caller.who;
  r.restricted = !caller.admin;
  r.allowed_packages = caller.packages;
  r.allowed_path_prefixes = caller.path_prefixes;
  r.backend = request->backend();
  if (request->has_backend_config()) r.backend_config = request->backend_config();
  r.deadlines = request->deadlines();
  r.retries = request->retries();
  r.auth = request->auth();
  r.quotas = request->quotas();
  r.descriptor_set = request->descriptor_set();
  r.force = request->force();
  r.dry_run = request->dry_run();
  absl::StatusOr<ChangeResult> result = registry_.load()->Register(r);
  if (!result.ok()) return ToGrpc(result.status());
  if (!result->dry_run && !result->unchanged) {
    Audit(caller, "register", result->version, result->changes);
  }
  Fill(result->version, false, response->mutable_version());
  FillSummary(result->changes, response->mutable_changes());
  response->set_dry_run(result->dry_run);
  response->set_unchanged(result->unchanged);
  for (const std::string& w : result->warnings) response->add_warnings(w);
  return grpc::Status::OK;
}

grpc::Status RegistryService::ListServices(grpc::ServerContext* context,
                                           const admin::v1::ListServicesRequest*,
                                           admin::v1::ListServicesResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  for (const ServiceVersion& v : registry_.load()->List()) Fill(v, false, response->add_services());
  return grpc::Status::OK;
}

grpc::Status RegistryService::GetService(grpc::ServerContext* context,
                                         const admin::v1::GetServiceRequest* request,
                                         admin::v1::ServiceVersion* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  absl::StatusOr<ServiceVersion> v = registry_.load()->Get(request->service());
  if (!v.ok()) return ToGrpc(v.status());
  Fill(*v, request->include_descriptor_set(), response);
  return grpc::Status::OK;
}

grpc::Status RegistryService::RemoveService(grpc::ServerContext* context,
                                            const admin::v1::RemoveServiceRequest* request,
                                            admin::v1::RemoveServiceResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  std::string owner;
  if (grpc::Status s = OwnerFor(caller, request->owner(), &owner); !s.ok()) return s;
  if (owner.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "owner: required");
  }
  absl::StatusOr<ChangeResult> result =
      registry_.load()->Remove(request->service(), owner, request->dry_run(), caller.who);
  if (!result.ok()) return ToGrpc(result.status());
  if (!result->dry_run) Audit(caller, "remove", result->version, result->changes);
  Fill(result->version, false, response->mutable_version());
  FillSummary(result->changes, response->mutable_changes());
  response->set_dry_run(result->dry_run);
  return grpc::Status::OK;
}

grpc::Status RegistryService::ListVersions(grpc::ServerContext* context,
                                           const admin::v1::ListVersionsRequest* request,
                                           admin::v1::ListVersionsResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  absl::StatusOr<std::vector<ServiceVersion>> versions = registry_.load()->Versions(request->service());
  if (!versions.ok()) return ToGrpc(versions.status());
  for (const ServiceVersion& v : *versions) {
    admin::v1::ServiceVersion* out = response->add_versions();
    out->set_service(v.service);
    out->set_owner(v.owner);
    out->set_backend(v.backend);
    out->set_version(v.version);
    out->set_registered_at_unix_seconds(absl::ToUnixSeconds(v.registered_at));
    out->set_removed(v.removed);
    out->set_changed_by(v.changed_by);
    if (v.backend_config.has_value()) *out->mutable_backend_config() = *v.backend_config;
    if (v.deadlines.rules_size() > 0) *out->mutable_deadlines() = v.deadlines;
    if (v.retries.rules_size() > 0) *out->mutable_retries() = v.retries;
    if (v.auth.rules_size() > 0) *out->mutable_auth() = v.auth;
    if (v.quotas.rules_size() > 0) *out->mutable_quotas() = v.quotas;
  }
  return grpc::Status::OK;
}

grpc::Status RegistryService::Rollback(grpc::ServerContext* context,
                                       const admin::v1::RollbackRequest* request,
                                       admin::v1::RegisterResponse* response) {
  AdminCaller caller;
  if (grpc::Status s = Authorize(context, &caller); !s.ok()) return s;
  std::string owner;
  if (grpc::Status s = OwnerFor(caller, request->owner(), &owner); !s.ok()) return s;
  if (owner.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "owner: required");
  }
  absl::StatusOr<ChangeResult> result = registry_.load()->Rollback(
      request->service(), request->to_version(), owner, request->dry_run(), caller.who);
  if (!result.ok()) return ToGrpc(result.status());
  if (!result->dry_run) Audit(caller, "rollback", result->version, result->changes);
  Fill(result->version, false, response->mutable_version());
  FillSummary(result->changes, response->mutable_changes());
  response->set_dry_run(result->dry_run);
  for (const std::string& w : result->warnings) response->add_warnings(w);
  return grpc::Status::OK;
}

// --- AdminServer ---

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const AdminSettings& settings, const GatewayConfig& config, Snapshot<RouteTable>* routes,
    std::vector<std::string>* problems) {
  std::unique_ptr<AdminServer> server(new AdminServer());
  AdminServer* self = server.get();
  // Linked in through the generated messages of both files.
  const google::protobuf::DescriptorPool* generated =
      google::protobuf::DescriptorPool::generated_pool();
  (void)grpc::reflection::v1alpha::ServerReflectionRequest::descriptor();
  (void)admin::v1::RegisterRequest::descriptor();
  const google::protobuf::ServiceDescriptor* admin_api =
      generated->FindServiceByName("gateway.admin.v1.Registry");
  const google::protobuf::ServiceDescriptor* reflection_api =
      generated->FindServiceByName(kReflectionService);
  if (admin_api == nullptr || reflection_api == nullptr) {
    return absl::InternalError("built-in service descriptor missing");
  }
  auto live_routes = [self]() -> std::shared_ptr<const RouteTable> {
    Registry* registry = self->live_registry_.load();
    return registry == nullptr ? nullptr : registry->routes();
  };
  absl::StatusOr<std::unique_ptr<AuditLog>> audit = AuditLog::Open(settings.audit_log_file);
  if (!audit.ok()) return audit.status();
  server->service_ = std::make_unique<RegistryService>(settings.token, settings.tokens,
                                                       *std::move(audit));
  server->reflection_ = std::make_unique<ReflectionService>(
      live_routes, std::vector<const google::protobuf::ServiceDescriptor*>{admin_api});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(settings.address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->reflection_.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("admin_listener.address: cannot listen on ", settings.address));
  }
  // The front ends' reflection: only what they route (the table), on loopback.
  server->public_reflection_ = std::make_unique<ReflectionService>(live_routes);
  int public_reflection_port = 0;
  grpc::ServerBuilder public_builder;
  public_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                                  &public_reflection_port);
  public_builder.RegisterService(server->public_reflection_.get());
  server->public_reflection_server_ = public_builder.BuildAndStart();
  if (server->public_reflection_server_ == nullptr || public_reflection_port == 0) {
    return absl::UnavailableError(
        "admin_listener: cannot listen on 127.0.0.1 for the front ends' server reflection");
  }


  // Routed from the front ends: server reflection always (to the reflection server above),
  // the admin API itself (gRPC and REST, to this admin server, which checks the token) only
  // when the config exposes it.
  std::vector<std::pair<const google::protobuf::ServiceDescriptor*, std::shared_ptr<Backend>>>
      builtin;
  config::v1::Backend reflection_target;
  reflection_target.set_name("gatewayd-reflection");
  reflection_target.set_target(absl::StrCat("ipv4:127.0.0.1:", public_reflection_port));
  absl::StatusOr<std::shared_ptr<Backend>> reflection_backend = Backend::Create(
      reflection_target, config.proto.limits(), config.base_dir, "admin_listener");
  if (!reflection_backend.ok()) return reflection_backend.status();
  builtin.emplace_back(reflection_api, *reflection_backend);
  if (settings.expose_on_public_listeners) {
    std::string host = settings.address.substr(0, settings.address.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
    if (host == "[::]") host = "[::1]";
    config::v1::Backend admin;
    admin.set_name("gatewayd-admin");
    admin.set_target(absl::StrCat(absl::StartsWith(host, "[") ? "ipv6:" : "ipv4:", host, ":",
                                  server->port_));
    absl::StatusOr<std::shared_ptr<Backend>> admin_backend =
        Backend::Create(admin, config.proto.limits(), config.base_dir, "admin_listener");
    if (!admin_backend.ok()) return admin_backend.status();
    builtin.emplace_back(admin_api, *admin_backend);
  }
  server->builtin_ = std::move(builtin);
  absl::StatusOr<BaseRoutes> base = server->BaseOf(config);
  if (!base.ok()) return base.status();

  std::unique_ptr<RegistryStore> store;
  if (!settings.registry_directory.empty()) {
    store = std::make_unique<DirectoryStore>(settings.registry_directory);
  } else if (!settings.registry_redis.empty()) {
    server->redis_status_ = std::make_shared<RedisRegistryStatus>(settings.registry_redis);
    store = std::make_unique<RedisStore>(settings.registry_redis,
                                         settings.registry_redis_prefix,
                                         settings.registry_redis_cache_directory,
                                         server->redis_status_);
  }
  absl::StatusOr<std::unique_ptr<Registry>> registry = Registry::Create(
      *std::move(base), std::move(store),
      [routes](std::shared_ptr<const RouteTable> table) { routes->Publish(std::move(table)); },
      problems, absl::Now, RegistryOptionsFor(settings));
  if (!registry.ok()) return registry.status();
  server->registry_ = *std::move(registry);
  server->live_registry_.store(server->registry_.get());
  server->service_->set_registry(server->registry_.get());
  if (!settings.registry_redis.empty()) {
    Registry* registry = server->registry_.get();
    server->watcher_ = std::make_unique<RedisWatcher>(
        settings.registry_redis, settings.registry_redis_prefix, [registry] {
          std::vector<std::string> reload_problems;
          absl::Status status = registry->Reload(&reload_problems);
          if (!status.ok()) reload_problems.push_back(std::string(status.message()));
          for (const std::string& p : reload_problems) {
            std::fprintf(stderr, "gatewayd: registry: %s\n", p.c_str());
          }
          return status.ok();
        },
        server->redis_status_);
  }
  return server;
}

absl::StatusOr<BaseRoutes> AdminServer::BaseOf(const GatewayConfig& config) const {
  BaseRoutes base;
  for (int i = 0; i < config.proto.descriptor_sets_size(); ++i) {
    const std::string path = ResolvePath(config.base_dir, config.proto.descriptor_sets(i));
    absl::StatusOr<std::string> bytes = ReadFileToString(path);
    if (!bytes.ok()) return bytes.status();
    base.descriptor_sets.push_back({*std::move(bytes), path});
  }
  // Aliases the config's table, which owns the pool.
  base.pool = std::shared_ptr<const google::protobuf::DescriptorPool>(config.routes,
                                                                       &config.routes->pool());
  base.services = config.routes->services();
  for (const std::shared_ptr<Backend>& b : config.backends) base.backends[b->name()] = b;
  base.http_options = config.routes->transcoder().options();
  base.chain = config.routes->shared_chain();
  base.limits = config.proto.limits();
  base.quotas = config.proto.quotas();
  base.base_dir = config.base_dir;
  for (const auto& [service, backend] : builtin_) {
    bool bound = false;
    for (const ServiceBinding& b : base.services) bound |= b.service == service->full_name();
    if (bound) continue;
    base.descriptor_sets.push_back({DescriptorSetOf(service->file()),
                                    absl::StrCat("gatewayd (", service->full_name(), ")"),
                                    /*builtin=*/true});
    base.services.push_back({service->full_name(), backend});
  }
  return base;
}

absl::Status AdminServer::Rebase(const GatewayConfig& config,
                                 std::vector<std::string>* problems) {
  absl::StatusOr<BaseRoutes> base = BaseOf(config);
  if (!base.ok()) return base.status();
  std::optional<AdminSettings> settings;
  if (config.proto.has_admin_listener()) {
    absl::StatusOr<AdminSettings> compiled = CompileAdminListener(config.proto, config.base_dir);
    if (!compiled.ok()) return compiled.status();
    settings = *std::move(compiled);
  }
  absl::Status status = registry_->Rebase(*std::move(base), problems);
  if (status.ok() && settings.has_value()) {
    service_->SetTokens(settings->token, settings->tokens);
  }
  return status;
}

void AdminServer::SetConfigHandlers(RegistryService::ReloadHandler reload,
                                    RegistryService::ConfigHandler config) {
  service_->SetConfigHandlers(std::move(reload), std::move(config));
}

void AdminServer::AuditReload(const std::string& who, const absl::Status& status,
                              const std::string& summary) const {
  service_->AuditReload(who, status, summary);
}

RedisRegistryStatus::Report AdminServer::Readiness() const {
  if (redis_status_ == nullptr) return {};
  return redis_status_->Get();
}

void AdminServer::Shutdown() {
  watcher_.reset();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_.reset();
  }
  if (public_reflection_server_ != nullptr) {
    public_reflection_server_->Shutdown(std::chrono::system_clock::now() +
                                        std::chrono::seconds(1));
    public_reflection_server_.reset();
  }
}

AdminServer::~AdminServer() { Shutdown(); }

}  // namespace gateway::registry
