// gatewayd: the gateway process. Wires the parts together; holds no logic of its own.
//
//   gatewayd --config=PATH [--check-config]
//   gatewayd --version

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/access_log/access_log.h"
#include "gateway/tracing/exporter.h"
#include "gateway/tracing/tracer.h"
#include "gateway/config/config_loader.h"
#include "gateway/gateway_config.h"
#include "gateway/log.h"
#include "gateway/http/http_server.h"
#include "gateway/metrics/metrics.h"
#include "gateway/metrics_listener/metrics_listener.h"
#include "gateway/registry/admin_service.h"
#include "gateway/reload.h"
#include "gateway/snapshot.h"
#include "gateway/upstream_metrics.h"

namespace gateway {
namespace {

// The version: printed by --version, logged at start and reported by gateway_build_info.
constexpr char kVersion[] = "0.1.0";

constexpr char kUsage[] =
    "usage: gatewayd --config=PATH [--check-config] | --version\n"
    "  --config=PATH    the gateway config (YAML or JSON; see docs/config.md)\n"
    "  --check-config   validate the config (and every file it names), then exit:\n"
    "                   0 when it is valid, 2 with the problem otherwise\n"
    "  --version        print the version (\"gatewayd VERSION\") and exit\n";

// --- metrics: the process, the served route table and the registry, read at each scrape ---
void AddProcessMetrics(metrics::MetricRegistry& m, absl::Time started,
                       const Snapshot<RouteTable>* routes) {
  m.AddGauge("gateway_build_info", "Always 1; the labels name the build.", {"version"})
      .Get({kVersion})
      ->Set(1);
  m.AddGauge("gateway_start_time_seconds", "When gatewayd started, in Unix seconds.")
      .Get({})
      ->Set(absl::ToDoubleSeconds(started - absl::UnixEpoch()));
  m.AddCallback("gateway_route_table_services", "Services in the route table being served.",
                metrics::Type::kGauge, {}, [routes] {
                  return std::vector<metrics::Sample>{
                      {{}, static_cast<double>(routes->Load()->services().size())}};
                });
  m.AddCallback("gateway_route_table_methods", "Methods in the route table being served.",
                metrics::Type::kGauge, {}, [routes] {
                  return std::vector<metrics::Sample>{
                      {{}, static_cast<double>(routes->Load()->size())}};
                });
}

void AddRegistryMetrics(metrics::MetricRegistry& m, const registry::Registry* r) {
  m.AddCallback("gateway_registry_changes_total",
                "Changes applied by the descriptor registry, by operation (register, remove, "
                "rollback); dry runs and refused changes are not counted.",
                metrics::Type::kCounter, {"operation"}, [r] {
                  const registry::Registry::Stats s = r->stats();
                  return std::vector<metrics::Sample>{
                      {{"register"}, static_cast<double>(s.registered)},
                      {{"remove"}, static_cast<double>(s.removed)},
                      {{"rollback"}, static_cast<double>(s.rolled_back)}};
                });
  m.AddCallback("gateway_registry_swaps_total",
                "Route tables published by the registry (at start, on reloads and changes).",
                metrics::Type::kCounter, {}, [r] {
                  return std::vector<metrics::Sample>{
                      {{}, static_cast<double>(r->stats().swaps)}};
                });
  m.AddCallback("gateway_registry_last_swap_duration_seconds",
                "How long the last route table took to build, persist and publish.",
                metrics::Type::kGauge, {}, [r] {
                  return std::vector<metrics::Sample>{
                      {{}, absl::ToDoubleSeconds(r->stats().last_swap_duration)}};
                });
  m.AddCallback("gateway_registry_last_swap_timestamp_seconds",
                "When the last route table was published, in Unix seconds.",
                metrics::Type::kGauge, {}, [r] {
                  return std::vector<metrics::Sample>{
                      {{}, absl::ToDoubleSeconds(r->stats().last_swap - absl::UnixEpoch())}};
                });
}

// The listen address with the bound port in place of port 0.
std::string BoundAddress(const std::string& address, int port) {
  if (absl::StartsWith(address, "unix:")) return address;
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
}

int Run(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--config=")) {
      config_path = std::string(arg.substr(9));
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--version") {
      std::cout << "gatewayd " << kVersion << "\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "gatewayd: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << "gatewayd: --config=PATH is required\n" << kUsage;
    return 2;
  }

