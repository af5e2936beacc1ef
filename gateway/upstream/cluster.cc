// The shared half of a cluster: target parsing, the endpoint snapshot, DNS refresh on the
// control thread, circuit breakers and outlier detection.
//
// Target grammar (see Cluster::Create in cluster.h):
//   target   = "ipv4:" v4port *("," v4port)
//            | "ipv6:" v6port *("," v6port)
//            | "unix:" ["//"] path
//            | "dns:" ["//" "/"] hostport
//            | hostport
//   v4port   = IPv4-literal ":" port
//   v6port   = "[" IPv6-literal "]" ":" port
//   hostport = (name | IPv4-literal | "[" IPv6-literal "]") ":" port
//   port     = 1..65535 in decimal
#include "gateway/upstream/cluster.h"

#include <arpa/inet.h>
#include <pthread.h>

#include <algorithm>
#include <future>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gateway/log.h"
#include "gateway/upstream/health_checker.h"

namespace gateway::upstream {

namespace asio = boost::asio;

namespace {

// A failed resolution is retried after this (or the refresh interval, if shorter).
constexpr absl::Duration kDnsRetryInterval = absl::Seconds(1);

std::string Quoted(absl::string_view name) { return absl::StrCat("backend \"", name, "\""); }

absl::Status BadTarget(const ClusterOptions& o, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(Quoted(o.name), ": target \"", o.target, "\": ", why));
}

bool IsIpv4(const std::string& s) {
  in_addr a;
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}
bool IsIpv6(const std::string& s) {
  in6_addr a;
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

absl::StatusOr<uint16_t> ParsePort(absl::string_view s) {
  uint32_t port = 0;
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(s, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port \"", s, "\" (1..65535)"));
  }
  return static_cast<uint16_t>(port);
}

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  bool bracketed = false;
};

// "host:port" or "[v6]:port".
absl::StatusOr<HostPort> SplitHostPort(absl::string_view s) {
  HostPort hp;
  absl::string_view port;
  if (s.empty()) return absl::InvalidArgumentError("empty host and port");
  if (absl::StartsWith(s, "[")) {
    const size_t close = s.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("missing ']' in \"", s, "\""));
    }
    hp.host = std::string(s.substr(1, close - 1));
    hp.bracketed = true;
    absl::string_view rest = s.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(absl::StrCat("missing port in \"", s, "\""));
    }
    port = rest;
  } else {
    const size_t colon = s.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("missing port in \"", s, "\""));
    }
    hp.host = std::string(s.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("an IPv6 address needs brackets: \"[", hp.host, "]:port\""));
    }
    port = s.substr(colon + 1);
  }
  if (hp.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty host in \"", s, "\""));
  }
  absl::StatusOr<uint16_t> p = ParsePort(port);
  if (!p.ok()) return p.status();
  hp.port = *p;
  return hp;
}

bool IsDnsName(absl::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
  });
}

struct ParsedTarget {
  std::vector<Endpoint> endpoints;  // static addresses
  std::string dns_host;             // set: resolve this name
  uint16_t dns_port = 0;
};

