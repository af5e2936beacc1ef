// RedisQuotaStore against a fake Redis on loopback (it speaks just enough RESP: SCRIPT LOAD,
// EVALSHA, PING), to check the outcome of a check and the metrics of each kind of failure.
// tests/shared_quota_test.py runs the store against a real redis-server.

#include "gateway/interceptors/redis_quota_store.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gateway/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

// What the fake answers to EVALSHA (SCRIPT LOAD and PING are always answered).
enum class EvalReply { kAllow, kSilence, kError };

class FakeRedis {
 public:
  explicit FakeRedis(EvalReply eval) : eval_(eval) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        handlers_.emplace_back([this, c] { Serve(c); });
      }
    });
  }

  ~FakeRedis() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    for (std::thread& t : handlers_) t.join();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int evals() const { return evals_.load(); }

 private:
  // Reads RESP arrays of bulk strings; answers each command until the client closes.
  void Serve(int c) {
    std::string in;
    char chunk[4096];
    while (true) {
      std::vector<std::string> command;
      while (!Parse(&in, &command)) {
        const ssize_t n = read(c, chunk, sizeof chunk);
        if (n <= 0) {
          close(c);
          return;
        }
        in.append(chunk, n);
      }
      std::string reply;
      if (command[0] == "SCRIPT") {
        reply = absl::StrCat("$40\r\n", std::string(40, 'a'), "\r\n");
      } else if (command[0] == "PING") {
        reply = "+PONG\r\n";
      } else if (command[0] == "EVALSHA") {
        ++evals_;
        if (eval_ == EvalReply::kAllow) reply = "*4\r\n:1\r\n:7\r\n:0\r\n:1000\r\n";
        if (eval_ == EvalReply::kError) reply = "-ERR boom\r\n";
      }
      if (!reply.empty() && write(c, reply.data(), reply.size()) < 0) {
        close(c);
        return;
      }
    }
  }

  // One command from the front of `in` (consumed), or false when it is incomplete.
  static bool Parse(std::string* in, std::vector<std::string>* out) {
    out->clear();
    std::size_t pos = 0;
    auto line = [&](std::string* text) {
      const std::size_t end = in->find("\r\n", pos);
      if (end == std::string::npos) return false;
      *text = in->substr(pos, end - pos);
      pos = end + 2;
      return true;
    };
    std::string header;
    int count = 0;
    if (!line(&header) || header.empty() || header[0] != '*' ||
        !absl::SimpleAtoi(header.substr(1), &count)) {
      return false;
    }
    for (int i = 0; i < count; ++i) {
      int size = 0;
      if (!line(&header) || header.empty() || header[0] != '$' ||
          !absl::SimpleAtoi(header.substr(1), &size) || in->size() < pos + size + 2) {
        return false;
      }
      out->push_back(in->substr(pos, size));
      pos += size + 2;
    }
    in->erase(0, pos);
    return true;
  }

  const EvalReply eval_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> evals_{0};
  std::thread acceptor_;
  std::vector<std::thread> handlers_;  // only on acceptor_, joined after it
};

absl::StatusOr<RateLimiter::Decision> CheckOnce(RedisQuotaStore& store) {
  absl::Notification done;
  absl::StatusOr<RateLimiter::Decision> result;
  store.Check("gateway:quota:rule:alice", absl::Milliseconds(100), absl::Seconds(1),
              [&](absl::StatusOr<RateLimiter::Decision> d) {
                result = std::move(d);
                done.Notify();
              });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return result;
}

