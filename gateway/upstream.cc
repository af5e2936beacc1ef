#include "gateway/upstream.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/config/config_loader.h"
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

int MaxMessageBytes(const config::v1::Limits& limits) {
  if (limits.max_message_bytes() == 0) return kDefaultMaxMessageBytes;
  return static_cast<int>(std::min<uint32_t>(limits.max_message_bytes(), INT32_MAX));
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || absl::StartsWith(path, "/")) return path;
  return absl::StrCat(base_dir, "/", path);
}

Backend::Backend(std::string name, std::string target, std::shared_ptr<grpc::Channel> channel)
    : name_(std::move(name)),
      target_(std::move(target)),
      channel_(std::move(channel)),
      stub_(std::make_unique<grpc::GenericStub>(channel_)) {}

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
  // Each of these costs CPU on every call (measured; see DESIGN.md); the gateway does not
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
  return std::shared_ptr<Backend>(new Backend(config.name(), config.target(), channel));
}

}  // namespace gateway