absl::StatusOr<ParsedTarget> ParseTarget(const ClusterOptions& o) {
  absl::string_view t = o.target;
  ParsedTarget out;
  if (t.empty()) return absl::InvalidArgumentError(absl::StrCat(Quoted(o.name), ": empty target"));
  if (absl::ConsumePrefix(&t, "ipv4:") || absl::ConsumePrefix(&t, "ipv6:")) {
    const bool v6 = absl::StartsWith(o.target, "ipv6:");
    if (t.empty()) return BadTarget(o, "no addresses");
    for (absl::string_view item : absl::StrSplit(t, ',')) {
      if (item.empty()) return BadTarget(o, "empty address in the list");
      absl::StatusOr<HostPort> hp = SplitHostPort(item);
      if (!hp.ok()) return BadTarget(o, hp.status().message());
      if (v6 ? !(hp->bracketed && IsIpv6(hp->host)) : !(!hp->bracketed && IsIpv4(hp->host))) {
        return BadTarget(o, absl::StrCat("\"", item, "\" is not an ", v6 ? "IPv6" : "IPv4",
                                         " address and port",
                                         v6 ? " ([addr]:port)" : " (a.b.c.d:port)"));
      }
      out.endpoints.push_back(Endpoint::Tcp(hp->host, hp->port));
    }
    return out;
  }
  if (absl::ConsumePrefix(&t, "unix:")) {
    // unix:///abs -> /abs; unix:/abs -> /abs; unix:rel -> rel.
    if (absl::StartsWith(t, "//")) {
      t.remove_prefix(2);
      if (!absl::StartsWith(t, "/")) {
        return BadTarget(o, "\"unix://\" must be followed by an absolute path (unix:///path)");
      }
    }
    if (t.empty()) return BadTarget(o, "empty unix socket path");
    if (t.size() > 107) return BadTarget(o, "unix socket path longer than 107 bytes");
    out.endpoints.push_back(Endpoint::Unix(std::string(t)));
    return out;
  }
  if (absl::ConsumePrefix(&t, "dns:")) {
    if (absl::ConsumePrefix(&t, "//")) {
      const size_t slash = t.find('/');
      if (slash == absl::string_view::npos) return BadTarget(o, "expected dns:///host:port");
      if (slash != 0) return BadTarget(o, "a DNS server authority is not supported");
      t.remove_prefix(1);
    }
  }
  absl::StatusOr<HostPort> hp = SplitHostPort(t);
  if (!hp.ok()) return BadTarget(o, hp.status().message());
  if (hp->bracketed) {
    if (!IsIpv6(hp->host)) {
      return BadTarget(o, absl::StrCat("\"", hp->host, "\" is not an IPv6 address"));
    }
    out.endpoints.push_back(Endpoint::Tcp(hp->host, hp->port));
  } else if (IsIpv4(hp->host)) {
    out.endpoints.push_back(Endpoint::Tcp(hp->host, hp->port));
  } else if (IsDnsName(hp->host)) {
    out.dns_host = hp->host;
    out.dns_port = hp->port;
  } else {
    return BadTarget(o, absl::StrCat("\"", hp->host, "\" is not a host name"));
  }
  return out;
}

absl::Status CheckOptions(const ClusterOptions& o) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(Quoted(o.name), ": ", what));
  };
  if (o.dns_refresh_interval <= absl::ZeroDuration()) {
    return bad("dns_refresh_interval must be positive");
  }
  if (o.health_check.enabled) {
    if (o.health_check.interval <= absl::ZeroDuration()) {
      return bad("health_check.interval must be positive");
    }
    if (o.health_check.timeout <= absl::ZeroDuration()) {
      return bad("health_check.timeout must be positive");
    }
    if (o.health_check.healthy_threshold == 0) {
      return bad("health_check.healthy_threshold must be at least 1");
    }
    if (o.health_check.unhealthy_threshold == 0) {
      return bad("health_check.unhealthy_threshold must be at least 1");
    }
  }
  if (o.outlier_detection.enabled) {
    if (o.outlier_detection.consecutive_failures == 0) {
      return bad("outlier_detection.consecutive_failures must be at least 1");
    }
    if (o.outlier_detection.max_ejection_percent > 100) {
      return bad("outlier_detection.max_ejection_percent must be at most 100");
    }
  }
  return absl::OkStatus();
}

// Identity of an address across DNS answers.
std::string EndpointKey(const Endpoint& e) {
  if (!e.unix_path.empty()) return absl::StrCat("unix:", e.unix_path);
  return absl::StrCat(e.host, "|", e.port);
}

}  // namespace

// --- UpstreamControl ---

UpstreamControl::UpstreamControl()
    : work_(asio::make_work_guard(io_)), thread_([this] {
        pthread_setname_np(pthread_self(), "gw-upstream");
        io_.run();
      }) {}

