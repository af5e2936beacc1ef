#include "gateway/tracing/tracer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/tracing/exporter.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace gateway::tracing {
namespace {

using ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using ::opentelemetry::proto::trace::v1::Span;

// A one-connection-at-a-time HTTP server on 127.0.0.1 that answers `status` and keeps the
// bodies it was sent.
class TestCollector {
 public:
  explicit TestCollector(int status) : status_(status) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestCollector() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  std::vector<std::string> bodies() {
    absl::MutexLock lock(&mu_);
    return bodies_;
  }
  std::vector<std::string> paths() {
    absl::MutexLock lock(&mu_);
    return paths_;
  }
  bool WaitForBodies(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return bodies_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }

 private:
  void Serve() {
    for (;;) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      size_t header_end = std::string::npos;
      size_t length = 0;
      for (;;) {
        const ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        in.append(buf, n);
        if (header_end == std::string::npos) {
          header_end = in.find("\r\n\r\n");
          if (header_end == std::string::npos) continue;
          const size_t cl = in.find("Content-Length: ");
          if (cl != std::string::npos) {
            (void)absl::SimpleAtoi(in.substr(cl + 16, in.find("\r\n", cl) - cl - 16), &length);
          }
        }
        if (in.size() >= header_end + 4 + length) break;
      }
      const std::string response =
          absl::StrCat("HTTP/1.1 ", status_, " X\r\nContent-Length: 0\r\n\r\n");
      (void)!write(c, response.data(), response.size());
      close(c);
      absl::MutexLock lock(&mu_);
      paths_.push_back(in.substr(0, in.find("\r\n")));
      bodies_.push_back(header_end == std::string::npos ? "" : in.substr(header_end + 4));
    }
  }

  const int status_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> paths_ ABSL_GUARDED_BY(mu_);
};

std::vector<Span> Spans(const std::vector<std::string>& bodies) {
  std::vector<Span> out;
  for (const std::string& body : bodies) {
    ExportTraceServiceRequest r;
    EXPECT_TRUE(r.ParseFromString(body));
    for (const auto& rs : r.resource_spans()) {
      EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
      for (const auto& ss : rs.scope_spans()) {
        for (const Span& s : ss.spans()) out.push_back(s);
      }
    }
  }
  return out;
}

