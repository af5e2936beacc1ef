#include "gateway/tracing/exporter.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/log.h"

namespace gateway::tracing {
namespace {

absl::Status BadUrl(absl::string_view url, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("collector URL \"", url, "\": ", why));
}

// Milliseconds left until `deadline` (at least 0).
int MillisLeft(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<CollectorUrl> ParseCollectorUrl(absl::string_view url) {
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "https://")) {
    return BadUrl(url, "https is not supported (use an http:// receiver, e.g. a local agent)");
  }
  if (!absl::ConsumePrefix(&rest, "http://")) return BadUrl(url, "must start with http://");
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash);
  if (authority.empty()) return BadUrl(url, "no host");
  if (path.find_first_of("?# \r\n") != absl::string_view::npos) {
    return BadUrl(url, "the path may not have a query, a fragment or spaces");
  }
  CollectorUrl out;
  out.host_header = std::string(authority);
  absl::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return BadUrl(url, "unclosed [ in the host");
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return BadUrl(url, "bad port");
    port = after;
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return BadUrl(url, "no host");
  for (char c : out.host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
      return BadUrl(url, "invalid character in the host");
    }
  }
  uint32_t port_number = 4318;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) || port_number == 0 ||
                        port_number > 65535)) {
    return BadUrl(url, "the port must be 1..65535");
  }
  out.port = absl::StrCat(port_number);
  std::string base(absl::StripSuffix(path, "/"));
  out.path = absl::EndsWith(base, "/v1/traces") ? base : base + "/v1/traces";
  return out;
}

absl::StatusOr<std::unique_ptr<SpanExporter>> SpanExporter::Start(Options options) {
  absl::StatusOr<CollectorUrl> url = ParseCollectorUrl(options.collector_url);
  if (!url.ok()) return url.status();
  if (options.max_queue == 0 || options.max_batch == 0) {
    return absl::InvalidArgumentError("span exporter: queue and batch sizes must be positive");
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  auto exporter =
      std::unique_ptr<SpanExporter>(new SpanExporter(std::move(options), *std::move(url)));
  exporter->thread_ = std::thread([e = exporter.get()] { e->Run(); });
  return exporter;
}

SpanExporter::SpanExporter(Options options, CollectorUrl url)
    : options_(std::move(options)), url_(std::move(url)) {}

SpanExporter::~SpanExporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SpanExporter::Export(SpanData span) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.max_queue) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(std::move(span));
}

void SpanExporter::Run() {
  pthread_setname_np(pthread_self(), "gw-trace-export");
  const size_t max_batch = options_.max_batch;
  for (;;) {
    std::vector<SpanData> batch;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, max_batch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() >= max_batch;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.interval);
      stopping = stopping_;
      while (!queue_.empty() && batch.size() < max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      if (Send(EncodeExportRequest(batch, options_.identity))) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
      }
    }
    if (stopping) {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) return;
    }
  }
}

bool SpanExporter::Send(const std::string& body) {
  int status = 0;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    status = Post(body);
    if (status >= 200 && status < 300) return true;
    if (status != 0 && status != 429 && status < 500) break;  // not worth another try
  }
  LogDebug("tracing: spans not delivered to the collector",
           {{"collector", options_.collector_url},
            {"status", status == 0 ? std::string("no response") : absl::StrCat(status)}});
  return false;
}

int SpanExporter::Post(const std::string& body) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(url_.host.c_str(), url_.port.c_str(), &hints, &found) != 0) return 0;
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, freeaddrinfo);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Fd fd(socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.get() < 0) continue;
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS || !WaitFor(fd.get(), POLLOUT, deadline)) continue;
      int error = 0;
      socklen_t len = sizeof(error);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) continue;
    }
    const std::string request = absl::StrCat(
        "POST ", url_.path, " HTTP/1.1\r\nHost: ", url_.host_header,
        "\r\nContent-Type: application/x-protobuf\r\nContent-Length: ", body.size(),
        "\r\nConnection: close\r\n\r\n", body);
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent,
                             MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!WaitFor(fd.get(), POLLOUT, deadline)) return 0;
      } else {
        return 0;
      }
    }
    // The status line is all that matters: "HTTP/1.1 200 ...".
    std::string response;
    char buffer[512];
    while (response.find("\r\n") == std::string::npos && response.size() < 4096) {
      if (!WaitFor(fd.get(), POLLIN, deadline)) return 0;
      const ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
      if (n > 0) {
        response.append(buffer, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        continue;
      } else {
        break;
      }
    }
    int status = 0;
    if (response.size() >= 12 && absl::StartsWith(response, "HTTP/1.") &&
        absl::SimpleAtoi(absl::string_view(response).substr(9, 3), &status)) {
      return status;
    }
    return 0;
  }
  return 0;
}

}  // namespace gateway::tracing
