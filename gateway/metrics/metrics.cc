#include "gateway/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gateway::metrics {
namespace internal {

int NextShard() {
  static std::atomic<int> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % kShards;
}

uint64_t DoubleBits(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

double BitsDouble(uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace internal

namespace {

using internal::BitsDouble;
using internal::DoubleBits;

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::abort();
}

bool IsMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = absl::ascii_isalpha(c) || c == '_' || c == ':' ||
                    (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(absl::string_view name) {
  if (name.empty() || name == "le" || absl::StartsWith(name, "__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c)))) {
      return false;
    }
  }
  return true;
}

void AtomicAddDouble(std::atomic<uint64_t>& bits, double delta) {
  uint64_t old = bits.load(std::memory_order_relaxed);
  while (!bits.compare_exchange_weak(old, DoubleBits(BitsDouble(old) + delta),
                                     std::memory_order_relaxed)) {
  }
}

absl::string_view TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` (with `extra` appended as a last pair, already formatted), or nothing
// without labels.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  absl::string_view extra, std::string* out) {
  if (names.empty() && extra.empty()) return;
  out->push_back('{');
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) {
    if (!names.empty()) out->push_back(',');
    out->append(extra.data(), extra.size());
  }
  out->push_back('}');
}

template <typename T>
std::unique_ptr<T> MakeSeries(const std::vector<double>& bounds);
template <>
std::unique_ptr<Counter> MakeSeries<Counter>(const std::vector<double>&) {
  return std::make_unique<Counter>();
}
template <>
std::unique_ptr<Gauge> MakeSeries<Gauge>(const std::vector<double>&) {
  return std::make_unique<Gauge>();
}
template <>
std::unique_ptr<Histogram> MakeSeries<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

void RenderSeries(const std::string& name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, const Counter& c, std::string* out) {
  out->append(name);
  AppendLabels(label_names, values, "", out);
  absl::StrAppend(out, " ", c.Value(), "\n");
}

void RenderSeries(const std::string& name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, const Gauge& g, std::string* out) {
  out->append(name);
  AppendLabels(label_names, values, "", out);
  absl::StrAppend(out, " ", FormatValue(g.Value()), "\n");
}

void RenderSeries(const std::string& name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, const Histogram& h,
                  std::string* out) {
  const Histogram::Counts counts = h.Read();
  for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
    const std::string le = absl::StrCat(
        "le=\"", i < h.bounds().size() ? FormatValue(h.bounds()[i]) : "+Inf", "\"");
    absl::StrAppend(out, name, "_bucket");
    AppendLabels(label_names, values, le, out);
    absl::StrAppend(out, " ", counts.cumulative[i], "\n");
  }
  absl::StrAppend(out, name, "_sum");
  AppendLabels(label_names, values, "", out);
  absl::StrAppend(out, " ", FormatValue(counts.sum), "\n");
  absl::StrAppend(out, name, "_count");
  AppendLabels(label_names, values, "", out);
  absl::StrAppend(out, " ", counts.count, "\n");
}

// A family whose samples a function returns at render time.
class CallbackFamily : public FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, Type type, std::vector<std::string> labels,
                 std::function<std::vector<Sample>()> collect)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        collect_(std::move(collect)) {}

  void RenderSamples(std::string* out) const override {
    for (const Sample& s : collect_()) {
      if (s.label_values.size() != label_names().size()) {
        Fatal(absl::StrCat(name(), ": a callback sample has ", s.label_values.size(),
                           " label values for ", label_names().size(), " labels"));
      }
      out->append(name());
      AppendLabels(label_names(), s.label_values, "", out);
      absl::StrAppend(out, " ", FormatValue(s.value), "\n");
    }
  }

 private:
  const std::function<std::vector<Sample>()> collect_;
};

}  // namespace

uint64_t Counter::Value() const {
  uint64_t total = 0;
  for (const internal::Line& cell : cells_) total += cell.v[0].load(std::memory_order_relaxed);
  return total;
}

void Gauge::Add(double delta) { AtomicAddDouble(bits_, delta); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      lines_per_shard_((bounds_.size() + 2 + 7) / 8),
      lines_(new internal::Line[kShards * lines_per_shard_]) {}

void Histogram::Observe(double value) {
  // The first bound >= value: buckets are "less than or equal".
  const std::size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  const int shard = internal::ShardIndex();
  Slot(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  AtomicAddDouble(Slot(shard, bounds_.size() + 1), value);
}

Histogram::Counts Histogram::Read() const {
  Counts counts;
  counts.cumulative.assign(bounds_.size() + 1, 0);
  for (int s = 0; s < kShards; ++s) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      counts.cumulative[i] += Slot(s, i).load(std::memory_order_relaxed);
    }
    counts.sum += BitsDouble(Slot(s, bounds_.size() + 1).load(std::memory_order_relaxed));
  }
  for (std::size_t i = 1; i < counts.cumulative.size(); ++i) {
    counts.cumulative[i] += counts.cumulative[i - 1];
  }
  counts.count = counts.cumulative.back();
  return counts;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

template <typename T>
T* Family<T>::Get(absl::Span<const absl::string_view> label_values) {
  if (label_values.size() != label_names().size()) {
    Fatal(absl::StrCat(name(), ": ", label_values.size(), " label values for labels (",
                       absl::StrJoin(label_names(), ", "), ")"));
  }
  std::vector<std::string> key(label_values.begin(), label_values.end());
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& series = series_[std::move(key)];
  if (series == nullptr) series = MakeSeries<T>(bounds_);
  return series.get();
}

template <typename T>
void Family<T>::RenderSamples(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [values, series] : series_) {
    RenderSeries(name(), label_names(), values, *series, out);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

FamilyBase* MetricRegistry::Find(absl::string_view name) const {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : it->second.get();
}

template <typename T>
Family<T>& MetricRegistry::Add(absl::string_view name, absl::string_view help, Type type,
                               std::vector<std::string> label_names,
                               std::vector<double> bounds) {
  if (!IsMetricName(name)) Fatal(absl::StrCat("\"", name, "\" is not a valid metric name"));
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) {
      Fatal(absl::StrCat(name, ": \"", label, "\" is not a valid label name"));
    }
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Fatal(absl::StrCat(name, ": bucket bounds must be finite and strictly increasing"));
    }
  }
  absl::MutexLock lock(&mu_);
  if (FamilyBase* existing = Find(name)) {
    auto* family = dynamic_cast<Family<T>*>(existing);
    if (family == nullptr || existing->type() != type ||
        existing->label_names() != label_names || family->bounds_ != bounds) {
      Fatal(absl::StrCat(name, ": registered already with another type, labels or buckets"));
    }
    return *family;
  }
  std::unique_ptr<Family<T>> family(new Family<T>(std::string(name), std::string(help), type,
                                                  std::move(label_names), std::move(bounds)));
  Family<T>& result = *family;
  families_.emplace(std::string(name), std::move(family));
  return result;
}

Family<Counter>& MetricRegistry::AddCounter(absl::string_view name, absl::string_view help,
                                            std::vector<std::string> label_names) {
  return Add<Counter>(name, help, Type::kCounter, std::move(label_names), {});
}

Family<Gauge>& MetricRegistry::AddGauge(absl::string_view name, absl::string_view help,
                                        std::vector<std::string> label_names) {
  return Add<Gauge>(name, help, Type::kGauge, std::move(label_names), {});
}

Family<Histogram>& MetricRegistry::AddHistogram(absl::string_view name, absl::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds) {
  return Add<Histogram>(name, help, Type::kHistogram, std::move(label_names),
                        std::move(bounds));
}

void MetricRegistry::AddCallback(absl::string_view name, absl::string_view help, Type type,
                                 std::vector<std::string> label_names,
                                 std::function<std::vector<Sample>()> collect) {
  if (!IsMetricName(name)) Fatal(absl::StrCat("\"", name, "\" is not a valid metric name"));
  if (type == Type::kHistogram) Fatal(absl::StrCat(name, ": callbacks are counters or gauges"));
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) {
      Fatal(absl::StrCat(name, ": \"", label, "\" is not a valid label name"));
    }
  }
  absl::MutexLock lock(&mu_);
  if (Find(name) != nullptr) Fatal(absl::StrCat(name, ": registered already"));
  families_.emplace(std::string(name),
                    std::make_unique<CallbackFamily>(std::string(name), std::string(help), type,
                                                     std::move(label_names),
                                                     std::move(collect)));
}

std::string MetricRegistry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family->help()), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family->type()), "\n");
    family->RenderSamples(&out);
  }
  return out;
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // Plain decimals ("0.0001", not "1e-04") where they stay short; exponents otherwise.
  char buffer[64];
  std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  if (r.ec == std::errc() && r.ptr - buffer <= 24) return std::string(buffer, r.ptr);
  r = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, r.ptr);
}

Family<Counter>& InterceptorRejections(MetricRegistry& registry) {
  return registry.AddCounter("gateway_interceptor_rejections_total",
                             "Calls rejected by the interceptor chain (authentication, quotas, "
                             "deadlines), by front end and status code.",
                             {"front_end", "code"});
}

}  // namespace gateway::metrics