  // Signals are taken by sigwait() below, never by a handler on a worker thread: block them
  // before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // logrotate and `systemctl reload` send it; see below
  sigaddset(&signals, SIGUSR1);  // reopens the access log file (after a rotation)
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const absl::Time started = absl::Now();
  absl::StatusOr<config::v1::Config> proto = LoadConfigFile(config_path);
  if (!proto.ok()) {
    std::cerr << "gatewayd: invalid config: " << proto.status().message() << "\n";
    return 2;
  }
  // --- metrics: collected only when they are served ---
  std::unique_ptr<metrics::MetricRegistry> metric_registry;
  absl::StatusOr<MetricsListener::Options> metrics_options = MetricsListener::Options();
  if (proto->has_metrics_listener()) {
    metrics_options = CompileMetricsListener(proto->metrics_listener());
    if (!metrics_options.ok()) {
      std::cerr << "gatewayd: invalid config " << config_path << ": "
                << metrics_options.status().message() << "\n";
      return 2;
    }
    metric_registry = std::make_unique<metrics::MetricRegistry>();
  }
  // --- end metrics ---
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
      CompileConfig(*proto, DirName(config_path), metric_registry.get());
  if (!config.ok()) {
    std::cerr << "gatewayd: invalid config " << config_path << ": "
              << config.status().message() << "\n";
    return 2;
  }
  // --- admin listener (descriptor registry), validated with the rest of the config ---
  absl::StatusOr<registry::AdminSettings> admin_settings = registry::AdminSettings();
  if ((*config)->proto.has_admin_listener()) {
    admin_settings = registry::CompileAdminListener((*config)->proto, (*config)->base_dir);
    if (!admin_settings.ok()) {
      std::cerr << "gatewayd: invalid config " << config_path << ": "
                << admin_settings.status().message() << "\n";
      return 2;
    }
  }
  // --- end admin listener ---
  const RouteTable& routes = *(*config)->routes;
  if (check_only) {
    std::cout << "gatewayd: config " << config_path << " is valid: "
              << routes.services().size() << " services, " << routes.size()
              << " methods, " << (*config)->backends.size() << " backends\n";
    return 0;
  }

  ConfigureLogging((*config)->logging);
  LogLine(absl::StrCat("gatewayd ", kVersion, " starting (config ", config_path, ")"));
  Snapshot<RouteTable> route_snapshot((*config)->routes);
  std::shared_ptr<UpstreamMetricsTargets> upstream_metrics;
  if (metric_registry != nullptr) {
    AddProcessMetrics(*metric_registry, started, &route_snapshot);
    upstream_metrics = AddUpstreamMetrics(*metric_registry, (*config)->backends);
  }
  // The OpenAPI documents are generated on the endpoint's own thread for every published
  // table (config reloads, registry changes), never on an event loop. The upstream metrics
  // also describe the backends a published table serves besides the config's (those that
  // registrations define).
  std::shared_ptr<const openapi::OpenApiEndpoint> docs = (*config)->http.openapi;
  if (docs != nullptr || upstream_metrics != nullptr) {
    route_snapshot.SetListener(
        [docs, upstream_metrics](const std::shared_ptr<const RouteTable>& table) {
          if (docs != nullptr) docs->Prepare(table);
          if (upstream_metrics != nullptr && table != nullptr) {
            std::vector<std::shared_ptr<Backend>> served;
            for (const ServiceBinding& b : table->services()) {
              // Not the gateway's own services behind the relay (server reflection, the
              // admin API: backends "gatewayd-reflection", "gatewayd-admin").
              if (b.backend != nullptr && !absl::StartsWith(b.backend->name(), "gatewayd-")) {
                served.push_back(b.backend);
              }
            }
            upstream_metrics->SetExtra(served);
          }
        });
  }
  if (docs != nullptr) docs->Prepare((*config)->routes);

  // --- access log: on unless access_log.enabled is false; outlives the front ends ---
  std::unique_ptr<access_log::AccessLog> access_log;
  if ((*config)->access_log_enabled) {
    absl::StatusOr<std::unique_ptr<access_log::AccessLog>> log =
        access_log::AccessLog::Start((*config)->access_log);
    if (!log.ok()) {
      std::cerr << "gatewayd: invalid config " << config_path << ": " << log.status().message()
                << "\n";
      return 2;
    }
    access_log = *std::move(log);
    if (metric_registry != nullptr) {
      metric_registry->AddCallback(
          "gateway_access_log_dropped_total",
          "Access log lines dropped because the writer's queue was full.",
          metrics::Type::kCounter, {}, [log = access_log.get()] {
            return std::vector<metrics::Sample>{{{}, static_cast<double>(log->dropped())}};
          });
    }
  }
  // --- end access log ---

