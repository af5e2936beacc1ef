// The front ends' metrics (docs/config.md, "Metrics").
//
// HttpMetrics: REST, gRPC-Web and Connect requests: responses by method and HTTP status,
// request durations by method, and interceptor rejections (front_end="http"). The three
// protocols share the series (no protocol label: one method's calls add up whatever the
// client speaks); each counts with the HTTP status it sent: gRPC-Web and Connect streams
// 200 whatever their status, Connect unary errors their Connect status (404, 429, ...).
// GrpcMetrics: native gRPC calls (the relay, on any listener): calls started by method,
// finished by method and the gRPC status code sent to the client, durations by method, and
// interceptor rejections (front_end="grpc").
//
// "method" is the gRPC method a request was routed to ("/pkg.Service/Method"), or
// "unknown" for requests that reached no method (404s, malformed requests, health checks,
// CORS preflights). A request whose client went away before the response head was sent
// counts with status "499" (as nginx logs it).
//
// Hot path: a call resolves its method's series once per route table and worker thread
// (SeriesFor, a lock-free per-thread cache); counting is then atomic adds only.
//
// Thread-safety: thread-safe.
//
// Example:
//   HttpMetrics metrics(&registry);
//   HttpMetrics::Series* s = metrics.SeriesFor(table, route);   // once per call
//   ... s->Responded(200, absl::Now() - arrival);

#ifndef GATEWAY_HTTP_HTTP_METRICS_H_
#define GATEWAY_HTTP_HTTP_METRICS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/metrics/metrics.h"
#include "gateway/route_table.h"

namespace gateway::http {

class HttpMetrics {
 public:
  // The series of one method.
  class Series {
   public:
    // Counts a response with HTTP `status` (0: the client went away first) that took
    // `elapsed` from the request's arrival.
    void Responded(int status, absl::Duration elapsed);
    // Counts a response with `status` without a duration (a request refused while it was
    // being read: malformed, over a limit).
    void Refused(int status) { ForStatus(status)->Increment(); }

   private:
    friend class HttpMetrics;
    Series(std::string label, metrics::Family<metrics::Counter>* responses,
           metrics::Histogram* duration)
        : label_(std::move(label)), responses_(responses), duration_(duration) {}
    metrics::Counter* ForStatus(int status);

    static constexpr int kSlots = 8;
    const std::string label_;
    metrics::Family<metrics::Counter>* const responses_;
    metrics::Histogram* const duration_;
    // The first kSlots statuses seen, claimed with a CAS; others go through the family.
    std::atomic<int> slot_status_[kSlots] = {};
    std::atomic<metrics::Counter*> slot_counter_[kSlots] = {};
  };

  explicit HttpMetrics(metrics::MetricRegistry* registry);

  // The series of `route` of `table` (the "unknown" series for null). From any thread.
  Series* SeriesFor(const std::shared_ptr<const RouteTable>& table, const Route* route);

  // The series of requests that reached no method.
  Series* unknown() const { return unknown_; }

  // Counts a call the interceptor chain rejected with `status`.
  void Rejected(const absl::Status& status);

 private:
  Series* ForMethod(const std::string& label);

  metrics::Family<metrics::Counter>* const responses_;
  metrics::Family<metrics::Histogram>* const duration_;
  metrics::Family<metrics::Counter>* const rejections_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Series>> by_method_ ABSL_GUARDED_BY(mu_);
  Series* const unknown_;
};

class GrpcMetrics {
 public:
  static constexpr int kCodes = 17;  // gRPC status codes 0..16

  // The series of one method.
  class Series {
   public:
    void Started() { started_->Increment(); }
    // Counts the end of a call with gRPC status `code` (CANCELLED for a client that went
    // away) that took `elapsed` from its arrival.
    void Finished(int code, absl::Duration elapsed);

   private:
    friend class GrpcMetrics;
    Series(std::string label, metrics::Family<metrics::Counter>* finished,
           metrics::Counter* started, metrics::Histogram* duration)
        : label_(std::move(label)), finished_(finished), started_(started),
          duration_(duration) {}

    const std::string label_;
    metrics::Family<metrics::Counter>* const finished_;
    metrics::Counter* const started_;
    metrics::Histogram* const duration_;
    std::atomic<metrics::Counter*> by_code_[kCodes] = {};
  };

  explicit GrpcMetrics(metrics::MetricRegistry* registry);

  // The series of `route` of `table` (the "unknown" series for null). From any thread.
  Series* SeriesFor(const std::shared_ptr<const RouteTable>& table, const Route* route);

  // Counts a call the interceptor chain rejected with `status`.
  void Rejected(const absl::Status& status);

 private:
  Series* ForMethod(const std::string& label);

  metrics::Family<metrics::Counter>* const started_;
  metrics::Family<metrics::Counter>* const finished_;
  metrics::Family<metrics::Histogram>* const duration_;
  metrics::Family<metrics::Counter>* const rejections_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Series>> by_method_ ABSL_GUARDED_BY(mu_);
  Series* const unknown_;
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_HTTP_METRICS_H_
