// The admin side of the registry: gateway.admin.v1.Registry served over gRPC on the admin
// listener, and the wiring that gives a running gateway its Registry.
//
// The admin listener is loopback by default. Bound to any other address it requires a
// bearer token (config `admin_listener.token_file`, an admin, and/or the digests of
// `admin_listener.tokens_file`, each bound to an owner and a role: admin_tokens.h); when a
// token is configured every call must carry `authorization: Bearer <token>`, or fails with
// UNAUTHENTICATED (with a `www-authenticate: Bearer realm="gatewayd-admin"` challenge in
// the trailing metadata). A team token may register only as its owner, in its packages and
// under its path prefixes, change only its own services and never Reload
// (PERMISSION_DENIED naming what it lacks). Every change is written to the audit log
// (audit_log.h) and its version records who made it.
//
// The public front ends route server reflection to a reflection-only server of their own
// (loopback, ephemeral port) that lists what they serve; the admin API is routed there only
// with `admin_listener.expose_on_public_listeners` (the token is still required).
//
// Thread-safety: RegistryService is thread-safe (the Registry serializes changes);
// AdminServer is started and shut down from one thread.
//
// Example (gatewayd's main):
//   absl::StatusOr<AdminSettings> settings = CompileAdminListener(config.proto, base_dir);
//   absl::StatusOr<std::unique_ptr<AdminServer>> admin =
//       AdminServer::Start(*settings, config, &route_snapshot, &problems);
//   ...
//   (*admin)->Shutdown();

#ifndef GATEWAY_REGISTRY_ADMIN_SERVICE_H_
#define GATEWAY_REGISTRY_ADMIN_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/admin/v1/registry.grpc.pb.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/gateway_config.h"
#include "gateway/registry/admin_tokens.h"
#include "gateway/registry/audit_log.h"
#include "gateway/registry/redis_store.h"
#include "gateway/registry/reflection_service.h"
#include "gateway/registry/registry.h"
#include "gateway/snapshot.h"
#include "grpcpp/server.h"

namespace gateway::registry {

// The admin listener's effective settings.
struct AdminSettings {
  std::string address;             // HOST:PORT
  std::string token;               // empty: no token required (loopback only)
  std::string registry_directory;  // empty: not persisted in a directory
  std::string registry_redis;      // HOST:PORT; empty: no shared registry
  std::string registry_redis_prefix;
  bool expose_on_public_listeners = false;  // route the admin API from the front ends
  std::string registry_redis_cache_directory;  // empty: no cache of the Redis registry
  int history_limit = kDefaultHistoryLimit;  // versions kept per service
  std::shared_ptr<const AdminTokens> tokens;  // from tokens_file; null: none
  std::string audit_log_file;                 // empty: the process log
};

// The default admin address.
inline constexpr char kDefaultAdminAddress[] = "127.0.0.1:9901";

// Validates `config.admin_listener` (which must be set). Returns INVALID_ARGUMENT naming
// the key: a malformed address, a non-loopback address without token_file or tokens_file,
// an unreadable or empty token file, an unreadable or invalid tokens file (AdminTokens),
// expose_on_public_listeners without a token. Relative paths are resolved against
// `base_dir`.
absl::StatusOr<AdminSettings> CompileAdminListener(const config::v1::Config& config,
                                                   const std::string& base_dir);

// True for 127.0.0.0/8, ::1, "localhost" and unix sockets.
bool IsLoopbackAddress(const std::string& address);

// gateway.admin.v1.Registry over a Registry.
class RegistryService final : public admin::v1::Registry::Service {
 public:
  // `registry` must outlive the service; until set_registry() is called every call fails
  // with UNAVAILABLE. `token` (may be empty) is an admin's; `tokens` (may be null) the
  // owners' tokens; with neither, every caller is an admin (loopback only). `audit` (may
  // be null: no audit) receives one entry per change.
  RegistryService(std::string token, std::shared_ptr<const AdminTokens> tokens,
                  std::unique_ptr<AuditLog> audit);

  // Replaces the tokens (a reload); calls already authorized finish with the old ones.
  void SetTokens(std::string token, std::shared_ptr<const AdminTokens> tokens);

  void set_registry(Registry* registry) { registry_.store(registry); }

  // What Reload and GetConfig do (gatewayd's config reloader). A ReloadHandler fills the
  // response and returns OK, or returns the refusal; it may be called from any thread.
  // Until set, both calls fail with UNIMPLEMENTED.
  using ReloadHandler = std::function<absl::Status(admin::v1::ReloadResponse*)>;
  using ConfigHandler = std::function<void(admin::v1::GetConfigResponse*)>;
  void SetConfigHandlers(ReloadHandler reload, ConfigHandler config);

  // Writes the audit line of a config reload made outside the admin API (SIGHUP: `who` is
  // "signal"): its result and summary, or the reason it was refused. The admin API's
  // Reload writes its own, with the token's owner, applied or refused.
  void AuditReload(const std::string& who, const absl::Status& status,
                   const std::string& summary) const;

