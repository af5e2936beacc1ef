// Which metadata the gRPC front end passes between client and backend.

#ifndef GATEWAY_GRPC_METADATA_H_
#define GATEWAY_GRPC_METADATA_H_

#include "absl/strings/string_view.h"

namespace gateway {

// False for headers that belong to one hop or that gRPC manages itself: pseudo headers
// (":path"), "grpc-*" (status, timeout, encodings, ...), "te", "content-type",
// "content-length", "user-agent", "host", "connection", "keep-alive", "proxy-connection",
// "transfer-encoding", "upgrade", "accept-encoding". `key` is lower case (as gRPC delivers
// it).
bool IsForwardedHeader(absl::string_view key);

}  // namespace gateway

#endif  // GATEWAY_GRPC_METADATA_H_
