// What GET /readyz answers, decided outside any call: per backend of the served route
// table, whether it can take calls (an endpoint that is healthy and not ejected, and the
// gRPC front end's channel connected), plus what the server adds (the registry's state).
//
// Thread-safety: reads the backends' shared state (atomics, snapshots); call from any
// thread.

#ifndef GATEWAY_HTTP_READINESS_H_
#define GATEWAY_HTTP_READINESS_H_

#include <functional>
#include <string>

#include "gateway/route_table.h"

namespace gateway::http {

struct Readiness {
  bool ready = true;
  // "ready\n" (then a line per backend that is not required and not ready), or a line per
  // backend that holds readiness back ("backend echo no healthy endpoint (0 of 3)"); then
  // what `more` added.
  std::string text;
};

// `more` (may be empty): the server's own contribution (HttpServer::Options::readiness).
Readiness CheckReadiness(const RouteTable& table,
                         const std::function<void(bool* ready, std::string* detail)>& more);

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_READINESS_H_
