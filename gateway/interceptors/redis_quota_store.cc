#include "gateway/interceptors/redis_quota_store.h"

#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval RedisTimeout(absl::Duration d) { return absl::ToTimeval(d); }

}  // namespace

// One Redis connection, used by one thread only.
class RedisQuotaStore::Connection {
 public:
  explicit Connection(const Options& options) : options_(options) {}
  ~Connection() { Close(); }

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
        const absl::Status lost = absl::UnavailableError(
            absl::StrCat("redis ", options_.address, ": ", context_->errstr));
        last_error_ = lost;
        Close();
        while (results.size() < batch.size()) results.push_back(lost);
        return;
      }
      Reply reply(static_cast<redisReply*>(raw));
      results.push_back(Decode(reply.get()));
    }
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

  const Options& options_;
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
  const int n = std::max(1, options.connections);
  for (int i = 0; i < n; ++i) {
    store->connections_.push_back(std::make_unique<Connection>(store->options_));
  }
  for (int i = 0; i < n; ++i) {
    Connection* c = store->connections_[i].get();
    store->threads_.emplace_back([s = store.get(), c] { s->Serve(c); });
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

void RedisQuotaStore::Serve(Connection* connection) {
  std::vector<Pending> batch;
  std::vector<absl::StatusOr<RateLimiter::Decision>> results;
  while (true) {
    batch.clear();
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &RedisQuotaStore::HasWork));
      if (stopping_) return;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    connection->Run(batch, results);
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }
}

}  // namespace gateway
