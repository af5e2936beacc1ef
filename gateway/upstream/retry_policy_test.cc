#include "gateway/upstream/retry_policy.h"

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace gateway::upstream {
namespace {

TEST(RetriesOn, OnlyTheListedCodes) {
  RetryPolicy policy;
  policy.retry_on = {absl::StatusCode::kUnavailable, absl::StatusCode::kResourceExhausted};
  EXPECT_TRUE(RetriesOn(policy, absl::StatusCode::kUnavailable));
  EXPECT_TRUE(RetriesOn(policy, absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(RetriesOn(policy, absl::StatusCode::kInternal));
  EXPECT_FALSE(RetriesOn(policy, absl::StatusCode::kOk));
}

TEST(RetryBackoff, FullJitterUnderAnExponentialCap) {
  RetryPolicy policy;
  policy.backoff_base = absl::Milliseconds(10);
  policy.backoff_max = absl::Milliseconds(35);
  absl::BitGen gen;
  absl::Duration largest[5];
  for (int retry = 1; retry <= 4; ++retry) {
    for (int i = 0; i < 2000; ++i) {
      const absl::Duration d = RetryBackoff(policy, retry, gen);
      ASSERT_GE(d, absl::ZeroDuration());
      largest[retry] = std::max(largest[retry], d);
    }
  }
  // Caps: 10, 20, 35 (40 capped), 35 ms; 2000 draws come close to each cap.
  EXPECT_LE(largest[1], absl::Milliseconds(10));
  EXPECT_GT(largest[1], absl::Milliseconds(9));
  EXPECT_LE(largest[2], absl::Milliseconds(20));
  EXPECT_GT(largest[2], absl::Milliseconds(18));
  EXPECT_LE(largest[3], absl::Milliseconds(35));
  EXPECT_GT(largest[3], absl::Milliseconds(32));
  EXPECT_LE(largest[4], absl::Milliseconds(35));
}

TEST(ParsePushback, DelayStopOrAbsent) {
  EXPECT_FALSE(ParsePushback({{"grpc-status", "14"}}).present);
  Pushback p = ParsePushback({{"grpc-retry-pushback-ms", "150"}});
  EXPECT_TRUE(p.present);
  EXPECT_FALSE(p.stop);
  EXPECT_EQ(p.delay, absl::Milliseconds(150));
  EXPECT_TRUE(ParsePushback({{"grpc-retry-pushback-ms", "-1"}}).stop);
  EXPECT_TRUE(ParsePushback({{"grpc-retry-pushback-ms", "soon"}}).stop);
}

TEST(BudgetAllows, ShareOfActiveRequestsWithAFloor) {
  RetryPolicy policy;
  policy.budget_percent = 20;
  policy.min_retry_concurrency = 3;
  EXPECT_TRUE(BudgetAllows(policy, 1, 0));
  EXPECT_TRUE(BudgetAllows(policy, 1, 2));
  EXPECT_FALSE(BudgetAllows(policy, 1, 3));    // the floor
  EXPECT_TRUE(BudgetAllows(policy, 100, 19));
  EXPECT_FALSE(BudgetAllows(policy, 100, 20));  // 20% of 100
}

}  // namespace
}  // namespace gateway::upstream
