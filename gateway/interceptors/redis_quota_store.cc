#include "gateway/interceptors/redis_quota_store.h"

#include <pthread.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/metrics/metrics.h"
#include "hiredis/hiredis.h"

namespace gateway {
namespace {

// GCRA in Redis. KEYS[1]: the key. ARGV[1]: interval (us). ARGV[2]: tolerance (us).
// Returns {allowed (0/1), remaining, retry_after_us, reset_after_us}. Times are Redis's
// own (TIME), in microseconds; doubles hold them exactly (< 2^53).
constexpr char kScript[] = R"lua(
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if now < tat - tolerance then
  return {0, 0, tat - tolerance - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.floor((new_tat - now) / 1000) + 1)
local room = now + tolerance - new_tat
local remaining = 0
if room >= 0 then remaining = math.floor(room / interval) + 1 end
return {1, remaining, 0, new_tat - now}
)lua";

constexpr int kMaxBatch = 128;
constexpr absl::Duration kReconnectBackoff = absl::Seconds(1);
constexpr absl::Duration kProbeInterval = absl::Seconds(5);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval RedisTimeout(absl::Duration d) { return absl::ToTimeval(d); }

}  // namespace

// One Redis connection, used by one thread only.
class RedisQuotaStore::Connection {
 public:
  Connection(const Options& options, const Metrics& metrics)
      : options_(options), metrics_(metrics) {}
  ~Connection() { Close(); }

  // While idle: connects (unless waiting to retry) or PINGs, and sets the up gauge.
  void Probe() {
    absl::Status status = Ensure();
    if (status.ok()) {
      Reply reply(static_cast<redisReply*>(redisCommand(context_, "PING")));
      if (reply == nullptr) {
        last_error_ = absl::UnavailableError(
            absl::StrCat("redis ", options_.address, ": ", context_->errstr));
        Close();
        status = last_error_;
      }
    }
    SetUp(status.ok());
  }

  // Connected and the script loaded, or the reason why not.
  absl::Status Ensure() {
    if (context_ != nullptr) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now < retry_at_) return last_error_;
    retry_at_ = now + kReconnectBackoff;
    const timeval tv = RedisTimeout(options_.timeout);
    redisContext* c;
    if (absl::StartsWith(options_.address, "unix:")) {
      c = redisConnectUnixWithTimeout(options_.address.substr(5).c_str(), tv);
    } else {
      const std::size_t colon = options_.address.rfind(':');
      std::string host = options_.address.substr(0, colon);
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      int port = 0;
      absl::SimpleAtoi(options_.address.substr(colon + 1), &port);
      c = redisConnectWithTimeout(host.c_str(), port, tv);
    }
    if (c == nullptr || c->err) {
      last_error_ = absl::UnavailableError(
          absl::StrCat("redis ", options_.address, ": ", c ? c->errstr : "out of memory"));
      if (c) redisFree(c);
      return last_error_;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    context_ = c;
    Reply reply(static_cast<redisReply*>(redisCommand(context_, "SCRIPT LOAD %s", kScript)));
    if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
      last_error_ = absl::UnavailableError(absl::StrCat(
          "redis ", options_.address, ": cannot load the quota script: ",
          reply ? std::string(reply->str ? reply->str : "") : std::string(context_->errstr)));
      Close();
      return last_error_;
    }
    sha_.assign(reply->str, reply->len);
    return absl::OkStatus();
  }

  // Runs the checks of `batch` pipelined; fills `results` in order.
  void Run(std::vector<Pending>& batch,
           std::vector<absl::StatusOr<RateLimiter::Decision>>& results) {
    results.clear();
    absl::Status status = Ensure();
    if (!status.ok()) {
      results.assign(batch.size(), status);
      CountFailures(FailureKind::kConnect, batch.size());
      return;
    }
    for (const Pending& p : batch) {
      const std::string interval = absl::StrCat(p.interval_us);
      const std::string tolerance = absl::StrCat(p.tolerance_us);
      const char* argv[] = {"EVALSHA", sha_.c_str(), "1", p.key.c_str(), interval.c_str(),
                            tolerance.c_str()};
      const size_t lens[] = {7, sha_.size(), 1, p.key.size(), interval.size(),
                             tolerance.size()};
      redisAppendCommandArgv(context_, 6, argv, lens);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(context_, &raw) != REDIS_OK) {
        // hiredis reports a read timeout as an I/O error with errno EAGAIN.
        const bool timed_out = context_->err == REDIS_ERR_IO &&
                               (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT);
        const absl::Status lost = absl::UnavailableError(
            timed_out ? absl::StrCat("redis ", options_.address, ": no reply within ",
                                     absl::FormatDuration(options_.timeout))
                      : absl::StrCat("redis ", options_.address, ": ", context_->errstr));
        last_error_ = lost;
        Close();
        CountFailures(timed_out ? FailureKind::kTimeout : FailureKind::kError,
                      batch.size() - results.size());
        while (results.size() < batch.size()) results.push_back(lost);
        SetUp(false);
        return;
      }
      Reply reply(static_cast<redisReply*>(raw));
      results.push_back(Decode(reply.get()));
      if (!results.back().ok()) CountFailures(FailureKind::kError, 1);
    }
    SetUp(context_ != nullptr);
  }

 private:
  absl::StatusOr<RateLimiter::Decision> Decode(const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) {
      // NOSCRIPT after a Redis restart: reload on the next batch.
      if (absl::StartsWith(absl::string_view(r->str, r->len), "NOSCRIPT")) Close();
      return absl::UnavailableError(
          absl::StrCat("redis ", options_.address, ": ", absl::string_view(r->str, r->len)));
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
      return absl::InternalError(absl::StrCat("redis ", options_.address,
                                              ": unexpected reply to the quota script"));
    }
    for (std::size_t i = 0; i < 4; ++i) {
      if (r->element[i]->type != REDIS_REPLY_INTEGER) {
        return absl::InternalError(absl::StrCat("redis ", options_.address,
                                                ": unexpected reply to the quota script"));
      }
    }
    RateLimiter::Decision d;
    d.allowed = r->element[0]->integer == 1;
    d.remaining = static_cast<uint64_t>(std::max<long long>(0, r->element[1]->integer));
    d.retry_after = absl::Microseconds(r->element[2]->integer);
    d.reset_after = absl::Microseconds(r->element[3]->integer);
    return d;
  }

  void Close() {
    if (context_ != nullptr) redisFree(context_);
    context_ = nullptr;
  }

  void CountFailures(FailureKind kind, std::size_t n) {
    metrics::Counter* counter = metrics_.failures[static_cast<int>(kind)];
    if (counter != nullptr) counter->Add(n);
    if (kind == FailureKind::kConnect) SetUp(false);
  }

  void SetUp(bool up) {
    if (metrics_.up != nullptr) metrics_.up->Set(up ? 1 : 0);
  }

  const Options& options_;
  const Metrics& metrics_;
  redisContext* context_ = nullptr;
  std::string sha_;
  absl::Time retry_at_ = absl::InfinitePast();
  absl::Status last_error_;
};

