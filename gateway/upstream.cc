#include "gateway/upstream.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/config/config_loader.h"
#include "gateway/log.h"
#include "gateway/metadata/metadata_policy.h"
#include "google/protobuf/duration.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace gateway {
namespace {

constexpr int kDefaultMaxMessageBytes = 16 * 1024 * 1024;

absl::StatusOr<std::string> ReadTlsFile(const std::string& base_dir, const std::string& file,
                                        const std::string& key_path) {
  absl::StatusOr<std::string> pem = ReadFileToString(ResolvePath(base_dir, file));
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, ": cannot read: ", pem.status().message()));
  }
  return pem;
}

}  // namespace

size_t MaxMetadataBytes(const config::v1::Limits& limits) {
  return limits.max_metadata_bytes() == 0 ? metadata::kDefaultMaxMetadataBytes
                                          : limits.max_metadata_bytes();
}

int MaxMessageBytes(const config::v1::Limits& limits) {
  if (limits.max_message_bytes() == 0) return kDefaultMaxMessageBytes;
  return static_cast<int>(std::min<uint32_t>(limits.max_message_bytes(), INT32_MAX));
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || absl::StartsWith(path, "/")) return path;
  return absl::StrCat(base_dir, "/", path);
}

std::string DescribeTransportFailure(absl::string_view core_message) {
  const std::string m = absl::AsciiStrToLower(core_message);
  auto has = [&m](absl::string_view word) { return absl::StrContains(m, word); };
  // Most specific first: a TLS failure reads "failed to connect to all addresses; last
  // error: ...: Ssl handshake failed: ...".
  if (has("dns resolution") || has("name resolution") || has("resolver") ||
      has("domain name not found")) {
    return "name resolution failed";
  }
  if (has("handshake") || has("ssl") || has("tls") || has("certificate") || has("alpn")) {
    return "TLS handshake failed";
  }
  if (has("failed to connect") || has("connection refused") || has("connect failed")) {
    return "failed to connect";
  }
  if (has("socket closed") || has("connection reset") || has("broken pipe") ||
      has("goaway") || has("rst_stream") || has("stream removed") || has("keepalive") ||
      has("end of tcp stream") || has("endpoint read failed") || has("eof")) {
    return "connection lost";
  }
  return "transport failure";
}

absl::Status Backend::UpstreamClientStatus(const upstream::CallResult& result,
                                           absl::string_view method) const {
  const absl::Status& status = result.status;
  if (status.ok()) return status;
  for (const auto& [key, value] : result.trailers) {
    if (key == "grpc-status") return status;  // the backend's own answer
  }
  // The cluster's own failures ('backend "NAME": what') name no address.
  const std::string prefix = absl::StrCat("backend \"", name_, "\": ");
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      if (absl::StartsWith(status.message(), prefix)) return status;
      return absl::DeadlineExceededError(
          absl::StrCat("backend \"", name_, "\" did not answer before the call's deadline"));
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return status;
    default:
      break;
  }
  if (absl::StartsWith(status.message(), prefix)) {
    if (status.code() != absl::StatusCode::kUnavailable) return status;
    return absl::UnavailableError(absl::StrCat("backend \"", name_, "\" is unavailable: ",
                                               status.message().substr(prefix.size())));
  }
  const std::string what = DescribeTransportFailure(status.message());
  LogFailure(method, what, status.code(), status.message());
  return absl::Status(status.code(),
                      status.code() == absl::StatusCode::kUnavailable
                          ? absl::StrCat("backend \"", name_, "\" is unavailable: ", what)
                          : absl::StrCat("backend \"", name_, "\" failed: ", what));
}

void Backend::LogFailure(absl::string_view method, absl::string_view what,
                         absl::StatusCode code, absl::string_view text) const {
  const int64_t now = absl::ToUnixNanos(absl::Now());
  int64_t last = last_log_ns_.load(std::memory_order_relaxed);
  if (now - last >= 1'000'000'000 &&
      last_log_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    const int64_t left_out = unlogged_.exchange(0, std::memory_order_relaxed);
    LogLine(absl::StrCat("backend \"", name_, "\" (target ", target_, "): ", method, ": ",
                         what, ": ", absl::StatusCodeToString(code), ": ", text,
                         left_out > 0 ? absl::StrCat(" (", left_out,
                                                     " more such failures not logged)")
                                      : ""));
  } else {
    unlogged_.fetch_add(1, std::memory_order_relaxed);
  }
}

absl::StatusOr<std::string> Backend::Fingerprint(const config::v1::Backend& config,
                                                 const config::v1::Limits& limits,
                                                 const std::string& base_dir) {
  std::string out = absl::StrCat(config.ByteSizeLong(), ":", config.SerializeAsString(), "|",
                                 MaxMessageBytes(limits), "|", MaxMetadataBytes(limits), "|",
                                 base_dir.size(), ":", base_dir);
  if (config.has_tls()) {
    for (const std::string* file :
         {&config.tls().ca_file(), &config.tls().cert_file(), &config.tls().key_file()}) {
      if (file->empty()) {
        out += "|-";
        continue;
      }
      absl::StatusOr<std::string> pem = ReadTlsFile(base_dir, *file, "tls");
      if (!pem.ok()) return pem.status();
      absl::StrAppend(&out, "|", pem->size(), ":", *pem);
    }
  }
  return out;
}