UpstreamControl::~UpstreamControl() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

// --- Cluster ---

// Lives on the control thread: every member is touched only there (after Start()).
struct Cluster::Background {
  asio::io_context* io = nullptr;
  std::unique_ptr<asio::ip::tcp::resolver> resolver;
  std::unique_ptr<asio::steady_timer> timer;
  std::shared_ptr<HealthChecker> health;  // null unless health checks are enabled
  bool stopped = false;
  std::atomic<bool> stop_called{false};
};

absl::StatusOr<std::shared_ptr<Cluster>> Cluster::Create(ClusterOptions options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  absl::StatusOr<ParsedTarget> target = ParseTarget(options);
  if (!target.ok()) return target.status();
  const std::vector<uint32_t> w = options.weights;
  if (!target->dns_host.empty()) {
    if (!w.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quoted(options.name), ": ", w.size(),
                       " weights for a dns target (its addresses all weigh 1)"));
    }
  } else if (!w.empty() && w.size() != target->endpoints.size()) {
    return absl::InvalidArgumentError(absl::StrCat(Quoted(options.name), ": ", w.size(),
                                                   " weights for ", target->endpoints.size(),
                                                   " addresses"));
  }
  std::shared_ptr<Cluster> cluster(new Cluster(std::move(options)));
  if (!target->dns_host.empty()) {
    cluster->dns_host_ = target->dns_host;
    cluster->dns_port_ = target->dns_port;
    absl::MutexLock lock(&cluster->mu_);
    cluster->resolution_status_ = absl::UnavailableError(
        absl::StrCat(Quoted(cluster->name()), ": \"", cluster->dns_host_, "\" not resolved yet"));
  } else {
    EndpointSet set;
    for (size_t i = 0; i < target->endpoints.size(); ++i) {
      set.push_back(std::make_shared<EndpointState>(std::move(target->endpoints[i]),
                                                    w.empty() ? 1 : w[i]));
    }
    cluster->SetEndpoints(std::move(set));
  }
  return cluster;
}

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)), endpoints_(std::make_shared<const EndpointSet>()) {}

Cluster::~Cluster() { Stop(); }

std::shared_ptr<const EndpointSet> Cluster::endpoints() const {
  absl::MutexLock lock(&mu_);
  return endpoints_;
}

absl::Status Cluster::resolution_status() const {
  absl::MutexLock lock(&mu_);
  return resolution_status_;
}

void Cluster::SetEndpoints(EndpointSet fresh) {
  absl::MutexLock lock(&mu_);
  resolution_status_ = absl::OkStatus();
  std::vector<std::string> old_keys, new_keys;
  for (const auto& e : *endpoints_) old_keys.push_back(EndpointKey(e->endpoint()));
  for (auto& e : fresh) {
    const std::string key = EndpointKey(e->endpoint());
    new_keys.push_back(key);
    for (const auto& old : *endpoints_) {
      if (EndpointKey(old->endpoint()) == key) {
        e = old;
        break;
      }
    }
  }
  std::sort(old_keys.begin(), old_keys.end());
  std::sort(new_keys.begin(), new_keys.end());
  if (old_keys == new_keys && version_.load(std::memory_order_relaxed) != 0) return;
  endpoints_ = std::make_shared<const EndpointSet>(std::move(fresh));
  version_.fetch_add(1, std::memory_order_acq_rel);
}

void Cluster::SetResolutionError(absl::Status status) {
  absl::MutexLock lock(&mu_);
  resolution_status_ = std::move(status);
}

// --- Background work (control thread) ---