  // --- tracing: spans exported to tracing.collector_url; outlives the front ends ---
  std::unique_ptr<tracing::SpanExporter> span_exporter;
  std::unique_ptr<tracing::Tracer> tracer;
  if ((*config)->tracing_enabled) {
    tracing::SpanExporter::Options export_options = (*config)->tracing_export;
    export_options.identity.version = kVersion;
    absl::StatusOr<std::unique_ptr<tracing::SpanExporter>> exporter =
        tracing::SpanExporter::Start(export_options);
    if (!exporter.ok()) {
      std::cerr << "gatewayd: invalid config " << config_path << ": tracing: "
                << exporter.status().message() << "\n";
      return 2;
    }
    span_exporter = *std::move(exporter);
    tracer = std::make_unique<tracing::Tracer>(
        tracing::Tracer::Options{(*config)->tracing_sample_ratio}, span_exporter.get());
    if (metric_registry != nullptr) {
      metric_registry->AddCallback(
          "gateway_tracing_spans_dropped_total",
          "Spans dropped: the exporter's queue was full or the collector did not take them.",
          metrics::Type::kCounter, {}, [e = span_exporter.get()] {
            return std::vector<metrics::Sample>{{{}, static_cast<double>(e->dropped())}};
          });
    }
    LogInfo("tracing: exporting spans", {{"collector", export_options.collector_url}});
  }
  // --- end tracing ---

  // --- admin listener: the registry publishes complete route tables into route_snapshot
  // (restoring its directory first, so the front ends start with the registered services).
  // Every table holds the config's interceptor chain, with its rules resolved for the
  // registered services too. ---
  std::unique_ptr<registry::AdminServer> admin_server;
  if ((*config)->proto.has_admin_listener()) {
    std::vector<std::string> problems;
    absl::StatusOr<std::unique_ptr<registry::AdminServer>> admin =
        registry::AdminServer::Start(*admin_settings, **config, &route_snapshot, &problems);
    for (const std::string& problem : problems) LogLine(absl::StrCat("registry: ", problem));
    if (!admin.ok()) {
      std::cerr << "gatewayd: admin_listener: " << admin.status().message() << "\n";
      return 1;
    }
    admin_server = *std::move(admin);
    if (metric_registry != nullptr) {
      AddRegistryMetrics(*metric_registry, &admin_server->registry());
    }
  }
  // --- end admin listener ---
  // --- front ends: the gRPC and HTTP listeners are the same server (every protocol on
  // either port), each with its own address and settings ---
  auto server_options = [&](const GatewayConfig::Http& h, const char* thread_name) {
    http::HttpServer::Options o;
    o.address = h.address;
    o.thread_name = thread_name;
    o.busy_poll = (*config)->busy_poll;
    o.tls_cert_file = h.tls_cert_file;
    o.tls_key_file = h.tls_key_file;
    o.tls_client_ca_file = h.tls_client_ca_file;
    o.metrics = metric_registry.get();
    o.access_log = access_log.get();
    o.tracer = tracer.get();
    o.generate_request_id = (*config)->generate_request_id;
    o.cors = h.cors;
    o.openapi = h.openapi;
    o.worker_threads = h.worker_threads;
    o.max_body_bytes = h.max_body_bytes;
    o.max_header_bytes = h.max_header_bytes;
    o.max_header_count = h.max_header_count;
    o.max_concurrent_streams = h.max_concurrent_streams;
    o.header_read_timeout = h.header_read_timeout;
    o.idle_timeout = h.idle_timeout;
    o.allow_encoded_slashes = h.allow_encoded_slashes;
    o.forwarded_request_headers = h.forwarded_request_headers;
    o.exposed_response_metadata = h.exposed_response_metadata;
    if (admin_settings->expose_on_public_listeners) {
      // The admin API's 401 carries its challenge (RegistryService adds it).
      o.exposed_response_metadata.push_back("www-authenticate");
    }
    o.default_deadline = h.default_deadline;
    o.timeout_header = h.timeout_header;
    if (admin_server != nullptr) {
      // A registry shared through Redis says when Redis is down and which state is served.
      o.readiness = [admin = admin_server.get()](bool* ready, std::string* detail) {
        const registry::RedisRegistryStatus::Report r = admin->Readiness();
        if (!r.ready) *ready = false;
        if (!r.detail.empty()) absl::StrAppend(detail, r.detail, "\n");
      };
    }
    return o;
  };
  std::unique_ptr<http::HttpServer> grpc_server;
  if ((*config)->has_grpc) {
    const GatewayConfig::Http& g = (*config)->grpc;
    absl::StatusOr<std::unique_ptr<http::HttpServer>> started =
        http::HttpServer::Start(server_options(g, "gw-grpc"), &route_snapshot);
    if (!started.ok()) {
      std::cerr << "gatewayd: grpc_listener: " << started.status().message() << "\n";
      return 1;
    }
    grpc_server = *std::move(started);
    LogLine(absl::StrCat("grpc listening on ", BoundAddress(g.address, grpc_server->port()),
                         g.tls_cert_file.empty() ? " (h2c, " : " (TLS, ", routes.size(),
                         " methods of ", routes.services().size(), " services, ",
                         g.worker_threads, " workers)"));
  }
  std::unique_ptr<http::HttpServer> http_server;
  if ((*config)->has_http) {
    const GatewayConfig::Http& h = (*config)->http;
    // The first document is ready before the listener opens (a 503 otherwise).
    if (h.openapi != nullptr &&
        !h.openapi->WaitReady(nullptr, absl::Seconds(30))) {
      LogLine("openapi: the first document is not ready after 30s; it is served once it is");
    }
    absl::StatusOr<std::unique_ptr<http::HttpServer>> started =
        http::HttpServer::Start(server_options(h, "gw-http"), &route_snapshot);
    if (!started.ok()) {
      std::cerr << "gatewayd: http_listener: " << started.status().message() << "\n";
      if (grpc_server != nullptr) grpc_server->Shutdown(absl::ZeroDuration());
      return 1;
    }
    http_server = *std::move(started);
    LogLine(absl::StrCat("http listening on ", BoundAddress(h.address, http_server->port()),
                     h.tls_cert_file.empty() ? " (h2c, " : " (TLS, ",
                     (*config)->routes->transcoder().routes().plans().size(), " HTTP routes, ",
                     h.worker_threads, " workers)"));
  }
  // --- end HTTP front end ---