std::string Hex(const std::string& bytes) {
  return ToHex(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

const Span* Find(const std::vector<Span>& spans, Span::SpanKind kind, int nth = 0) {
  for (const Span& s : spans) {
    if (s.kind() == kind && nth-- == 0) return &s;
  }
  return nullptr;
}

TEST(CallSpan, ContinuesTheIncomingTraceAndParentsEachAttempt) {
  TestCollector collector(200);
  SpanExporter::Options o;
  o.collector_url = collector.url();
  o.interval = absl::Milliseconds(20);
  o.identity.service_name = "edge";
  auto exporter = SpanExporter::Start(o);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  Tracer tracer({}, exporter->get());

  auto span = CallSpan::Start(&tracer,
                              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                              "congo=t61rcWkgMzE", absl::Now());
  ASSERT_NE(span, nullptr);
  std::function<std::string(absl::string_view, absl::string_view)> on_start;
  std::function<void(const absl::Status&)> on_end;
  span->HookAttempts(&on_start, &on_end);
  const std::string first = on_start("/pkg.Echo/Say", "127.0.0.1:5000");
  on_end(absl::UnavailableError("reset"));
  const std::string second = on_start("/pkg.Echo/Say", "127.0.0.1:5001");
  on_end(absl::OkStatus());
  span->End(absl::Now(), {"grpc", "POST", "/pkg.Echo/Say", "/pkg.Echo/Say", "gw.example:8443",
                          "ipv6:[::1]:40000", 200, 0, ""});
  span->End(absl::Now(), {});  // ignored

  ASSERT_TRUE(collector.WaitForBodies(1));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(collector.paths()[0], "POST /v1/traces HTTP/1.1");
  std::vector<Span> spans = Spans(collector.bodies());
  ASSERT_EQ(spans.size(), 3u);
  const Span* server = Find(spans, Span::SPAN_KIND_SERVER);
  const Span* a1 = Find(spans, Span::SPAN_KIND_CLIENT, 0);
  const Span* a2 = Find(spans, Span::SPAN_KIND_CLIENT, 1);
  ASSERT_TRUE(server && a1 && a2);
  EXPECT_EQ(Hex(server->trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Hex(server->parent_span_id()), "00f067aa0ba902b7");
  EXPECT_EQ(server->trace_state(), "congo=t61rcWkgMzE");
  EXPECT_EQ(server->name(), "pkg.Echo/Say");
  EXPECT_EQ(Hex(a1->parent_span_id()), Hex(server->span_id()));
  EXPECT_EQ(Hex(a2->parent_span_id()), Hex(server->span_id()));
  EXPECT_EQ(Hex(a1->trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
  // The traceparent each attempt sent names the attempt's own span.
  EXPECT_EQ(first, absl::StrCat("00-4bf92f3577b34da6a3ce929d0e0e4736-", Hex(a1->span_id()), "-01"));
  EXPECT_EQ(second, absl::StrCat("00-4bf92f3577b34da6a3ce929d0e0e4736-", Hex(a2->span_id()), "-01"));
  EXPECT_EQ(a1->status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(a1->status().message(), "reset");
  EXPECT_NE(a2->status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  std::map<std::string, std::string> attrs;
  for (const auto& kv : server->attributes()) {
    attrs[kv.key()] = kv.value().has_string_value() ? kv.value().string_value()
                                                    : absl::StrCat(kv.value().int_value());
  }
  EXPECT_EQ(attrs["rpc.system"], "grpc");
  EXPECT_EQ(attrs["rpc.service"], "pkg.Echo");
  EXPECT_EQ(attrs["rpc.method"], "Say");
  EXPECT_EQ(attrs["rpc.grpc.status_code"], "0");
  EXPECT_EQ(attrs["server.address"], "gw.example");
  EXPECT_EQ(attrs["server.port"], "8443");
  EXPECT_EQ(attrs["client.address"], "::1");
  EXPECT_EQ(attrs["client.port"], "40000");
  EXPECT_EQ(attrs["gateway.attempts"], "2");
  EXPECT_GE(server->end_time_unix_nano(), server->start_time_unix_nano());
  EXPECT_EQ((*exporter)->exported(), 3u);
  EXPECT_EQ((*exporter)->dropped(), 0u);
}

TEST(CallSpan, InvalidTraceparentStartsANewTraceAndUnsampledExportsNothing) {
  Tracer tracer({}, nullptr);
  auto span = CallSpan::Start(&tracer, "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                              "a=1", absl::Now());
  EXPECT_FALSE(IsZero(span->context().trace_id));
  EXPECT_TRUE(IsZero(span->parent_span_id()));
  EXPECT_EQ(span->tracestate(), "");  // no valid parent: its tracestate is not continued
  EXPECT_TRUE(span->sampled());

  auto unsampled = CallSpan::Start(
      &tracer, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", absl::Now());
  EXPECT_FALSE(unsampled->sampled());
  // The context still goes on, unsampled.
  EXPECT_EQ(unsampled->StartAttempt("/p.S/M", "h:1").substr(0, 36),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(unsampled->StartAttempt("/p.S/M", "h:1").substr(53), "00");

  Tracer never({0.0}, nullptr);
  EXPECT_FALSE(CallSpan::Start(&never, "", "", absl::Now())->sampled());
  EXPECT_EQ(CallSpan::Start(nullptr, "", "", absl::Now()), nullptr);
}

TEST(SpanExporter, FullQueueDropsAndCountsWithoutBlocking) {
  SpanExporter::Options o;
  o.collector_url = "http://127.0.0.1:9";  // discard port: nothing listens
  o.max_queue = 2;
  o.interval = absl::Seconds(30);
  o.timeout = absl::Milliseconds(200);
  auto exporter = SpanExporter::Start(o);
  ASSERT_TRUE(exporter.ok());
  const absl::Time start = absl::Now();
  for (int i = 0; i < 5; ++i) (*exporter)->Export(SpanData());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_EQ((*exporter)->dropped(), 3u);
}

TEST(SpanExporter, RetriesAServerErrorAndCountsTheBatchAsDropped) {
  TestCollector collector(503);
  SpanExporter::Options o;
  o.collector_url = collector.url() + "/base/";
  o.interval = absl::Milliseconds(10);
  o.max_attempts = 2;
  auto exporter = SpanExporter::Start(o);
  ASSERT_TRUE(exporter.ok());
  (*exporter)->Export(SpanData());
  ASSERT_TRUE(collector.WaitForBodies(2));
  exporter->reset();  // joins the thread: the counts are final
  EXPECT_EQ(collector.paths()[0], "POST /base/v1/traces HTTP/1.1");
  EXPECT_EQ(collector.bodies().size(), 2u);
}

TEST(ParseCollectorUrl, NamesTheProblem) {
  EXPECT_EQ(ParseCollectorUrl("https://c:4318").status().message(),
            "collector URL \"https://c:4318\": https is not supported (use an http:// receiver, "
            "e.g. a local agent)");
  EXPECT_EQ(ParseCollectorUrl("ftp://c").status().message(),
            "collector URL \"ftp://c\": must start with http://");
  EXPECT_EQ(ParseCollectorUrl("http://c:0").status().message(),
            "collector URL \"http://c:0\": the port must be 1..65535");
  EXPECT_EQ(ParseCollectorUrl("http://c/x?y").status().message(),
            "collector URL \"http://c/x?y\": the path may not have a query, a fragment or spaces");
  auto url = ParseCollectorUrl("http://[::1]:4318/v1/traces");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "4318");
  EXPECT_EQ(url->path, "/v1/traces");
  EXPECT_EQ(ParseCollectorUrl("http://otel")->port, "4318");
}

}  // namespace
}  // namespace gateway::tracing
