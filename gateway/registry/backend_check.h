// Asking a backend whether it serves a service, before the registry routes calls to it.
//
// Two standard services answer that question: gRPC server reflection
// (grpc.reflection.v1alpha, ListServices) and gRPC health checking (grpc.health.v1,
// Check with the service's name: NOT_FOUND means the backend does not know it). Reflection
// is asked first; health only when the backend does not serve reflection.
//
// The check is a blocking call bounded by `timeout`; callers run it on the admin server's
// threads (the registry's Register), never on a front end's thread.
//
// Thread-safety: the function is thread-safe (it only uses the thread-safe channel).
//
// Example:
//   ServiceCheck check = CheckBackendServes(*backend->channel(), "bookstore.v1.Bookstore",
//                                           absl::Seconds(2));
//   if (check.verdict == ServiceCheck::kNotServed) ... check.detail ...

#ifndef GATEWAY_REGISTRY_BACKEND_CHECK_H_
#define GATEWAY_REGISTRY_BACKEND_CHECK_H_

#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace gateway::registry {

struct ServiceCheck {
  enum Verdict {
    kServed,     // the backend says it serves the service
    kNotServed,  // the backend says it does not
    kUnknown,    // the backend could not be asked (no reflection nor health, unreachable)
  };
  Verdict verdict = kUnknown;
  // How the backend answered, for people: "its server reflection lists: a.B, c.D",
  // "grpc.health.v1 Check answered NOT_FOUND", "serves neither server reflection nor
  // grpc.health.v1", "unreachable: <gRPC message>".
  std::string detail;
};

// Asks the backend behind `channel` whether it serves `service` (a full name), within
// `timeout` in total.
ServiceCheck CheckBackendServes(grpc::Channel& channel, const std::string& service,
                                absl::Duration timeout);

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_BACKEND_CHECK_H_