void Cluster::Start(UpstreamControl& control) {
  if (background_) return;
  background_ = std::make_unique<Background>();
  Background& bg = *background_;
  bg.io = &control.io();
  if (!dns_host_.empty()) {
    bg.resolver = std::make_unique<asio::ip::tcp::resolver>(*bg.io);
    bg.timer = std::make_unique<asio::steady_timer>(*bg.io);
  }
  if (options_.health_check.enabled) {
    bg.health = std::make_shared<HealthChecker>(*bg.io, options_.name, options_.health_check,
                                                options_.connection);
  }
  std::weak_ptr<Cluster> weak = weak_from_this();
  asio::post(*bg.io, [weak] {
    std::shared_ptr<Cluster> self = weak.lock();
    if (!self || self->background_->stopped) return;
    if (self->background_->health) self->background_->health->Update(*self->endpoints());
    if (!self->dns_host_.empty()) self->Resolve();
  });
}

void Cluster::Resolve() {
  Background& bg = *background_;
  std::weak_ptr<Cluster> weak = weak_from_this();
  bg.resolver->async_resolve(
      dns_host_, std::to_string(dns_port_), asio::ip::tcp::resolver::numeric_service,
      [weak](const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        std::shared_ptr<Cluster> self = weak.lock();
        if (!self || self->background_->stopped || ec == asio::error::operation_aborted) return;
        const absl::Duration next = self->OnResolved(ec, results);
        Background& bg = *self->background_;
        bg.timer->expires_after(absl::ToChronoNanoseconds(next));
        bg.timer->async_wait([weak](const boost::system::error_code& ec) {
          std::shared_ptr<Cluster> self = weak.lock();
          if (!self || self->background_->stopped || ec) return;
          self->Resolve();
        });
      });
}

absl::Duration Cluster::OnResolved(const boost::system::error_code& ec,
                                   const asio::ip::tcp::resolver::results_type& results) {
  EndpointSet set;
  std::vector<std::string> seen;
  if (!ec) {
    for (const auto& entry : results) {
      const asio::ip::address addr = entry.endpoint().address();
      Endpoint e = Endpoint::Tcp(addr.to_string(), dns_port_);
      e.authority = absl::StrCat(dns_host_, ":", dns_port_);
      const std::string key = EndpointKey(e);
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      set.push_back(std::make_shared<EndpointState>(std::move(e), 1));
    }
  }
  absl::Duration next = options_.dns_refresh_interval;
  if (set.empty()) {
    const std::string why = ec ? ec.message() : "no addresses";
    absl::Status status = absl::UnavailableError(
        absl::StrCat(Quoted(name()), ": cannot resolve host \"", dns_host_, "\": ", why));
    if (resolution_status().message() != status.message()) LogWarn(status.message());
    SetResolutionError(std::move(status));
    next = std::min(next, kDnsRetryInterval);
  } else {
    const uint64_t before = endpoints_version();
    SetEndpoints(std::move(set));
    if (endpoints_version() != before) {
      std::string list;
      for (const auto& e : *endpoints()) {
        absl::StrAppend(&list, list.empty() ? "" : ", ", e->endpoint().host);
      }
      LogLine(absl::StrCat(Quoted(name()), ": ", dns_host_, " resolved to ", list));
      if (background_ && background_->health) background_->health->Update(*endpoints());
    }
  }
  return next;
}

void Cluster::Stop() {
  if (!background_ || background_->stop_called.exchange(true)) return;
  Background& bg = *background_;
  auto stop = [&bg] {
    bg.stopped = true;
    if (bg.timer) bg.timer->cancel();
    if (bg.resolver) bg.resolver->cancel();
    if (bg.health) bg.health->Stop();
    bg.timer.reset();
    bg.resolver.reset();
    bg.health.reset();
  };
  if (bg.io->get_executor().running_in_this_thread()) {
    stop();
    return;
  }
  std::promise<void> done;
  asio::post(*bg.io, [&] {
    stop();
    done.set_value();
  });
  done.get_future().wait();
}

// --- Circuit breakers ---

