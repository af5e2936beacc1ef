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

grpc::Status Backend::ClientStatus(const grpc::ClientContext& context,
                                   const grpc::Status& status, absl::string_view method) const {
  if (status.ok()) return status;
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return status;
    default:
      break;
  }
  const std::string debug = context.debug_error_string();
  // See the header: core marks a status that came in the peer's trailers, and a status the
  // front end set in place of the call's own is not in core's record of the call.
  if (absl::StrContains(debug, "Error received from peer") ||
      !absl::StrContains(debug, status.error_message())) {
    return status;
  }
  const std::string what = DescribeTransportFailure(status.error_message());
  // The address stays in the log: at most one line per second per backend.
  const int64_t now = absl::ToUnixNanos(absl::Now());
  int64_t last = last_log_ns_.load(std::memory_order_relaxed);
  if (now - last >= 1'000'000'000 &&
      last_log_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    const int64_t left_out = unlogged_.exchange(0, std::memory_order_relaxed);
    LogLine(absl::StrCat("backend \"", name_, "\" (target ", target_, "): ", method, ": ",
                         what, ": ",
                         absl::StatusCodeToString(
                             static_cast<absl::StatusCode>(status.error_code())),
                         ": ", status.error_message(),
                         left_out > 0 ? absl::StrCat(" (", left_out,
                                                     " more such failures not logged)")
                                      : ""));
  } else {
    unlogged_.fetch_add(1, std::memory_order_relaxed);
  }
  const std::string message =
      status.error_code() == grpc::StatusCode::UNAVAILABLE
          ? absl::StrCat("backend \"", name_, "\" is unavailable: ", what)
          : absl::StrCat("backend \"", name_, "\" failed: ", what);
  return grpc::Status(status.error_code(), message);
}

Backend::Backend(std::string name, std::string target, std::shared_ptr<grpc::Channel> channel,
                 size_t max_metadata_bytes)
    : name_(std::move(name)),
      target_(std::move(target)),
      channel_(std::move(channel)),
      stub_(std::make_unique<grpc::GenericStub>(channel_)),
      max_metadata_bytes_(max_metadata_bytes) {}

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
  // Each of these costs CPU on every call (measured; see docs/architecture.md); the gateway does not
  // retry on its own, and flow-control windows are large enough without BDP probing.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // A channel of its own per backend, not shared with other channels of the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (config.has_tls()) {
    const config::v1::ClientTls& tls = config.tls();
    grpc::SslCredentialsOptions options;
    if (!tls.ca_file().empty()) {
      absl::StatusOr<std::string> pem =
          ReadTlsFile(base_dir, tls.ca_file(), absl::StrCat(path, ".tls.ca_file"));
      if (!pem.ok()) return pem.status();
      options.pem_root_certs = *std::move(pem);
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
    }
    if (!tls.server_name().empty()) args.SetSslTargetNameOverride(tls.server_name());
    creds = grpc::SslCredentials(options);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(config.target(), creds, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".target: cannot create a channel for \"", config.target(), "\""));
  }
  return std::shared_ptr<Backend>(
      new Backend(config.name(), config.target(), channel, MaxMetadataBytes(limits)));
}

}  // namespace gateway
