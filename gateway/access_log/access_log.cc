#include "gateway/access_log/access_log.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace gateway::access_log {
namespace {

constexpr absl::string_view kNames[kFieldCount] = {
    "time",     "front_end", "protocol",   "method",     "path",     "grpc_method", "status",
    "grpc_status", "bytes_in", "bytes_out", "duration",   "ttfb",     "upstream",    "attempts",
    "caller_id", "request_id", "trace_id", "user_agent", "peer"};

constexpr char kHex[] = "0123456789abcdef";

constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

// splitmix64: a cheap generator, one per thread, seeded once from the system.
uint64_t NextRandom() {
  thread_local uint64_t state = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device() ^
           static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Bytes written as they are in a text field (printable ASCII but the quote and backslash).
bool PlainText(unsigned char b) { return b >= 0x20 && b <= 0x7e && b != '"' && b != '\\'; }

// Appends `s` with the runs of plain bytes as they are (the usual case: the whole value
// in one append) and every other byte through `escape`.
template <typename Escape>
void AppendEscaped(absl::string_view s, std::string* out, Escape escape) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && PlainText(static_cast<unsigned char>(s[j]))) ++j;
    out->append(s.data() + i, j - i);
    if (j == s.size()) break;
    escape(static_cast<unsigned char>(s[j]));
    i = j + 1;
  }
}

void AppendTextString(absl::string_view s, std::string* out) {
  if (s.empty()) {
    out->push_back('-');
    return;
  }
  out->push_back('"');
  AppendEscaped(s, out, [out](unsigned char b) {
    if (b == '"' || b == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(b));
    } else {
      out->append("\\x");
      out->push_back(kHex[b >> 4]);
      out->push_back(kHex[b & 0xf]);
    }
  });
  out->push_back('"');
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  AppendEscaped(s, out, [out](unsigned char b) {
    switch (b) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[b >> 4]);
        out->push_back(kHex[b & 0xf]);
    }
  });
  out->push_back('"');
}

// Seconds with six decimals ("0.000123"), as "%.6f" prints them, without printf.
void AppendSeconds(absl::Duration d, std::string* out) {
  const int64_t us = absl::ToInt64Microseconds(d);
  if (us < 0) {
    absl::StrAppendFormat(out, "%.6f", absl::ToDoubleSeconds(d));
    return;
  }
  char frac[7];
  int64_t rest = us % 1000000;
  for (int k = 5; k >= 0; --k) {
    frac[k] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  frac[6] = '\0';
  absl::StrAppend(out, us / 1000000, ".", frac);
}

// UTC with milliseconds ("2026-12-05T21:31:30.604Z"). The part up to the seconds is
// formatted once per second (one thread, the writer, formats lines).
void AppendTime(absl::Time t, std::string* out) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local std::string cached;
  const int64_t ms = absl::ToUnixMillis(t);
  int64_t second = ms / 1000;
  int64_t milli = ms % 1000;
  if (milli < 0) {  // before 1970
    milli += 1000;
    second -= 1;
  }
  if (second != cached_second) {
    cached = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second),
                              absl::UTCTimeZone());
    cached_second = second;
  }
  out->append(cached);
  const char tail[6] = {'.', static_cast<char>('0' + milli / 100),
                        static_cast<char>('0' + milli / 10 % 10),
                        static_cast<char>('0' + milli % 10), 'Z', '\0'};
  out->append(tail, 5);
}

// Appends the value of `field`: `json` picks the string and absent-value forms.
void AppendValue(const Record& r, Field field, bool json, std::string* out) {
  auto str = [&](absl::string_view s) {
    if (json) {
      AppendJsonString(s, out);
    } else {
      AppendTextString(s, out);
    }
  };
  auto none = [&] { out->append(json ? "null" : "-"); };
  switch (field) {
    case Field::kTime:
      if (json) out->push_back('"');
      AppendTime(r.time, out);
      if (json) out->push_back('"');
      return;
    case Field::kFrontEnd:
      return str(r.front_end);
    case Field::kProtocol:
      return str(r.protocol);
    case Field::kMethod:
      return str(r.method);
    case Field::kPath:
      return str(r.path);
    case Field::kGrpcMethod:
      return str(r.grpc_method);
    case Field::kStatus:
      return absl::StrAppend(out, r.status);
    case Field::kGrpcStatus:
      if (r.grpc_status < 0) return none();
      return absl::StrAppend(out, r.grpc_status);
    case Field::kBytesIn:
      return absl::StrAppend(out, r.bytes_in);
    case Field::kBytesOut:
      return absl::StrAppend(out, r.bytes_out);
    case Field::kDuration:
      return AppendSeconds(r.duration, out);
    case Field::kTtfb:
      if (r.ttfb == absl::InfiniteDuration()) return none();
      return AppendSeconds(r.ttfb, out);
    case Field::kUpstream:
      return str(r.upstream);
    case Field::kAttempts:
      return absl::StrAppend(out, r.attempts);
    case Field::kCallerId:
      return str(r.caller_id);
    case Field::kRequestId:
      return str(r.request_id);
    case Field::kTraceId:
      return str(r.trace_id);
    case Field::kUserAgent:
      return str(r.user_agent);
    case Field::kPeer:
      return str(r.peer);
  }
}