Backend::Backend(std::string name, std::string target, size_t max_metadata_bytes)
    : name_(std::move(name)), target_(std::move(target)), max_metadata_bytes_(max_metadata_bytes) {}

const std::shared_ptr<grpc::Channel>& Backend::channel() const {
  absl::call_once(channel_once_, [this] {
    channel_ = grpc::CreateCustomChannel(target_, channel_credentials_, channel_args_);
  });
  return channel_;
}

absl::StatusOr<std::shared_ptr<Backend>> Backend::Create(const config::v1::Backend& config,
                                                         const config::v1::Limits& limits,
                                                         const std::string& base_dir,
                                                         const std::string& path) {
  if (config.name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".name: required"));
  }
  if (config.target().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ".target: required (a gRPC target such as dns:///host:port or unix:/path)"));
  }

  grpc::ChannelArguments args;
  const int max_bytes = MaxMessageBytes(limits);
  args.SetMaxReceiveMessageSize(max_bytes);
  args.SetMaxSendMessageSize(max_bytes);
  args.SetLoadBalancingPolicyName(
      config.load_balancing() == config::v1::Backend::PICK_FIRST ? "pick_first"
                                                                  : "round_robin");
  // The channel only asks the backend a few questions (reflection, health): no retries, no
  // BDP probing, no channelz.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // A channel of its own per backend, not shared with other channels of the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);

  absl::StatusOr<upstream::ClusterOptions> cluster_options =
      ClusterOptionsFor(config, limits, path);
  if (!cluster_options.ok()) return cluster_options.status();

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (config.has_tls()) {
    const config::v1::ClientTls& tls = config.tls();
    grpc::SslCredentialsOptions options;
    if (!tls.ca_file().empty()) {
      absl::StatusOr<std::string> pem =
          ReadTlsFile(base_dir, tls.ca_file(), absl::StrCat(path, ".tls.ca_file"));
      if (!pem.ok()) return pem.status();
      options.pem_root_certs = *std::move(pem);
      cluster_options->connection.tls.ca_pem = options.pem_root_certs;
    }
    if (tls.cert_file().empty() != tls.key_file().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".tls: cert_file and key_file go together (both for mutual TLS, or neither)"));
    }
    if (!tls.cert_file().empty()) {
      absl::StatusOr<std::string> cert =
          ReadTlsFile(base_dir, tls.cert_file(), absl::StrCat(path, ".tls.cert_file"));
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadTlsFile(base_dir, tls.key_file(), absl::StrCat(path, ".tls.key_file"));
      if (!key.ok()) return key.status();
      options.pem_cert_chain = *std::move(cert);
      options.pem_private_key = *std::move(key);
      cluster_options->connection.tls.cert_chain_pem = options.pem_cert_chain;
      cluster_options->connection.tls.private_key_pem = options.pem_private_key;
    }
    if (!tls.server_name().empty()) args.SetSslTargetNameOverride(tls.server_name());
    cluster_options->connection.tls.enabled = true;
    cluster_options->connection.tls.server_name = tls.server_name();
    creds = grpc::SslCredentials(options);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  absl::StatusOr<std::shared_ptr<upstream::Cluster>> cluster =
      upstream::Cluster::Create(*std::move(cluster_options));
  if (!cluster.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", cluster.status().message()));
  }
  (*cluster)->Start(DefaultUpstreamControl());
  auto backend = std::shared_ptr<Backend>(
      new Backend(config.name(), config.target(), MaxMetadataBytes(limits)));
  backend->channel_credentials_ = std::move(creds);
  backend->channel_args_ = args;
  backend->cluster_ = *std::move(cluster);
  backend->required_ = !config.has_required() || config.required();
  absl::StatusOr<std::string> fingerprint = Fingerprint(config, limits, base_dir);
  if (!fingerprint.ok()) return fingerprint.status();
  backend->fingerprint_ = *std::move(fingerprint);
  return backend;
}

Backend::~Backend() {
  if (cluster_ != nullptr) cluster_->Stop();
}

upstream::UpstreamControl& DefaultUpstreamControl() {
  // Runs until the process ends (clusters stop their work on it when their backend goes).
  static upstream::UpstreamControl* const control = new upstream::UpstreamControl();
  return *control;
}

namespace {

absl::Duration DurationOr(bool has, const google::protobuf::Duration& d, absl::Duration def) {
  return has ? absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()) : def;
}

}  // namespace

