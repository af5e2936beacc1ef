// Metrics: counters, gauges and histograms with labels, and their rendering in the
// Prometheus text exposition format (version 0.0.4). A pure library: no sockets, no
// threads; a listener (gateway/metrics_listener) serves Render() over HTTP.
//
// The hot path never takes a lock or allocates: a component resolves each labeled series
// once (Family::Get, which takes the family's lock and may allocate) and keeps the
// pointer; an increment is then one relaxed atomic add on a cache line of the calling
// thread's shard (kShards per series), so threads that count the same series do not
// contend. Reading a value sums the shards.
//
// Values that another object already keeps (a table size, a registry's statistics) are
// exported with AddCallback: the function is called at every Render().
//
// Thread-safety: everything here is thread-safe. Series live as long as their
// MetricRegistry; pointers returned by Get() stay valid that long.
//
// Example:
//   MetricRegistry registry;
//   Family<Counter>& calls = registry.AddCounter(
//       "gateway_grpc_calls_started_total", "Calls received.", {"method"});
//   Counter* get_shelf = calls.Get({"/bookstore.v1.Bookstore/GetShelf"});  // once
//   get_shelf->Increment();                                              // per call
//   Histogram* latency = registry.AddHistogram("gateway_call_duration_seconds",
//       "Call duration.", {}, LatencyBuckets()).Get({});
//   latency->ObserveDuration(absl::Milliseconds(3));
//   std::string page = registry.Render();  // "# HELP gateway_grpc_calls_started_total ..."

#ifndef GATEWAY_METRICS_METRICS_H_
#define GATEWAY_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace gateway::metrics {

// Cache-line sized counter cells per series; a thread always uses the same one.
inline constexpr int kShards = 8;

namespace internal {

// The shard of the calling thread (assigned round robin on its first use).
int NextShard();
inline int ShardIndex() {
  thread_local int shard = -1;
  if (shard < 0) shard = NextShard();
  return shard;
}

struct alignas(64) Line {
  std::atomic<uint64_t> v[8] = {};
};

uint64_t DoubleBits(double value);
double BitsDouble(uint64_t bits);

}  // namespace internal

// A monotonically increasing count.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { Add(1); }
  void Add(uint64_t n) {
    cells_[internal::ShardIndex()].v[0].fetch_add(n, std::memory_order_relaxed);
  }
  // The sum over all shards (increments racing with the read may or may not be seen).
  uint64_t Value() const;

 private:
  internal::Line cells_[kShards];
};

// A value that goes up and down. Not sharded: set rarely, read at scrape time.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { bits_.store(internal::DoubleBits(value), std::memory_order_relaxed); }
  void Add(double delta);
  double Value() const { return internal::BitsDouble(bits_.load(std::memory_order_relaxed)); }

 private:
  std::atomic<uint64_t> bits_{0};  // the bits of a double; 0 is 0.0
};

// Observations counted in fixed buckets (upper bounds, inclusive), plus their sum.
class Histogram {
 public:
  // `bounds`: strictly increasing, finite; the +Inf bucket is implicit.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Counts {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Counts Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::atomic<uint64_t>& Slot(int shard, std::size_t i) const {
    return lines_[shard * lines_per_shard_ + i / 8].v[i % 8];
  }

  const std::vector<double> bounds_;
  // Per shard: bounds_.size() + 1 bucket counts, then the sum (bits of a double).
  std::size_t lines_per_shard_;
  std::unique_ptr<internal::Line[]> lines_;
};

// Buckets for call durations in seconds: 100 us to 10 s.
std::vector<double> LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

// The series of one metric name, one per combination of label values.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the family's samples (no HELP/TYPE lines) in the text format.
  virtual void RenderSamples(std::string* out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> labels)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(labels)) {}

 private:
  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
};

template <typename T>
class Family : public FamilyBase {
 public:
  // The series with `label_values` (one per label name, in order), created on first use.
  // Never null; valid as long as the registry. Takes the family's lock and may allocate:
  // resolve a series once and keep the pointer rather than calling this per event.
  // A wrong number of values is a programming error and aborts the process.
  T* Get(std::initializer_list<absl::string_view> label_values) {
    return Get(absl::MakeConstSpan(label_values.begin(), label_values.size()));
  }
  T* Get(absl::Span<const absl::string_view> label_values);

  void RenderSamples(std::string* out) const override;

 private:
  friend class MetricRegistry;
  Family(std::string name, std::string help, Type type, std::vector<std::string> labels,
         std::vector<double> bounds)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        bounds_(std::move(bounds)) {}

  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
};

// One sample of a callback metric.
struct Sample {
  std::vector<std::string> label_values;
  double value = 0;
};

// The metrics of one process, and their text rendering.
class MetricRegistry {
 public:
  MetricRegistry() = default;
  MetricRegistry(const MetricRegistry&) = delete;
  MetricRegistry& operator=(const MetricRegistry&) = delete;

  // The family `name`, created on first use. Asking again with the same type, labels and
  // buckets returns the same family (so two components may share one). Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not "le", not "__*"),
  // bounds strictly increasing; a bad name or a name taken with another shape is a
  // programming error and aborts the process with a message naming it.
  Family<Counter>& AddCounter(absl::string_view name, absl::string_view help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(absl::string_view name, absl::string_view help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(absl::string_view name, absl::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds);

  // A counter or gauge whose samples `collect` returns at every Render() (called with the
  // registry's lock held: it must not call into the registry). Each sample has one value
  // per label name. A name taken already is a programming error, as above.
  void AddCallback(absl::string_view name, absl::string_view help, Type type,
                   std::vector<std::string> label_names,
                   std::function<std::vector<Sample>()> collect);

  // Every family in the text exposition format 0.0.4, ordered by name: "# HELP", "# TYPE",
  // then one line per sample (histograms: _bucket lines with "le", _sum, _count). A family
  // without series has only its HELP and TYPE lines.
  std::string Render() const;

 private:
  FamilyBase* Find(absl::string_view name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename T>
  Family<T>& Add(absl::string_view name, absl::string_view help, Type type,
                 std::vector<std::string> label_names, std::vector<double> bounds);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_
      ABSL_GUARDED_BY(mu_);
};

// The text format's escaping of a label value (\ " and newline) and of HELP text (\ and
// newline).
std::string EscapeLabelValue(absl::string_view value);
std::string EscapeHelp(absl::string_view help);
// A sample value: integers without a fraction, others in the shortest form that reads back
// exactly, "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// The family both front ends count interceptor rejections in,
// gateway_interceptor_rejections_total{front_end, code} (registered on first use).
Family<Counter>& InterceptorRejections(MetricRegistry& registry);

}  // namespace gateway::metrics

#endif  // GATEWAY_METRICS_METRICS_H_
