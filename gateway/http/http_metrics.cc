#include "gateway/http/http_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway::http {

namespace {

// The series of `route` of `table` for `owner`, resolved once per route table and thread
// (`for_method(label)` takes a lock; a call then only reads this thread's cache). The table
// is held, so a later table never reuses its address while cached.
template <typename Owner, typename Series, typename ForMethod>
Series* CachedSeries(const Owner* owner, const std::shared_ptr<const RouteTable>& table,
                     const Route* route, ForMethod for_method) {
  struct Cache {
    std::shared_ptr<const RouteTable> table;
    const Owner* owner = nullptr;
    absl::flat_hash_map<const Route*, Series*> series;
  };
  thread_local Cache cache;
  if (cache.table != table || cache.owner != owner) {
    cache.series.clear();
    cache.table = table;
    cache.owner = owner;
  }
  Series*& s = cache.series[route];
  if (s == nullptr) s = for_method(route->path);
  return s;
}

}  // namespace

metrics::Counter* HttpMetrics::Series::ForStatus(int status) {
  for (int i = 0; i < kSlots; ++i) {
    int seen = slot_status_[i].load(std::memory_order_acquire);
    if (seen == 0 &&
        slot_status_[i].compare_exchange_strong(seen, status, std::memory_order_acq_rel)) {
      metrics::Counter* c = responses_->Get({label_, absl::StrCat(status)});
      slot_counter_[i].store(c, std::memory_order_release);
      return c;
    }
    if (seen == status) {
      // Another thread claimed the slot; its counter may not be stored yet.
      metrics::Counter* c = slot_counter_[i].load(std::memory_order_acquire);
      return c != nullptr ? c : responses_->Get({label_, absl::StrCat(status)});
    }
  }
  return responses_->Get({label_, absl::StrCat(status)});
}

void HttpMetrics::Series::Responded(int status, absl::Duration elapsed) {
  ForStatus(status == 0 ? 499 : status)->Increment();
  duration_->ObserveDuration(elapsed);
}

HttpMetrics::HttpMetrics(metrics::MetricRegistry* registry)
    : responses_(&registry->AddCounter(
          "gateway_http_responses_total",
          "Requests of the HTTP front end (REST, gRPC-Web, Connect) answered, by the gRPC "
          "method they were routed to (\"unknown\" for none) and HTTP status (499: the "
          "client went away first).",
          {"method", "status"})),
      duration_(&registry->AddHistogram(
          "gateway_http_request_duration_seconds",
          "Time from the arrival of an HTTP request to the end of its response, by method.",
          {"method"}, metrics::LatencyBuckets())),
      rejections_(&metrics::InterceptorRejections(*registry)),
      unknown_(ForMethod("unknown")) {}

HttpMetrics::Series* HttpMetrics::ForMethod(const std::string& label) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Series>& s = by_method_[label];
  if (s == nullptr) s.reset(new Series(label, responses_, duration_->Get({label})));
  return s.get();
}

HttpMetrics::Series* HttpMetrics::SeriesFor(const std::shared_ptr<const RouteTable>& table,
                                            const Route* route) {
  if (route == nullptr) return unknown_;
  return CachedSeries<HttpMetrics, Series>(
      this, table, route, [this](const std::string& label) { return ForMethod(label); });
}

void HttpMetrics::Rejected(const absl::Status& status) {
  rejections_->Get({"http", absl::StatusCodeToString(status.code())})->Increment();
}

// --- GrpcMetrics ---

void GrpcMetrics::Series::Finished(int code, absl::Duration elapsed) {
  if (code < 0 || code >= kCodes) code = static_cast<int>(absl::StatusCode::kUnknown);
  metrics::Counter* c = by_code_[code].load(std::memory_order_acquire);
  if (c == nullptr) {
    c = finished_->Get(
        {label_, absl::StatusCodeToString(static_cast<absl::StatusCode>(code))});
    by_code_[code].store(c, std::memory_order_release);
  }
  c->Increment();
  duration_->ObserveDuration(elapsed);
}

GrpcMetrics::GrpcMetrics(metrics::MetricRegistry* registry)
    : started_(&registry->AddCounter(
          "gateway_grpc_calls_started_total",
          "Native gRPC calls received, by method (\"unknown\" for a method no route serves).",
          {"method"})),
      finished_(&registry->AddCounter(
          "gateway_grpc_calls_finished_total",
          "Native gRPC calls ended, by method and the status code sent to the client.",
          {"method", "code"})),
      duration_(&registry->AddHistogram(
          "gateway_grpc_call_duration_seconds",
          "Time from the arrival of a gRPC call to the status sent to the client, by method.",
          {"method"}, metrics::LatencyBuckets())),
      rejections_(&metrics::InterceptorRejections(*registry)),
      unknown_(ForMethod("unknown")) {}

GrpcMetrics::Series* GrpcMetrics::ForMethod(const std::string& label) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Series>& s = by_method_[label];
  if (s == nullptr) {
    s.reset(new Series(label, finished_, started_->Get({label}), duration_->Get({label})));
  }
  return s.get();
}

GrpcMetrics::Series* GrpcMetrics::SeriesFor(const std::shared_ptr<const RouteTable>& table,
                                            const Route* route) {
  if (route == nullptr) return unknown_;
  return CachedSeries<GrpcMetrics, Series>(
      this, table, route, [this](const std::string& label) { return ForMethod(label); });
}

void GrpcMetrics::Rejected(const absl::Status& status) {
  rejections_->Get({"grpc", absl::StatusCodeToString(status.code())})->Increment();
}

}  // namespace gateway::http