  grpc::Status Register(grpc::ServerContext* context, const admin::v1::RegisterRequest* request,
                        admin::v1::RegisterResponse* response) override;
  grpc::Status ListServices(grpc::ServerContext* context,
                            const admin::v1::ListServicesRequest* request,
                            admin::v1::ListServicesResponse* response) override;
  grpc::Status GetService(grpc::ServerContext* context,
                          const admin::v1::GetServiceRequest* request,
                          admin::v1::ServiceVersion* response) override;
  grpc::Status RemoveService(grpc::ServerContext* context,
                             const admin::v1::RemoveServiceRequest* request,
                             admin::v1::RemoveServiceResponse* response) override;
  grpc::Status ListVersions(grpc::ServerContext* context,
                            const admin::v1::ListVersionsRequest* request,
                            admin::v1::ListVersionsResponse* response) override;
  grpc::Status Rollback(grpc::ServerContext* context, const admin::v1::RollbackRequest* request,
                        admin::v1::RegisterResponse* response) override;
  grpc::Status Reload(grpc::ServerContext* context, const admin::v1::ReloadRequest* request,
                      admin::v1::ReloadResponse* response) override;
  grpc::Status GetConfig(grpc::ServerContext* context,
                         const admin::v1::GetConfigRequest* request,
                         admin::v1::GetConfigResponse* response) override;

 private:
  // OK with the caller in `*caller`, or UNAVAILABLE while starting, or UNAUTHENTICATED
  // (adding the www-authenticate challenge to `context`'s trailing metadata).
  grpc::Status Authorize(grpc::ServerContext* context, AdminCaller* caller) const;
  // The owner a change is made as: `requested`, or the team token's own when empty.
  // PERMISSION_DENIED when a team token names another owner.
  static grpc::Status OwnerFor(const AdminCaller& caller, const std::string& requested,
                               std::string* owner);
  void Audit(const AdminCaller& caller, const std::string& action, const ServiceVersion& v,
             const ChangeSummary& changes) const;
  void Fill(const ServiceVersion& v, bool with_descriptor_set, admin::v1::ServiceVersion* out) const;

  std::atomic<Registry*> registry_{nullptr};
  mutable absl::Mutex tokens_mu_;
  std::string token_ ABSL_GUARDED_BY(tokens_mu_);
  std::shared_ptr<const AdminTokens> tokens_ ABSL_GUARDED_BY(tokens_mu_);
  const std::unique_ptr<AuditLog> audit_;
  absl::Mutex handlers_mu_;
  ReloadHandler reload_ ABSL_GUARDED_BY(handlers_mu_);
  ConfigHandler config_ ABSL_GUARDED_BY(handlers_mu_);
};

// The registry of a running gateway and the admin gRPC server in front of it.
class AdminServer {
 public:
  // Starts the admin gRPC server on settings.address (the admin API and server
  // reflection listing the served services and the admin API) and the front ends'
  // reflection server (loopback, ephemeral port), builds the registry over the config's
  // services (restoring the registry store, if any) plus
  // grpc.reflection.v1alpha.ServerReflection routed to the reflection server (and, with
  // expose_on_public_listeners, gateway.admin.v1.Registry routed to the admin server), and
  // publishes the complete route table into `routes`. Problems met while restoring
  // (skipped files, services that no longer validate) are appended to `problems`. Returns
  // UNAVAILABLE when an address cannot be bound, or the registry's error.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(const AdminSettings& settings,
                                                            const GatewayConfig& config,
                                                            Snapshot<RouteTable>* routes,
                                                            std::vector<std::string>* problems);

  ~AdminServer();

  int port() const { return port_; }
  Registry& registry() { return *registry_; }

  // The registry's part of /readyz (thread-safe): ready with an empty detail unless the
  // registry is shared through Redis and Redis does not answer (see RedisRegistryStatus).
  RedisRegistryStatus::Report Readiness() const;

  // Serves the services, backends and interceptor chain of a reloaded `config` (with the
  // registered services over them) and publishes the complete table, and takes the admin
  // tokens of its admin_listener (token_file, tokens_file, read again). Registered services
  // that no longer validate are left out and named in `problems`. Returns the error of a
  // descriptor set that cannot be read or of the config's own services (nothing changed).
  absl::Status Rebase(const GatewayConfig& config, std::vector<std::string>* problems);

  // Gives the admin API's Reload and GetConfig their work (see RegistryService).
  void SetConfigHandlers(RegistryService::ReloadHandler reload,
                         RegistryService::ConfigHandler config);

  // See RegistryService::AuditReload.
  void AuditReload(const std::string& who, const absl::Status& status,
                   const std::string& summary) const;

  // Stops the admin server (calls in flight are cancelled after a short grace).
  void Shutdown();

 private:
  AdminServer() = default;
  // The config's part of every table plus the gateway's own services (builtin_).
  absl::StatusOr<BaseRoutes> BaseOf(const GatewayConfig& config) const;

  // The gateway's own services routed from the front ends, and their backends.
  std::vector<std::pair<const google::protobuf::ServiceDescriptor*, std::shared_ptr<Backend>>>
      builtin_;

  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RedisWatcher> watcher_;  // with registry_redis; declared after registry_
  std::shared_ptr<RedisRegistryStatus> redis_status_;  // with registry_redis
  std::unique_ptr<RegistryService> service_;
  std::unique_ptr<ReflectionService> reflection_;         // on the admin listener
  std::unique_ptr<ReflectionService> public_reflection_;  // routed from the front ends
  std::unique_ptr<grpc::Server> public_reflection_server_;
  std::atomic<Registry*> live_registry_{nullptr};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_ADMIN_SERVICE_H_