std::unique_ptr<RedisQuotaStore> Store(const std::string& address,
                                       metrics::MetricRegistry* registry,
                                       absl::Duration timeout = absl::Milliseconds(250)) {
  RedisQuotaStore::Options options;
  options.address = address;
  options.connections = 1;
  options.timeout = timeout;
  options.metrics = registry;
  absl::StatusOr<std::unique_ptr<RedisQuotaStore>> store = RedisQuotaStore::Create(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return *std::move(store);
}

TEST(RedisQuotaStore, AnsweredCheckIsDecodedAndCountedWithTheStoreUp) {
  FakeRedis redis(EvalReply::kAllow);
  metrics::MetricRegistry registry;
  std::unique_ptr<RedisQuotaStore> store = Store(redis.address(), &registry);
  absl::StatusOr<RateLimiter::Decision> d = CheckOnce(*store);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->allowed);
  EXPECT_EQ(d->remaining, 7u);
  EXPECT_EQ(d->reset_after, absl::Microseconds(1000));
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("\ngateway_quota_redis_checks_total 1\n"));
  EXPECT_THAT(page, HasSubstr("gateway_quota_redis_failures_total{kind=\"connect\"} 0\n"
                              "gateway_quota_redis_failures_total{kind=\"error\"} 0\n"
                              "gateway_quota_redis_failures_total{kind=\"timeout\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("\ngateway_quota_redis_up 1\n"));
}

TEST(RedisQuotaStore, NothingListeningIsAConnectFailure) {
  int port;
  {
    FakeRedis gone(EvalReply::kAllow);  // a port that was free a moment ago
    port = std::stoi(gone.address().substr(10));
  }
  metrics::MetricRegistry registry;
  std::unique_ptr<RedisQuotaStore> store =
      Store(absl::StrCat("127.0.0.1:", port), &registry);
  absl::StatusOr<RateLimiter::Decision> d = CheckOnce(*store);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("gateway_quota_redis_failures_total{kind=\"connect\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("\ngateway_quota_redis_checks_total 1\n"));
  EXPECT_THAT(page, HasSubstr("\ngateway_quota_redis_up 0\n"));
}

TEST(RedisQuotaStore, NoReplyInTimeIsATimeoutNamedInTheError) {
  FakeRedis redis(EvalReply::kSilence);
  metrics::MetricRegistry registry;
  std::unique_ptr<RedisQuotaStore> store =
      Store(redis.address(), &registry, absl::Milliseconds(100));
  absl::StatusOr<RateLimiter::Decision> d = CheckOnce(*store);
  EXPECT_EQ(d.status(), absl::UnavailableError(absl::StrCat(
                            "redis ", redis.address(), ": no reply within 100ms")));
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("gateway_quota_redis_failures_total{kind=\"timeout\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("\ngateway_quota_redis_up 0\n"));
}

TEST(RedisQuotaStore, ErrorReplyIsAnErrorFailure) {
  FakeRedis redis(EvalReply::kError);
  metrics::MetricRegistry registry;
  std::unique_ptr<RedisQuotaStore> store = Store(redis.address(), &registry);
  absl::StatusOr<RateLimiter::Decision> d = CheckOnce(*store);
  EXPECT_EQ(d.status(),
            absl::UnavailableError(absl::StrCat("redis ", redis.address(), ": ERR boom")));
  EXPECT_EQ(redis.evals(), 1);
  EXPECT_THAT(registry.Render(),
              HasSubstr("gateway_quota_redis_failures_total{kind=\"error\"} 1\n"));
}

TEST(RedisQuotaStore, FailureDecisionsAreCountedByMode) {
  FakeRedis redis(EvalReply::kAllow);
  metrics::MetricRegistry registry;
  std::unique_ptr<RedisQuotaStore> store = Store(redis.address(), &registry);
  store->CountFailureDecision(true);
  store->CountFailureDecision(true);
  store->CountFailureDecision(false);
  EXPECT_THAT(registry.Render(),
              HasSubstr("gateway_quota_redis_failure_decisions_total{decision=\"fail_closed\"} 1\n"
                        "gateway_quota_redis_failure_decisions_total{decision=\"fail_open\"} 2\n"));
}

TEST(RedisQuotaStore, WithoutMetricsNothingIsCounted) {
  FakeRedis redis(EvalReply::kAllow);
  std::unique_ptr<RedisQuotaStore> store = Store(redis.address(), nullptr);
  EXPECT_TRUE(CheckOnce(*store).ok());
  store->CountFailureDecision(true);  // no metrics: a no-op
}

}  // namespace
}  // namespace gateway
