// ConfigReloader: reads the gateway's config file again, compiles it as at start, and swaps
// it in; and the pieces of a reload that can be tested alone (what needs a restart, the
// config shown to operators).
//
// A reload (SIGHUP, or the admin API's Reload) goes through these steps and stops at the
// first failure with nothing changed:
//   1. the file is read and parsed (LoadConfigFile);
//   2. it is compiled completely (CompileConfig: every file it names is read again:
//      descriptor sets, JWKS and API-key files, TLS files) and checked by the caller's own
//      start-time checks (`validate`), so the error is the one gatewayd gives at start;
//   3. `apply` swaps it in (publishes the route table; calls in flight keep the table,
//      backends and interceptors they started with).
// Keys that only a restart applies (listener addresses, thread counts, ...) are named in
// the result and the log line and otherwise ignored: the running servers keep their value.
//
// Thread-safety: ConfigReloader is thread-safe; reloads are serialized.
//
// Example:
//   ConfigReloader reloader(path, config, metrics, apply, validate);
//   absl::StatusOr<ConfigReloader::Result> r = reloader.Reload();  // logs one line

#ifndef GATEWAY_RELOAD_H_
#define GATEWAY_RELOAD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/gateway_config.h"

namespace gateway {
namespace metrics {
class MetricRegistry;
}  // namespace metrics

// The config keys (e.g. "grpc_listener.address", "runtime.worker_threads",
// "http_listener.cors") that differ between `before` and `after` and that a reload does not
// apply, sorted, each once. What a reload applies: descriptor_sets, backends, services,
// auth, quotas, retries, deadlines (but deadlines.http_timeout_header),
// http_listener.transcoding, and http_listener.tls and grpc_listener.tls when
// `http_tls_reloads` (the listeners take new certificates for new connections) and both
// configs have TLS on that listener.
std::vector<std::string> RestartRequired(const config::v1::Config& before,
                                         const config::v1::Config& after,
                                         bool http_tls_reloads);

// `config` as JSON (proto field names), with secret values replaced by "<redacted>": any
// string field whose name holds "token", "secret", "password" or "credential" (but not a
// *_file, *_path or *_header field, which names where the secret is), and the user
// information of URIs ("https://user:pass@host/" -> "https://<redacted>@host/").
std::string RedactedConfigJson(const config::v1::Config& config);

class ConfigReloader {
 public:
  // Swaps a compiled config in; returns an error when it cannot (nothing changed then).
  // Appends what it left out (registered services that no longer validate) to `problems`.
  using Apply = std::function<absl::Status(const std::shared_ptr<const GatewayConfig>& config,
                                           std::vector<std::string>* problems)>;
  // The start-time checks that are not part of CompileConfig (server credentials, admin
  // and metrics listeners); an error is reported like CompileConfig's.
  using Validate = std::function<absl::Status(const GatewayConfig& config)>;

  struct Result {
    // "reload applied: 3 services (was 2), 2 backends (was 1), 4 rules (was 4)", then
    // "; these changes need a restart: grpc_listener.address" when some do.
    std::string summary;
    std::vector<std::string> restart_required;
    std::vector<std::string> problems;
  };

  // `initial` is the config gatewayd started with (read from `path`). When `metrics` is
  // not null, the new config's parts count in it, and the reload metrics are registered
  // there (gateway_config_reloads_total{result}, gateway_config_last_reload_success_
  // timestamp_seconds); it must outlive this object.
  ConfigReloader(std::string path, std::shared_ptr<const GatewayConfig> initial,
                 metrics::MetricRegistry* metrics, Apply apply, Validate validate,
                 bool http_tls_reloads);

  // Reads, compiles, validates and applies the config file; logs one line ("reload applied:
  // ..." or "reload refused: ..."). Errors (the old config keeps serving):
  // INVALID_ARGUMENT "reload refused: invalid config PATH: <the error at start>" ("reload
  // refused: invalid config: <the loader's error>" when the file does not parse), or the
  // error `apply` returned, prefixed the same way.
  absl::StatusOr<Result> Reload();

  // The config being served, and when it was loaded.
  std::shared_ptr<const GatewayConfig> current() const;
  absl::Time loaded_at() const;

  struct Stats {
    int64_t applied = 0;
    int64_t refused = 0;
    // InfinitePast before the first applied reload.
    absl::Time last_success = absl::InfinitePast();
  };
  Stats stats() const;

 private:
  absl::StatusOr<Result> ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const std::string path_;
  metrics::MetricRegistry* const metrics_;
  const Apply apply_;
  const Validate validate_;
  const bool http_tls_reloads_;

  absl::Mutex reload_mu_;  // serializes reloads; taken before mu_
  mutable absl::Mutex mu_;
  std::shared_ptr<const GatewayConfig> current_ ABSL_GUARDED_BY(mu_);
  absl::Time loaded_at_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway

#endif  // GATEWAY_RELOAD_H_