absl::StatusOr<upstream::ClusterOptions> ClusterOptionsFor(const config::v1::Backend& config,
                                                          const config::v1::Limits& limits,
                                                          const std::string& path) {
  upstream::ClusterOptions out;
  out.name = config.name();
  out.target = config.target();
  out.weights.assign(config.weights().begin(), config.weights().end());
  for (int i = 0; i < config.weights_size(); ++i) {
    if (config.weights(i) == 0 || config.weights(i) > 1000) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".weights[", i, "]: must be 1 to 1000"));
    }
  }
  switch (config.load_balancing()) {
    case config::v1::Backend::PICK_FIRST:
      out.lb_policy = upstream::LbPolicy::kPickFirst;
      break;
    case config::v1::Backend::LEAST_REQUEST:
      out.lb_policy = upstream::LbPolicy::kLeastRequest;
      break;
    default:
      out.lb_policy = upstream::LbPolicy::kRoundRobin;
      break;
  }
  auto positive = [&](absl::Duration d, const char* key) -> absl::Status {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".", key, ": must be positive"));
    }
    return absl::OkStatus();
  };
  out.connection.connect_timeout =
      DurationOr(config.has_connect_timeout(), config.connect_timeout(), absl::Seconds(5));
  if (absl::Status s = positive(out.connection.connect_timeout, "connect_timeout"); !s.ok()) {
    return s;
  }
  out.dns_refresh_interval = DurationOr(config.has_dns_refresh_interval(),
                                        config.dns_refresh_interval(), absl::Seconds(30));
  if (out.dns_refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".dns_refresh_interval: at least 1s"));
  }
  if (config.has_keepalive()) {
    out.connection.keepalive_interval =
        DurationOr(config.keepalive().has_interval(), config.keepalive().interval(),
                   absl::ZeroDuration());
    if (out.connection.keepalive_interval < absl::Seconds(1)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".keepalive.interval: required, at least 1s"));
    }
    out.connection.keepalive_timeout = DurationOr(
        config.keepalive().has_timeout(), config.keepalive().timeout(), absl::Seconds(20));
    if (absl::Status s = positive(out.connection.keepalive_timeout, "keepalive.timeout");
        !s.ok()) {
      return s;
    }
  }
  out.connection.max_message_size = static_cast<size_t>(MaxMessageBytes(limits));
  if (config.max_connections_per_endpoint() != 0) {
    out.max_connections_per_endpoint = config.max_connections_per_endpoint();
  }
  out.reconnect_backoff_max = DurationOr(config.has_reconnect_backoff_max(),
                                         config.reconnect_backoff_max(), absl::Seconds(1));
  if (out.reconnect_backoff_max < out.reconnect_backoff_base) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".reconnect_backoff_max: at least 100ms"));
  }
  if (config.has_health_check()) {
    const config::v1::HealthCheck& hc = config.health_check();
    upstream::HealthCheckOptions& h = out.health_check;
    h.enabled = true;
    h.service = hc.service();
    h.interval = DurationOr(hc.has_interval(), hc.interval(), h.interval);
    h.timeout = DurationOr(hc.has_timeout(), hc.timeout(), h.timeout);
    if (absl::Status s = positive(h.interval, "health_check.interval"); !s.ok()) return s;
    if (absl::Status s = positive(h.timeout, "health_check.timeout"); !s.ok()) return s;
    if (hc.healthy_threshold() != 0) h.healthy_threshold = hc.healthy_threshold();
    if (hc.unhealthy_threshold() != 0) h.unhealthy_threshold = hc.unhealthy_threshold();
  }
  if (config.has_outlier_detection()) {
    const config::v1::OutlierDetection& od = config.outlier_detection();
    upstream::OutlierDetectionOptions& o = out.outlier_detection;
    o.enabled = !od.disabled();
    if (od.consecutive_failures() != 0) o.consecutive_failures = od.consecutive_failures();
    o.base_ejection_time =
        DurationOr(od.has_base_ejection_time(), od.base_ejection_time(), o.base_ejection_time);
    o.max_ejection_time =
        DurationOr(od.has_max_ejection_time(), od.max_ejection_time(), o.max_ejection_time);
    if (absl::Status s = positive(o.base_ejection_time, "outlier_detection.base_ejection_time");
        !s.ok()) {
      return s;
    }
    if (o.max_ejection_time < o.base_ejection_time) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".outlier_detection.max_ejection_time: at least base_ejection_time"));
    }
    if (od.max_ejection_percent() > 100) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".outlier_detection.max_ejection_percent: at most 100"));
    }
    if (od.max_ejection_percent() != 0) o.max_ejection_percent = od.max_ejection_percent();
  }
  if (config.has_circuit_breakers()) {
    const config::v1::CircuitBreakers& cb = config.circuit_breakers();
    upstream::CircuitBreakerOptions& c = out.circuit_breakers;
    if (cb.max_connections() != 0) c.max_connections = cb.max_connections();
    if (cb.max_pending_requests() != 0) c.max_pending_requests = cb.max_pending_requests();
    if (cb.max_requests() != 0) c.max_requests = cb.max_requests();
    if (cb.max_retries() != 0) c.max_retries = cb.max_retries();
  }
  return out;
}

}  // namespace gateway
