// MetricsListener: the metrics endpoint, a small HTTP/1.1 server (Boost.Beast) on its own
// thread that answers `GET /metrics` (and HEAD) with the page a render function returns,
// as `text/plain; version=0.0.4` (the Prometheus text exposition format); any other path
// is 404, another method on /metrics 405.
//
// It is bounded on purpose, since nothing but a scraper should talk to it: at most
// `max_connections` connections (more are closed at once), a request head of at most
// `max_request_bytes` (no request body), and `timeout` for reading each request and
// writing each response; keep-alive connections idle longer are closed.
//
// Thread-safety: Start and Shutdown from one thread; port() from any. `render` runs on the
// listener's thread.
//
// Example:
//   absl::StatusOr<std::unique_ptr<MetricsListener>> listener = MetricsListener::Start(
//       {.address = "127.0.0.1:9464"}, [&registry] { return registry.Render(); });
//   ...
//   (*listener)->Shutdown();

#ifndef GATEWAY_METRICS_LISTENER_METRICS_LISTENER_H_
#define GATEWAY_METRICS_LISTENER_METRICS_LISTENER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/config/v1/config.pb.h"

namespace gateway {

inline constexpr char kDefaultMetricsAddress[] = "127.0.0.1:9464";

class MetricsListener {
 public:
  struct Options {
    // "HOST:PORT"; HOST an IPv4 or [IPv6] literal or "localhost". Port 0 picks a free port.
    std::string address = kDefaultMetricsAddress;
    int max_connections = 8;
    std::size_t max_request_bytes = 8192;
    absl::Duration timeout = absl::Seconds(10);
  };

  // Binds and starts the listener's thread. INVALID_ARGUMENT for an address that is not
  // HOST:PORT; UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsListener>> Start(
      const Options& options, std::function<std::string()> render);

  // Closes every connection and joins the thread. Idempotent.
  void Shutdown();
  ~MetricsListener();

  // The bound port (the chosen one for port 0).
  int port() const { return port_; }

  class Impl;

 private:
  MetricsListener() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The listener's options from the config's metrics_listener (defaults applied).
// INVALID_ARGUMENT naming the key ("metrics_listener.address: ...") for an address that is
// not HOST:PORT with an IP address or localhost, max_connections over 1024,
// max_request_bytes under 256, a timeout that is not positive.
absl::StatusOr<MetricsListener::Options> CompileMetricsListener(
    const config::v1::MetricsListener& config);

}  // namespace gateway

#endif  // GATEWAY_METRICS_LISTENER_METRICS_LISTENER_H_