RedisQuotaStore::RedisQuotaStore(const Options& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<RedisQuotaStore>> RedisQuotaStore::Create(
    const Options& options) {
  const std::string& a = options.address;
  if (!absl::StartsWith(a, "unix:")) {
    const std::size_t colon = a.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(a.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", a, "\" is not HOST:PORT or unix:/path"));
    }
  } else if (a.size() == 5) {
    return absl::InvalidArgumentError("unix: needs a socket path");
  }
  std::unique_ptr<RedisQuotaStore> store(new RedisQuotaStore(options));
  if (options.metrics != nullptr) {
    metrics::MetricRegistry& m = *options.metrics;
    Metrics& series = store->metrics_;
    series.checks = m.AddCounter("gateway_quota_redis_checks_total",
                                 "Shared quota checks answered by the Redis quota store, "
                                 "whatever the outcome.")
                        .Get({});
    metrics::Family<metrics::Counter>& failures = m.AddCounter(
        "gateway_quota_redis_failures_total",
        "Shared quota checks that failed, by kind: connect (no connection), timeout (no "
        "reply in time), error (connection lost, error or unexpected reply).",
        {"kind"});
    series.failures[static_cast<int>(FailureKind::kConnect)] = failures.Get({"connect"});
    series.failures[static_cast<int>(FailureKind::kTimeout)] = failures.Get({"timeout"});
    series.failures[static_cast<int>(FailureKind::kError)] = failures.Get({"error"});
    series.up = m.AddGauge("gateway_quota_redis_up",
                           "1 when the last exchange with the Redis quota store succeeded, "
                           "0 when it failed.")
                    .Get({});
    metrics::Family<metrics::Counter>& decisions = m.AddCounter(
        "gateway_quota_redis_failure_decisions_total",
        "Calls under shared quotas decided by the failure mode because the Redis quota "
        "store failed: let through (fail_open) or rejected (fail_closed).",
        {"decision"});
    series.fail_open = decisions.Get({"fail_open"});
    series.fail_closed = decisions.Get({"fail_closed"});
  }
  const int n = std::max(1, options.connections);
  for (int i = 0; i < n; ++i) {
    store->connections_.push_back(
        std::make_unique<Connection>(store->options_, store->metrics_));
  }
  for (int i = 0; i < n; ++i) {
    Connection* c = store->connections_[i].get();
    store->threads_.emplace_back([s = store.get(), c] {
      pthread_setname_np(pthread_self(), "gw-redis-quota");
      s->Serve(c);
    });
  }
  return store;
}

RedisQuotaStore::~RedisQuotaStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  std::deque<Pending> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (Pending& p : left) p.done(absl::UnavailableError("the quota store is shutting down"));
}

void RedisQuotaStore::Check(std::string key, absl::Duration interval, absl::Duration tolerance,
                            Callback done) {
  Pending p{std::move(key), std::max<int64_t>(1, absl::ToInt64Microseconds(interval)),
            absl::ToInt64Microseconds(tolerance), std::move(done)};
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(p));
}

void RedisQuotaStore::CountFailureDecision(bool fail_open) const {
  metrics::Counter* counter = fail_open ? metrics_.fail_open : metrics_.fail_closed;
  if (counter != nullptr) counter->Increment();
}

void RedisQuotaStore::Serve(Connection* connection) {
  std::vector<Pending> batch;
  std::vector<absl::StatusOr<RateLimiter::Decision>> results;
  connection->Probe();
  while (true) {
    batch.clear();
    {
      absl::MutexLock lock(&mu_);
      const bool woken =
          mu_.AwaitWithTimeout(absl::Condition(this, &RedisQuotaStore::HasWork), kProbeInterval);
      if (stopping_) return;
      while (woken && !queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty()) {
      connection->Probe();
      continue;
    }
    connection->Run(batch, results);
    if (metrics_.checks != nullptr) metrics_.checks->Add(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }
}

}  // namespace gateway