bool Cluster::TryAcquire(std::atomic<int64_t>& counter, uint32_t limit,
                         std::atomic<uint64_t>& overflows) {
  int64_t current = counter.load(std::memory_order_relaxed);
  while (true) {
    if (current >= static_cast<int64_t>(limit)) {
      overflows_total.fetch_add(1, std::memory_order_relaxed);
      overflows.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (counter.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
      return true;
    }
  }
}

bool Cluster::TryAcquireConnection() {
  return TryAcquire(connections, options_.circuit_breakers.max_connections,
                    connection_overflows_total);
}
void Cluster::ReleaseConnection() { connections.fetch_sub(1, std::memory_order_acq_rel); }
bool Cluster::TryAcquirePending() {
  return TryAcquire(pending_requests, options_.circuit_breakers.max_pending_requests,
                    pending_overflows_total);
}
void Cluster::ReleasePending() { pending_requests.fetch_sub(1, std::memory_order_acq_rel); }
bool Cluster::TryAcquireRequest() {
  return TryAcquire(active_requests, options_.circuit_breakers.max_requests,
                    request_overflows_total);
}
void Cluster::ReleaseRequest() { active_requests.fetch_sub(1, std::memory_order_acq_rel); }
bool Cluster::TryAcquireRetry() {
  return TryAcquire(active_retries, options_.circuit_breakers.max_retries,
                    retry_overflows_total);
}
void Cluster::ReleaseRetry() { active_retries.fetch_sub(1, std::memory_order_acq_rel); }

absl::Status Cluster::Overflow(absl::string_view what, absl::string_view key,
                               uint32_t limit) const {
  return absl::UnavailableError(absl::StrCat(Quoted(name()), ": too many ", what,
                                             " (circuit_breakers.", key, " = ", limit, ")"));
}

// --- Outlier detection ---

void Cluster::RecordOutcome(EndpointState& endpoint, EndpointOutcome outcome, absl::Time now) {
  endpoint.requests_total.fetch_add(1, std::memory_order_relaxed);
  if (outcome == EndpointOutcome::kConnectFailure) {
    endpoint.connect_failures_total.fetch_add(1, std::memory_order_relaxed);
  }
  const OutlierDetectionOptions& od = options_.outlier_detection;
  if (!od.enabled) return;
  switch (outcome) {
    case EndpointOutcome::kLocal:
      return;
    case EndpointOutcome::kSuccess:
      endpoint.consecutive_failures.store(0, std::memory_order_relaxed);
      return;
    case EndpointOutcome::kConnectFailure:
    case EndpointOutcome::kReset:
    case EndpointOutcome::kUnavailable:
      break;
  }
  if (endpoint.ejected(now)) {
    // Calls that were in flight when it was ejected: not held against its next period.
    endpoint.consecutive_failures.store(0, std::memory_order_relaxed);
    return;
  }
  const uint32_t failures =
      endpoint.consecutive_failures.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (failures < od.consecutive_failures) return;

  // Decide under the lock so that two workers cannot both take the last ejection slot.
  absl::MutexLock lock(&mu_);
  if (endpoint.ejected(now)) return;
  size_t ejected = 0;
  for (const auto& e : *endpoints_) {
    if (e.get() != &endpoint && e->ejected(now)) ++ejected;
  }
  const size_t total = std::max<size_t>(endpoints_->size(), 1);
  if (ejected > 0 && (ejected + 1) * 100 > static_cast<size_t>(od.max_ejection_percent) * total) {
    return;
  }
  const uint32_t n = endpoint.ejections.fetch_add(1, std::memory_order_acq_rel) + 1;
  const absl::Duration duration = std::min(od.base_ejection_time * n, od.max_ejection_time);
  endpoint.ejected_until_ns.store(absl::ToUnixNanos(now + duration), std::memory_order_relaxed);
  endpoint.consecutive_failures.store(0, std::memory_order_relaxed);
  endpoint.ejections_total.fetch_add(1, std::memory_order_relaxed);
  LogWarn(absl::StrCat(Quoted(name()), ": endpoint ", endpoint.endpoint().ToString(),
                       " ejected for ", absl::FormatDuration(duration), " after ", failures,
                       " consecutive failures (ejection ", n, ")"));
}

}  // namespace gateway::upstream
