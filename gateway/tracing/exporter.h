// SpanExporter: sends finished spans to an OpenTelemetry collector in batches, as OTLP over
// HTTP (`POST <collector>/v1/traces`, content-type application/x-protobuf, an
// ExportTraceServiceRequest), from a thread of its own.
//
// Export() never blocks a caller on the network: it appends to a bounded queue (a short
// critical section) and drops the span, counting it, when the queue is full. The thread
// sends a batch when `max_batch` spans wait or every `interval`; each POST has a timeout and
// is tried at most `max_attempts` times (a connection failure, a 429 or a 5xx is tried
// again; another status drops the batch, counted).
//
// Thread-safety: thread-safe.
//
// Example:
//   auto exporter = SpanExporter::Start({.collector_url = "http://127.0.0.1:4318"});
//   (*exporter)->Export(std::move(span));

#ifndef GATEWAY_TRACING_EXPORTER_H_
#define GATEWAY_TRACING_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/tracing/span.h"

namespace gateway::tracing {

// A parsed http:// collector URL.
struct CollectorUrl {
  std::string host;  // a name, an IPv4 address or an IPv6 address (without brackets)
  std::string port;  // "4318" when absent
  std::string host_header;
  std::string path;  // the base path plus "/v1/traces" (kept when already there)
};

// Parses "http://HOST[:PORT][/PATH]". INVALID_ARGUMENT naming the problem otherwise
// (https:// is not supported: run the collector's HTTP receiver on loopback or a local
// agent).
absl::StatusOr<CollectorUrl> ParseCollectorUrl(absl::string_view url);

class SpanExporter {
 public:
  struct Options {
    std::string collector_url;
    ExportIdentity identity;
    size_t max_queue = 2048;
    size_t max_batch = 512;
    absl::Duration interval = absl::Seconds(1);
    absl::Duration timeout = absl::Seconds(5);
    int max_attempts = 2;
  };

  // Starts the thread. INVALID_ARGUMENT when the URL or a size is invalid.
  static absl::StatusOr<std::unique_ptr<SpanExporter>> Start(Options options);
  // Sends what is queued (each POST bounded by the timeout), then stops the thread.
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Queues `span`, or drops it (dropped()) when the queue is full.
  void Export(SpanData span);

  // Spans dropped because the queue was full, or whose batch could not be delivered.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Spans the collector accepted (2xx).
  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }

 private:
  SpanExporter(Options options, CollectorUrl url);
  void Run();
  // One batch: true when the collector accepted it.
  bool Send(const std::string& body);
  // One POST; the HTTP status, or 0 when no response came.
  int Post(const std::string& body);

  const Options options_;
  const CollectorUrl url_;
  absl::Mutex mu_;
  std::deque<SpanData> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> exported_{0};
  std::thread thread_;
};

}  // namespace gateway::tracing

#endif  // GATEWAY_TRACING_EXPORTER_H_
