#include "gateway/gateway_config.h"

#include <unistd.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/clock.h"
#include "gateway/descriptor_sets.h"
#include "gateway/interceptors/chain_builder.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/openapi/openapi_config.h"

namespace gateway {
namespace {

constexpr int kDefaultMaxConcurrentStreams = 1000;
constexpr int kMaxWorkerThreads = 256;
constexpr absl::Duration kDefaultShutdownGrace = absl::Seconds(10);
// A loop that polls longer than this between calls spends a core on nothing.
constexpr absl::Duration kMaxBusyPoll = absl::Milliseconds(10);

absl::Status Invalid(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

// Accepts "HOST:PORT", "[IPv6]:PORT" and "unix:/path".
absl::Status CheckListenAddress(const std::string& address, absl::string_view key) {
  if (address.empty()) return Invalid(key, "required (e.g. 127.0.0.1:9090)");
  if (absl::StartsWith(address, "unix:")) {
    if (address.size() == 5) return Invalid(key, "unix: needs a socket path");
    return absl::OkStatus();
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Invalid(key, absl::StrCat("\"", address, "\" is not HOST:PORT"));
  }
  uint32_t port;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return Invalid(key, absl::StrCat("\"", address, "\" has no valid port (0-65535)"));
  }
  return absl::OkStatus();
}

// Accepts the target URIs both gRPC C++ and the gateway's own upstream resolve, or a bare
// HOST:PORT.
absl::Status CheckTarget(const std::string& target, absl::string_view key) {
  static constexpr absl::string_view kSchemes[] = {"dns:", "ipv4:", "ipv6:", "unix:"};
  for (absl::string_view scheme : kSchemes) {
    if (absl::StartsWith(target, scheme)) {
      if (target.size() == scheme.size()) {
        return Invalid(key, absl::StrCat("\"", target, "\" names no address"));
      }
      return absl::OkStatus();
    }
  }
  if (target.find("://") != std::string::npos) {
    return Invalid(key, absl::StrCat("\"", target,
                                     "\": unsupported scheme (use dns:, ipv4:, ipv6:, unix: "
                                     "or HOST:PORT)"));
  }
  return CheckListenAddress(target, key);
}

// --- http_listener ---

absl::Duration DurationOf(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Headers that never become gRPC metadata, whatever the config says: those of HTTP and of
// gRPC itself, and binary ones (the metadata policy, gateway/metadata/metadata_policy.h;
// headers the gateway owns are checked once the interceptor chain is built).
bool IsReservedHttpHeader(absl::string_view name) {
  return metadata::IsProtocolHeader(name) || metadata::IsBinaryKey(name);
}

bool IsTokenName(absl::string_view name) { return metadata::IsValidKey(name); }

absl::Status CompileHttpListener(const config::v1::HttpListener& h, int cores,
                                 const std::string& base_dir, GatewayConfig::Http* out) {
  absl::Status status = CheckListenAddress(h.address(), "http_listener.address");
  if (!status.ok()) return status;
  if (absl::StartsWith(h.address(), "unix:")) {
    return Invalid("http_listener.address", "unix sockets are not supported (use HOST:PORT)");
  }
  out->address = h.address();
  out->worker_threads = h.worker_threads() == 0 ? cores : h.worker_threads();
  if (out->worker_threads > kMaxWorkerThreads) {
    return Invalid("http_listener.worker_threads", absl::StrCat("at most ", kMaxWorkerThreads));
  }
  const config::v1::HttpLimits& l = h.limits();
  out->max_body_bytes = l.max_body_bytes() == 0 ? 4 << 20 : l.max_body_bytes();
  out->max_header_bytes = l.max_header_bytes() == 0 ? 16 << 10 : l.max_header_bytes();
  if (out->max_header_bytes < 256) {
    return Invalid("http_listener.limits.max_header_bytes", "must be at least 256");
  }
  out->max_header_count = l.max_header_count() == 0 ? 100 : l.max_header_count();
  out->max_concurrent_streams =
      l.max_concurrent_streams() == 0 ? 100 : l.max_concurrent_streams();
  out->header_read_timeout =
      l.has_header_read_timeout() ? DurationOf(l.header_read_timeout()) : absl::Seconds(10);
  out->idle_timeout = l.has_idle_timeout() ? DurationOf(l.idle_timeout()) : absl::Seconds(60);
  if (out->header_read_timeout <= absl::ZeroDuration()) {
    return Invalid("http_listener.limits.header_read_timeout", "must be positive");
  }
  if (out->idle_timeout <= absl::ZeroDuration()) {
    return Invalid("http_listener.limits.idle_timeout", "must be positive");
  }
  out->allow_encoded_slashes = l.allow_encoded_slashes();
  for (int i = 0; i < h.forwarded_request_headers_size(); ++i) {
    const std::string key = absl::StrCat("http_listener.forwarded_request_headers[", i, "]");
    std::string name = absl::AsciiStrToLower(h.forwarded_request_headers(i));
    if (!IsTokenName(name)) {
      return Invalid(key, absl::StrCat("\"", name, "\" is not a header name"));
    }
    if (IsReservedHttpHeader(name) || absl::EndsWith(name, "-bin")) {
      return Invalid(key, absl::StrCat("\"", name, "\" is reserved and cannot be forwarded"));
    }
    out->forwarded_request_headers.push_back(std::move(name));
  }
  for (int i = 0; i < h.exposed_response_metadata_size(); ++i) {
    const std::string key = absl::StrCat("http_listener.exposed_response_metadata[", i, "]");
    std::string name = absl::AsciiStrToLower(h.exposed_response_metadata(i));
    if (!IsTokenName(name)) {
      return Invalid(key, absl::StrCat("\"", name, "\" is not a metadata name"));
    }
    if (IsReservedHttpHeader(name) || absl::EndsWith(name, "-bin")) {
      return Invalid(key, absl::StrCat("\"", name, "\" is reserved and cannot be exposed"));
    }
    out->exposed_response_metadata.push_back(std::move(name));
  }
  if (h.has_default_deadline()) {
    out->default_deadline = DurationOf(h.default_deadline());
    if (out->default_deadline <= absl::ZeroDuration()) {
      return Invalid("http_listener.default_deadline", "must be positive");
    }
  }
  if (h.has_tls()) {
    if (h.tls().cert_file().empty()) return Invalid("http_listener.tls.cert_file", "required");
    if (h.tls().key_file().empty()) return Invalid("http_listener.tls.key_file", "required");
    out->tls_cert_file = ResolvePath(base_dir, h.tls().cert_file());
    out->tls_key_file = ResolvePath(base_dir, h.tls().key_file());
    if (!h.tls().client_ca_file().empty()) {
      out->tls_client_ca_file = ResolvePath(base_dir, h.tls().client_ca_file());
    }
    for (const auto& [key, path] : {std::pair<const char*, const std::string*>{
                                        "http_listener.tls.cert_file", &out->tls_cert_file},
                                    {"http_listener.tls.key_file", &out->tls_key_file},
                                    {"http_listener.tls.client_ca_file",
                                     &out->tls_client_ca_file}}) {
      if (path->empty()) continue;
      if (::access(path->c_str(), R_OK) != 0) {
        return Invalid(key, absl::StrCat("cannot read ", *path));
      }
    }
  }
  if (h.has_cors()) {
    const config::v1::HttpCors& c = h.cors();
    http::CorsOptions cors;
    cors.allowed_origins.assign(c.allowed_origins().begin(), c.allowed_origins().end());
    cors.allowed_origin_patterns.assign(c.allowed_origin_patterns().begin(),
                                        c.allowed_origin_patterns().end());
    cors.allowed_methods.assign(c.allowed_methods().begin(), c.allowed_methods().end());
    cors.allowed_headers.assign(c.allowed_headers().begin(), c.allowed_headers().end());
    cors.exposed_headers.assign(c.exposed_headers().begin(), c.exposed_headers().end());
    if (c.has_max_age()) cors.max_age = DurationOf(c.max_age());
    cors.allow_credentials = c.allow_credentials();
    if (cors.allowed_origins.empty() && cors.allowed_origin_patterns.empty()) {
      return Invalid("http_listener.cors",
                     "allowed_origins or allowed_origin_patterns is required");
    }
    absl::StatusOr<std::shared_ptr<const http::CorsPolicy>> policy =
        http::CorsPolicy::Create(cors);
    if (!policy.ok()) return Invalid("http_listener.cors", policy.status().message());
    out->cors = *std::move(policy);
  }
  if (h.transcoding().max_json_depth() > 1000) {
    return Invalid("http_listener.transcoding.max_json_depth", "at most 1000");
  }
  return absl::OkStatus();
}

// The grpc_listener's server settings: the HTTP listener's (or the defaults) with the gRPC
// listener's own address, TLS, stream limit and worker count.
absl::Status CompileGrpcListener(const config::v1::Config& proto, const GatewayConfig& config,
                                 const std::string& base_dir, GatewayConfig::Http* out) {
  const config::v1::GrpcListener& g = proto.grpc_listener();
  if (config.has_http) {
    *out = config.http;
  } else {
    config::v1::HttpListener defaults;
    defaults.set_address(g.address());
    if (absl::Status status = CompileHttpListener(defaults, 1, base_dir, out); !status.ok()) {
      return status;
    }
  }
  out->address = g.address();
  out->worker_threads = config.worker_threads;
  out->max_concurrent_streams = config.max_concurrent_streams;
  // gRPC metadata is held to limits.max_metadata_bytes (with its own clear error): the
  // header block limit leaves room for it.
  out->max_header_bytes = std::max<uint32_t>(out->max_header_bytes, 64 << 10);
  out->tls_cert_file.clear();
  out->tls_key_file.clear();
  out->tls_client_ca_file.clear();
  if (g.has_tls()) {
    out->tls_cert_file = ResolvePath(base_dir, g.tls().cert_file());
    out->tls_key_file = ResolvePath(base_dir, g.tls().key_file());
    if (!g.tls().client_ca_file().empty()) {
      out->tls_client_ca_file = ResolvePath(base_dir, g.tls().client_ca_file());
    }
    for (const auto& [key, path] : {std::pair<const char*, const std::string*>{
                                        "grpc_listener.tls.cert_file", &out->tls_cert_file},
                                    {"grpc_listener.tls.key_file", &out->tls_key_file},
                                    {"grpc_listener.tls.client_ca_file",
                                     &out->tls_client_ca_file}}) {
      if (path->empty()) continue;
      if (::access(path->c_str(), R_OK) != 0) {
        return Invalid(key, absl::StrCat("cannot read ", *path));
      }
    }
  }
  return absl::OkStatus();
}

transcoder::TranscoderOptions HttpTranscoderOptions(const config::v1::HttpListener& h) {
  transcoder::TranscoderOptions options;
  const config::v1::HttpTranscoding& t = h.transcoding();
  options.response.emit_default_values = t.emit_default_values();
  options.response.use_proto_field_names = t.use_proto_field_names();
  options.response.enums_as_ints = t.enums_as_ints();
  options.request.reject_unknown_query_parameters = t.reject_unknown_query_parameters();
  options.request.ignore_unknown_json_fields = t.ignore_unknown_json_fields();
  if (t.max_json_depth() != 0) options.request.max_json_depth = t.max_json_depth();
  options.routes.expose_grpc_paths = t.expose_grpc_paths();
  switch (t.stream_format()) {
    case config::v1::HttpTranscoding::NDJSON:
      options.default_stream_format = transcoder::StreamFormat::kNdjson;
      break;
    case config::v1::HttpTranscoding::SERVER_SENT_EVENTS:
      options.default_stream_format = transcoder::StreamFormat::kServerSentEvents;
      break;
    default:
      options.default_stream_format = transcoder::StreamFormat::kJsonArray;
      break;
  }
  return options;
}

// access_log: defaults applied, path resolved.
absl::Status CompileAccessLog(const config::v1::AccessLog& a, const std::string& base_dir,
                              GatewayConfig* out) {
  out->access_log_enabled = !a.has_enabled() || a.enabled();
  out->generate_request_id = !a.has_generate_request_id() || a.generate_request_id();
  access_log::AccessLog::Options& o = out->access_log;
  o.format = a.format() == config::v1::AccessLog::JSON ? access_log::Format::kJson
                                                       : access_log::Format::kText;
  for (int i = 0; i < a.fields_size(); ++i) {
    // The config's numbers are the Field values plus one (FIELD_UNSPECIFIED is 0).
    const int n = a.fields(i);
    if (n < 1 || n > access_log::kFieldCount) {
      return Invalid(absl::StrCat("access_log.fields[", i, "]"), "unknown field");
    }
    o.fields.push_back(static_cast<access_log::Field>(n - 1));
  }
  if (!a.path().empty()) o.path = ResolvePath(base_dir, a.path());
  if (a.has_sample_rate()) {
    if (!(a.sample_rate() >= 0 && a.sample_rate() <= 1)) {
      return Invalid("access_log.sample_rate",
                     absl::StrCat("must be between 0 and 1, got ", a.sample_rate()));
    }
    o.sample_rate = a.sample_rate();
  }
  o.sample_errors = a.sample_errors();
  if (a.queue_size() != 0) {
    if (a.queue_size() > (1u << 20)) {
      return Invalid("access_log.queue_size", "at most 1048576");
    }
    o.queue_size = a.queue_size();
  }
  return absl::OkStatus();
}

// logging: format and level.
LogOptions CompileLogging(const config::v1::Logging& l) {
  LogOptions o;
  o.format = l.format() == config::v1::Logging::JSON ? LogFormat::kJson : LogFormat::kText;
  switch (l.level()) {
    case config::v1::Logging::DEBUG: o.level = LogLevel::kDebug; break;
    case config::v1::Logging::WARN: o.level = LogLevel::kWarn; break;
    case config::v1::Logging::ERROR: o.level = LogLevel::kError; break;
    default: o.level = LogLevel::kInfo; break;
  }
  return o;
}

// tracing: defaults applied, the collector URL checked.
absl::Status CompileTracing(const config::v1::Config& proto, GatewayConfig* out) {
  if (!proto.has_tracing()) return absl::OkStatus();
  const config::v1::Tracing& t = proto.tracing();
  out->tracing_enabled = !t.has_enabled() || t.enabled();
  if (!out->tracing_enabled) return absl::OkStatus();
  if (t.collector_url().empty()) {
    return Invalid("tracing.collector_url", "required (e.g. http://127.0.0.1:4318)");
  }
  if (absl::StatusOr<tracing::CollectorUrl> url = tracing::ParseCollectorUrl(t.collector_url());
      !url.ok()) {
    return Invalid("tracing.collector_url", url.status().message());
  }
  tracing::SpanExporter::Options& o = out->tracing_export;
  o.collector_url = t.collector_url();
  if (t.has_sample_ratio()) {
    if (!(t.sample_ratio() >= 0 && t.sample_ratio() <= 1)) {
      return Invalid("tracing.sample_ratio",
                     absl::StrCat("must be between 0 and 1, got ", t.sample_ratio()));
    }
    out->tracing_sample_ratio = t.sample_ratio();
  }
  if (!t.service_name().empty()) o.identity.service_name = t.service_name();
  if (t.max_queue_size() != 0) {
    if (t.max_queue_size() > (1u << 20)) {
      return Invalid("tracing.max_queue_size", "at most 1048576");
    }
    o.max_queue = t.max_queue_size();
  }
  if (t.max_batch_size() != 0) o.max_batch = t.max_batch_size();
  if (o.max_batch > o.max_queue) {
    return Invalid("tracing.max_batch_size",
                   absl::StrCat("at most max_queue_size (", o.max_queue, ")"));
  }
  if (t.has_export_interval()) {
    o.interval = DurationOf(t.export_interval());
    if (o.interval < absl::Milliseconds(1)) {
      return Invalid("tracing.export_interval", "must be at least 1ms");
    }
  }
  if (t.has_export_timeout()) {
    o.timeout = DurationOf(t.export_timeout());
    if (o.timeout < absl::Milliseconds(1)) {
      return Invalid("tracing.export_timeout", "must be at least 1ms");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DirName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<std::shared_ptr<Backend>> CompileBackend(const config::v1::Backend& b,
                                                        const config::v1::Limits& limits,
                                                        const std::string& base_dir,
                                                        const std::string& key,
                                                        const std::shared_ptr<Backend>& reuse) {
  if (b.name().empty()) return Invalid(absl::StrCat(key, ".name"), "required");
  if (b.target().empty()) {
    return Invalid(absl::StrCat(key, ".target"),
                   "required (e.g. dns:///127.0.0.1:50051 or unix:/path)");
  }
  if (absl::Status status = CheckTarget(b.target(), absl::StrCat(key, ".target"));
      !status.ok()) {
    return status;
  }
  if (reuse != nullptr && reuse->name() == b.name()) {
    absl::StatusOr<std::string> fingerprint = Backend::Fingerprint(b, limits, base_dir);
    if (fingerprint.ok() && *fingerprint == reuse->fingerprint()) return reuse;
  }
  return Backend::Create(b, limits, base_dir, key);
}

absl::StatusOr<std::shared_ptr<const GatewayConfig>> CompileConfig(
    const config::v1::Config& proto, const std::string& base_dir,
    metrics::MetricRegistry* metrics, const GatewayConfig* previous) {
  auto config = std::make_shared<GatewayConfig>();
  config->proto = proto;
  config->base_dir = base_dir;

  // Listeners: grpc_listener, http_listener, or both (each serves every protocol).
  if (!proto.has_grpc_listener() && !proto.has_http_listener()) {
    return Invalid("grpc_listener",
                   "required unless there is an http_listener (either port serves gRPC, "
                   "gRPC-Web and REST)");
  }
  absl::Status status;
  if (proto.has_grpc_listener()) {
    status = CheckListenAddress(proto.grpc_listener().address(), "grpc_listener.address");
    if (!status.ok()) return status;
    if (absl::StartsWith(proto.grpc_listener().address(), "unix:")) {
      return Invalid("grpc_listener.address", "unix sockets are not supported (use HOST:PORT)");
    }
    if (proto.grpc_listener().has_tls()) {
      const auto& tls = proto.grpc_listener().tls();
      if (tls.cert_file().empty()) return Invalid("grpc_listener.tls.cert_file", "required");
      if (tls.key_file().empty()) return Invalid("grpc_listener.tls.key_file", "required");
    }
  }
  config->max_concurrent_streams = proto.grpc_listener().max_concurrent_streams() == 0
                                       ? kDefaultMaxConcurrentStreams
                                       : proto.grpc_listener().max_concurrent_streams();

  if (absl::Status logged = CompileAccessLog(proto.access_log(), base_dir, config.get());
      !logged.ok()) {
    return logged;
  }
  config->logging = CompileLogging(proto.logging());
  if (absl::Status traced = CompileTracing(proto, config.get()); !traced.ok()) return traced;

  // Limits and runtime.
  config->max_message_bytes = MaxMessageBytes(proto.limits());
  if (proto.limits().max_message_bytes() != 0 && proto.limits().max_message_bytes() < 1024) {
    return Invalid("limits.max_message_bytes", "must be at least 1024");
  }
  if (proto.limits().max_metadata_bytes() != 0 && proto.limits().max_metadata_bytes() < 1024) {
    return Invalid("limits.max_metadata_bytes", "must be at least 1024");
  }
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  config->worker_threads =
      proto.runtime().worker_threads() == 0 ? cores : proto.runtime().worker_threads();
  if (config->worker_threads > kMaxWorkerThreads) {
    return Invalid("runtime.worker_threads", absl::StrCat("at most ", kMaxWorkerThreads));
  }
  config->shutdown_grace = kDefaultShutdownGrace;
  if (proto.runtime().has_shutdown_grace()) {
    config->shutdown_grace = absl::Seconds(proto.runtime().shutdown_grace().seconds()) +
                             absl::Nanoseconds(proto.runtime().shutdown_grace().nanos());
  }
  config->busy_poll = DurationOf(proto.runtime().busy_poll());
  if (config->busy_poll > kMaxBusyPoll) {
    return Invalid("runtime.busy_poll",
                   absl::StrCat("at most ", absl::FormatDuration(kMaxBusyPoll)));
  }

  // Descriptor sets. With an admin listener the gateway may start with nothing of its own
  // and serve what is registered at run time; without one it would have nothing to serve.
  const bool registers_at_run_time = proto.has_admin_listener();
  if (proto.descriptor_sets().empty() && !registers_at_run_time) {
    return Invalid("descriptor_sets",
                   "required: at least one FileDescriptorSet file (protoc --include_imports "
                   "--descriptor_set_out=FILE); without one and without an admin_listener "
                   "the gateway has nothing to serve (add the files of your services here, "
                   "or an admin_listener to serve services registered at run time)");
  }
  DescriptorSetBuilder descriptors;
  for (int i = 0; i < proto.descriptor_sets_size(); ++i) {
    const std::string key = absl::StrCat("descriptor_sets[", i, "]");
    if (proto.descriptor_sets(i).empty()) return Invalid(key, "empty file name");
    status = descriptors.AddFile(ResolvePath(base_dir, proto.descriptor_sets(i)));
    if (!status.ok()) return Invalid(key, status.message());
  }
  absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> pool =
      descriptors.Build();
  if (!pool.ok()) return Invalid("descriptor_sets", pool.status().message());

  // Backends.
  absl::flat_hash_map<std::string, std::shared_ptr<Backend>> backends;
  for (int i = 0; i < proto.backends_size(); ++i) {
    const std::string key = absl::StrCat("backends[", i, "]");
    const config::v1::Backend& b = proto.backends(i);
    if (b.name().empty()) return Invalid(absl::StrCat(key, ".name"), "required");
    if (backends.contains(b.name())) {
      return Invalid(absl::StrCat(key, ".name"),
                     absl::StrCat("duplicate backend name \"", b.name(), "\""));
    }
    // A backend the previous config had, unchanged (same entry, limits and TLS files), is
    // kept: its connections, health and outlier state live on.
    std::shared_ptr<Backend> reuse;
    if (previous != nullptr) {
      for (const std::shared_ptr<Backend>& old : previous->backends) {
        if (old->name() == b.name()) reuse = old;
      }
    }
    absl::StatusOr<std::shared_ptr<Backend>> backend =
        CompileBackend(b, proto.limits(), base_dir, key, reuse);
    if (!backend.ok()) return backend.status();
    config->backends.push_back(*backend);
    backends.emplace(b.name(), *std::move(backend));
  }

  // Services.
  if (proto.services().empty() && !registers_at_run_time) {
    return Invalid("services",
                   "required: at least one {name, backend} entry; without one and without an "
                   "admin_listener the gateway has nothing to serve (add services, or an "
                   "admin_listener to serve services registered at run time)");
  }
  std::vector<ServiceBinding> bindings;
  absl::flat_hash_set<std::string> bound;
  for (int i = 0; i < proto.services_size(); ++i) {
    const std::string key = absl::StrCat("services[", i, "]");
    const config::v1::ServiceRoute& s = proto.services(i);
    if (s.name().empty()) return Invalid(absl::StrCat(key, ".name"), "required");
    if (s.backend().empty()) return Invalid(absl::StrCat(key, ".backend"), "required");
    if (!bound.insert(s.name()).second) {
      return Invalid(absl::StrCat(key, ".name"),
                     absl::StrCat("service \"", s.name(), "\" is listed twice"));
    }
    auto backend = backends.find(s.backend());
    if (backend == backends.end()) {
      std::vector<std::string> known;
      for (const auto& b : proto.backends()) known.push_back(b.name());
      return Invalid(absl::StrCat(key, ".backend"),
                     absl::StrCat("unknown backend \"", s.backend(), "\" (known: ",
                                  known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
    }
    if ((*pool)->FindServiceByName(s.name()) == nullptr) {
      return Invalid(absl::StrCat(key, ".name"),
                     absl::StrCat("service \"", s.name(),
                                  "\" is not defined in the descriptor sets"));
    }
    bindings.push_back({s.name(), backend->second});
  }
  // The header REST and gRPC-Web clients may give their timeout in, on either listener.
  std::string timeout_header = GatewayConfig::Http().timeout_header;
  if (!proto.deadlines().http_timeout_header().empty()) {
    timeout_header = absl::AsciiStrToLower(proto.deadlines().http_timeout_header());
    if (!IsTokenName(timeout_header) || IsReservedHttpHeader(timeout_header)) {
      return Invalid("deadlines.http_timeout_header",
                     absl::StrCat("\"", timeout_header,
                                  "\" is not a header name the gateway can read "
                                  "(reserved names such as grpc-timeout are refused)"));
    }
  }
  // HTTP front end (optional).
  if (proto.has_http_listener()) {
    status = CompileHttpListener(proto.http_listener(), cores, base_dir, &config->http);
    if (!status.ok()) return status;
    config->http.timeout_header = timeout_header;
    absl::StatusOr<openapi::OpenApiSettings> openapi = openapi::OpenApiSettingsFromConfig(proto);
    if (!openapi.ok()) return openapi.status();
    if (openapi->enabled) {
      status = openapi::LoadDocsPage(proto, base_dir, &*openapi);
      if (!status.ok()) return status;
      config->http.openapi = std::make_shared<const openapi::OpenApiEndpoint>(*std::move(openapi));
    }
    config->has_http = true;
  }
  if (proto.has_grpc_listener()) {
    status = CompileGrpcListener(proto, *config, base_dir, &config->grpc);
    if (!status.ok()) return status;
    config->grpc.timeout_header = timeout_header;
    config->has_grpc = true;
  }
  // Interceptors (auth, quotas, deadlines), checked against the served methods; the route
  // table resolves their rules per method.
  std::vector<std::string> service_names;
  for (const ServiceBinding& binding : bindings) service_names.push_back(binding.service);
  absl::StatusOr<std::shared_ptr<const InterceptorChain>> chain =
      BuildInterceptorChain(proto, base_dir, **pool, service_names, RealClock(), metrics);
  if (!chain.ok()) return chain.status();
  config->chain = *std::move(chain);
  // A header the gateway sets itself (a JWT provider's forward_payload_header) is never
  // taken from a client, so it cannot be listed as one to forward.
  for (std::size_t i = 0; i < config->http.forwarded_request_headers.size(); ++i) {
    const std::string& name = config->http.forwarded_request_headers[i];
    if (config->chain->metadata_policy().IsOwned(name)) {
      return Invalid(absl::StrCat("http_listener.forwarded_request_headers[", i, "]"),
                     absl::StrCat("\"", name,
                                  "\" is set by the gateway (auth.jwt_providers[]."
                                  "forward_payload_header) and cannot be forwarded from clients"));
    }
  }

  absl::StatusOr<std::shared_ptr<const RouteTable>> routes =
      RouteTable::Create(*std::move(pool), std::move(bindings),
                         HttpTranscoderOptions(proto.http_listener()), config->chain);
  if (!routes.ok()) return Invalid("services", routes.status().message());
  config->routes = *std::move(routes);
  return std::shared_ptr<const GatewayConfig>(std::move(config));
}

}  // namespace gateway