  // --- config reload (SIGHUP, admin Reload): a new compiled config's route table, built
  // over the registered services when there is a registry, is published like a registry
  // change; the running servers keep their listeners and options. ---
  ConfigReloader::Apply apply_config =
      [&route_snapshot, admin = admin_server.get(), http = http_server.get(),
       grpc = grpc_server.get(), upstream_metrics,
       http_tls = (*config)->has_http && !(*config)->http.tls_cert_file.empty(),
       grpc_tls = (*config)->has_grpc && !(*config)->grpc.tls_cert_file.empty()](
          const std::shared_ptr<const GatewayConfig>& next,
          std::vector<std::string>* problems) -> absl::Status {
    // The listeners' certificates first: the files are read again (a rotation keeps their
    // names), and a failure leaves everything as it was (both files are checked before
    // either server takes its new context).
    const bool http_rotates = http != nullptr && http_tls && next->has_http &&
                              !next->http.tls_cert_file.empty();
    const bool grpc_rotates = grpc != nullptr && grpc_tls && next->has_grpc &&
                              !next->grpc.tls_cert_file.empty();
    if (grpc_rotates) {
      if (absl::Status usable = http::HttpServer::CheckTls(
              next->grpc.tls_cert_file, next->grpc.tls_key_file, next->grpc.tls_client_ca_file);
          !usable.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("grpc_listener.tls: ", usable.message()));
      }
    }
    if (http_rotates) {
      absl::Status tls = http->ReplaceTls(next->http.tls_cert_file, next->http.tls_key_file,
                                          next->http.tls_client_ca_file);
      if (!tls.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("http_listener.tls: ", tls.message()));
      }
    }
    if (grpc_rotates) {
      absl::Status tls = grpc->ReplaceTls(next->grpc.tls_cert_file, next->grpc.tls_key_file,
                                          next->grpc.tls_client_ca_file);
      if (!tls.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("grpc_listener.tls: ", tls.message()));
      }
    }
    if (admin != nullptr) {
      if (absl::Status rebased = admin->Rebase(*next, problems); !rebased.ok()) return rebased;
    } else {
      route_snapshot.Publish(next->routes);
    }
    // The upstream metrics follow the new backends' clusters.
    if (upstream_metrics != nullptr) upstream_metrics->Set(next->backends);
    return absl::OkStatus();
  };
  ConfigReloader::Validate validate_config = [](const GatewayConfig& next) -> absl::Status {
    if (next.proto.has_admin_listener()) {
      absl::StatusOr<registry::AdminSettings> admin =
          registry::CompileAdminListener(next.proto, next.base_dir);
      if (!admin.ok()) return admin.status();
    }
    if (next.proto.has_metrics_listener()) {
      absl::StatusOr<MetricsListener::Options> m =
          CompileMetricsListener(next.proto.metrics_listener());
      if (!m.ok()) return m.status();
    }
    return absl::OkStatus();
  };
  ConfigReloader reloader(config_path, *config, metric_registry.get(), std::move(apply_config),
                          std::move(validate_config),
                          /*http_tls_reloads=*/true);
  if (admin_server != nullptr) {
    admin_server->SetConfigHandlers(
        [&reloader](admin::v1::ReloadResponse* response) -> absl::Status {
          absl::StatusOr<ConfigReloader::Result> r = reloader.Reload();
          if (!r.ok()) return r.status();
          response->set_summary(r->summary);
          for (const std::string& k : r->restart_required) response->add_restart_required(k);
          for (const std::string& p : r->problems) response->add_problems(p);
          return absl::OkStatus();
        },
        [&reloader, config_path](admin::v1::GetConfigResponse* response) {
          response->set_config_path(config_path);
          response->set_config_json(RedactedConfigJson(reloader.current()->proto));
          response->set_loaded_at_unix_seconds(absl::ToUnixSeconds(reloader.loaded_at()));
        });
  }
  // --- end config reload ---
  if (admin_server != nullptr) {
    LogLine(absl::StrCat("admin listening on ",
                     BoundAddress(admin_settings->address, admin_server->port()), " (",
                     admin_server->registry().List().size(), " registered services)"));
    if (admin_settings->expose_on_public_listeners) {
      LogLine("admin API also routed on the public listeners (the token is required there "
              "too)");
    }
  }

  // --- metrics listener (optional) ---
  std::unique_ptr<MetricsListener> metrics_listener;
  if (metric_registry != nullptr) {
    absl::StatusOr<std::unique_ptr<MetricsListener>> listener = MetricsListener::Start(
        *metrics_options, [m = metric_registry.get()] { return m->Render(); });
    if (!listener.ok()) {
      std::cerr << "gatewayd: metrics_listener: " << listener.status().message() << "\n";
      if (http_server != nullptr) http_server->Shutdown(absl::ZeroDuration());
      if (admin_server != nullptr) admin_server->Shutdown();
      if (grpc_server != nullptr) grpc_server->Shutdown(absl::ZeroDuration());
      return 1;
    }
    metrics_listener = *std::move(listener);
    LogLine(absl::StrCat("metrics listening on ",
                         BoundAddress(metrics_options->address, metrics_listener->port()),
                         " (GET /metrics)"));
    if (!registry::IsLoopbackAddress(metrics_options->address)) {
      LogWarn(absl::StrCat("warning: the metrics listener is not on loopback (",
                           metrics_options->address,
                           "): whoever reaches it reads every called method's name and counts"));
    }
  }
  // --- end metrics listener ---

  // SIGHUP reloads the config (the result is logged; a refused config changes nothing).
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0 || signal_number == SIGHUP ||
         signal_number == SIGUSR1) {
    if (signal_number == SIGUSR1 && access_log != nullptr) access_log->Reopen();
    if (signal_number == SIGHUP) {
      LogLine("SIGHUP received: reloading " + config_path);
      absl::StatusOr<ConfigReloader::Result> reloaded = reloader.Reload();  // logs its result
      if (admin_server != nullptr) {
        admin_server->AuditReload("signal", reloaded.status(),
                                  reloaded.ok() ? reloaded->summary : "");
      }
    }
    signal_number = 0;
  }
  LogLine(absl::StrCat("received ", signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
                   "; draining calls for up to ", absl::FormatDuration((*config)->shutdown_grace)));
  const absl::Time drain_deadline = absl::Now() + (*config)->shutdown_grace;
  if (metrics_listener != nullptr) metrics_listener->Shutdown();
  if (admin_server != nullptr) admin_server->Shutdown();
  // Both listeners drain at once: each stops accepting and closes its idle connections
  // first, then waits for its calls in flight.
  std::thread grpc_drain([&] {
    if (grpc_server != nullptr) grpc_server->Shutdown((*config)->shutdown_grace);
  });
  if (http_server != nullptr) {
    http_server->Shutdown(std::max(absl::ZeroDuration(), drain_deadline - absl::Now()));
  }
  grpc_drain.join();
  LogLine("stopped");
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) {
  // Debian's Abseil checks every mutex acquisition for lock-order cycles unless told not
  // to; that costs CPU on every call (see docs/architecture.md). Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return gateway::Run(argc, argv);
}