bool IsLowerHex(absl::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::string_view FieldName(Field field) { return kNames[static_cast<int>(field)]; }

std::vector<Field> AllFields() {
  std::vector<Field> fields;
  for (int i = 0; i < kFieldCount; ++i) fields.push_back(static_cast<Field>(i));
  return fields;
}

void AppendText(const Record& r, const std::vector<Field>& fields, std::string* out) {
  bool first = true;
  for (const Field f : fields) {
    if (!first) out->push_back(' ');
    first = false;
    AppendValue(r, f, /*json=*/false, out);
  }
  out->push_back('\n');
}

void AppendJson(const Record& r, const std::vector<Field>& fields, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const Field f : fields) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    const absl::string_view name = FieldName(f);
    out->append(name.data(), name.size());
    out->append("\":");
    AppendValue(r, f, /*json=*/true, out);
  }
  out->append("}\n");
}

std::string NewRequestId() {
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = NextRandom();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = kHex[bits & 0xf];
  }
  return id;
}

absl::string_view TraceIdFromTraceparent(absl::string_view v) {
  // version "-" trace-id "-" parent-id "-" flags; future versions may append fields.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return {};
  const absl::string_view version = v.substr(0, 2);
  const absl::string_view trace = v.substr(3, 32);
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace) ||
      !IsLowerHex(v.substr(36, 16)) || !IsLowerHex(v.substr(53, 2))) {
    return {};
  }
  if (trace == "00000000000000000000000000000000") return {};
  return trace;
}

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Start(const Options& options) {
  FILE* out = stdout;
  if (!options.path.empty()) {
    out = std::fopen(options.path.c_str(), "a");
    if (out == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "access_log.path: cannot open ", options.path, " for appending: ",
          std::strerror(errno)));
    }
  }
  std::unique_ptr<AccessLog> log(new AccessLog(options, out));
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AccessLog::AccessLog(const Options& options, FILE* out)
    : options_(options),
      fields_(options.fields.empty() ? AllFields() : options.fields),
      out_(out) {
  queue_.reserve(std::min<size_t>(options_.queue_size, 1024));
}

AccessLog::~AccessLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  if (out_ != nullptr && out_ != stdout) std::fclose(out_);
}

bool AccessLog::Sample(bool error) const {
  if (options_.sample_rate >= 1.0) return true;
  if (error && !options_.sample_errors) return true;
  if (options_.sample_rate <= 0.0) return false;
  // 53 random bits as a double in [0, 1).
  return static_cast<double>(NextRandom() >> 11) * 0x1.0p-53 < options_.sample_rate;
}

void AccessLog::Push(Record&& record) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.queue_size) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(std::move(record));
}

void AccessLog::Reopen() {
  absl::MutexLock lock(&mu_);
  reopen_ = true;
  wake_.Signal();
}

void AccessLog::Flush() {
  absl::MutexLock lock(&mu_);
  wake_.Signal();
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (queue_.empty() && !busy_ && !reopen_) || stopping_;
  };
  mu_.Await(absl::Condition(&idle));
}

void AccessLog::Run() {
  pthread_setname_np(pthread_self(), "gw-access-log");
  // A closed pipe (stdout piped to a reader that went away) fails the write with EPIPE
  // instead of ending the process: SIGPIPE is raised in the writing thread, where it stays
  // blocked.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  std::vector<Record> batch;
  while (true) {
    bool reopen = false;
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      // Push never wakes the writer (a worker must not pay for a wake-up): the writer looks
      // at the queue every kPollInterval, or when Reopen, Flush or the destructor call.
      if (queue_.empty() && !reopen_ && !stopping_) wake_.WaitWithTimeout(&mu_, kPollInterval);
      batch.swap(queue_);
      reopen = reopen_;
      reopen_ = false;
      stop = stopping_;
      busy_ = true;
    }
    if (!batch.empty()) {
      Write(batch);
      written_.fetch_add(batch.size(), std::memory_order_relaxed);
      batch.clear();
    }
    std::fflush(out_);
    if (reopen && out_ != stdout) {
      FILE* reopened = std::fopen(options_.path.c_str(), "a");
      if (reopened != nullptr) {
        std::fclose(out_);
        out_ = reopened;
      } else {
        // Keep writing to the old file rather than lose lines.
        std::fprintf(stderr, "gatewayd: access_log: cannot reopen %s: %s\n",
                     options_.path.c_str(), std::strerror(errno));
      }
    }
    absl::MutexLock lock(&mu_);
    busy_ = false;
    if (stop && queue_.empty()) return;
  }
}

void AccessLog::Write(const std::vector<Record>& batch) {
  std::string buffer;
  buffer.reserve(256 * std::min<size_t>(batch.size(), 256));
  for (const Record& r : batch) {
    if (options_.format == Format::kJson) {
      AppendJson(r, fields_, &buffer);
    } else {
      AppendText(r, fields_, &buffer);
    }
    if (buffer.size() >= 64 * 1024) {
      std::fwrite(buffer.data(), 1, buffer.size(), out_);
      buffer.clear();
    }
  }
  std::fwrite(buffer.data(), 1, buffer.size(), out_);
}

}  // namespace gateway::access_log
