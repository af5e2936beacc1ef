#include "gateway/interceptors/rate_limiter.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(RateLimiter, AllowsABurstThenRejectsWithRetryAfter) {
  RateLimiter limiter({.requests = 10, .period = absl::Seconds(1), .burst = 3});
  EXPECT_EQ(limiter.Check("k", kT0).remaining, 2u);
  EXPECT_EQ(limiter.Check("k", kT0).remaining, 1u);
  RateLimiter::Decision third = limiter.Check("k", kT0);
  EXPECT_TRUE(third.allowed);
  EXPECT_EQ(third.remaining, 0u);
  RateLimiter::Decision fourth = limiter.Check("k", kT0);
  EXPECT_FALSE(fourth.allowed);
  EXPECT_EQ(fourth.retry_after, absl::Milliseconds(100));
  EXPECT_EQ(fourth.reset_after, absl::Milliseconds(300));
}

TEST(RateLimiter, RefillsAtTheConfiguredRate) {
  RateLimiter limiter({.requests = 10, .period = absl::Seconds(1), .burst = 1});
  EXPECT_TRUE(limiter.Check("k", kT0).allowed);
  EXPECT_FALSE(limiter.Check("k", kT0 + absl::Milliseconds(99)).allowed);
  EXPECT_TRUE(limiter.Check("k", kT0 + absl::Milliseconds(100)).allowed);
  EXPECT_FALSE(limiter.Check("k", kT0 + absl::Milliseconds(150)).allowed);
  EXPECT_TRUE(limiter.Check("k", kT0 + absl::Milliseconds(200)).allowed);
}

TEST(RateLimiter, RejectedCallsAreNotCounted) {
  RateLimiter limiter({.requests = 1, .period = absl::Seconds(1), .burst = 1});
  EXPECT_TRUE(limiter.Check("k", kT0).allowed);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.Check("k", kT0).allowed);
  EXPECT_TRUE(limiter.Check("k", kT0 + absl::Seconds(1)).allowed);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter({.requests = 1, .period = absl::Hours(1), .burst = 1});
  EXPECT_TRUE(limiter.Check("a", kT0).allowed);
  EXPECT_TRUE(limiter.Check("b", kT0).allowed);
  EXPECT_FALSE(limiter.Check("a", kT0).allowed);
}

TEST(RateLimiter, ExactlyBurstOfManyConcurrentCallsAreAllowed) {
  RateLimiter limiter({.requests = 50, .period = absl::Hours(1), .burst = 50});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (limiter.Check("shared", kT0).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 50);
}

TEST(RateLimiter, MemoryIsBoundedAndIdleKeysAreForgottenFirst) {
  RateLimiter limiter(
      {.requests = 1, .period = absl::Seconds(1), .burst = 1, .max_keys = 160});
  for (int i = 0; i < 10000; ++i) {
    limiter.Check(absl::StrCat("key", i), kT0 + absl::Milliseconds(i));
  }
  EXPECT_LE(limiter.size(), 160u);
  // Idle keys (bucket full again) are forgotten before a busy one, whose bucket is empty.
  RateLimiter busy({.requests = 1, .period = absl::Hours(1), .burst = 1, .max_keys = 1600});
  for (int i = 0; i < 5000; ++i) {
    busy.Check(absl::StrCat("idle", i), kT0 - absl::Hours(2));
  }
  EXPECT_TRUE(busy.Check("busy", kT0).allowed);
  for (int i = 0; i < 500; ++i) busy.Check(absl::StrCat("new", i), kT0);
  EXPECT_LE(busy.size(), 1600u);
  EXPECT_FALSE(busy.Check("busy", kT0).allowed);
}

}  // namespace
}  // namespace gateway
