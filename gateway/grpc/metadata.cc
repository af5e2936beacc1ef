#include "gateway/grpc/metadata.h"

#include "absl/strings/match.h"

namespace gateway {

bool IsForwardedHeader(absl::string_view key) {
  if (key.empty() || key[0] == ':') return false;
  if (absl::StartsWith(key, "grpc-")) return false;
  switch (key[0]) {
    case 'a':
      return key != "accept-encoding";
    case 'c':
      return key != "content-type" && key != "content-length" && key != "connection";
    case 'h':
      return key != "host";
    case 'k':
      return key != "keep-alive";
    case 'p':
      return key != "proxy-connection";
    case 't':
      return key != "te" && key != "transfer-encoding";
    case 'u':
      return key != "user-agent" && key != "upgrade";
    default:
      return true;
  }
}

}  // namespace gateway
