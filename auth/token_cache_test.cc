#include "auth/token_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "auth/jwt.h"
#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::shared_ptr<const VerifiedJwt> Jwt(absl::string_view sub) {
  auto jwt = std::make_shared<VerifiedJwt>();
  jwt->subject = std::string(sub);
  return jwt;
}

TEST(TokenCache, HitReturnsStoredValue) {
  TokenCache cache({100, 4});
  const auto key = TokenCache::KeyFor("token-a");
  EXPECT_EQ(cache.Lookup(key, 1, kNow), nullptr);
  auto value = Jwt("a");
  cache.Insert(key, 1, kNow + absl::Minutes(5), value);
  EXPECT_EQ(cache.Lookup(key, 1, kNow), value);
  EXPECT_EQ(cache.Lookup(TokenCache::KeyFor("token-b"), 1, kNow), nullptr);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(TokenCache, EntryExpires) {
  TokenCache cache({100, 4});
  const auto key = TokenCache::KeyFor("t");
  cache.Insert(key, 1, kNow + absl::Seconds(10), Jwt("a"));
  EXPECT_NE(cache.Lookup(key, 1, kNow + absl::Seconds(9)), nullptr);
  EXPECT_EQ(cache.Lookup(key, 1, kNow + absl::Seconds(10)), nullptr);
  EXPECT_EQ(cache.size(), 0u);  // the stale entry was dropped
}

TEST(TokenCache, OtherGenerationMisses) {
  TokenCache cache({100, 4});
  const auto key = TokenCache::KeyFor("t");
  cache.Insert(key, 1, kNow + absl::Hours(1), Jwt("a"));
  EXPECT_EQ(cache.Lookup(key, 2, kNow), nullptr);
  EXPECT_EQ(cache.Lookup(key, 1, kNow), nullptr);  // dropped on the miss
  cache.Insert(key, 2, kNow + absl::Hours(1), Jwt("b"));
  EXPECT_EQ(cache.Lookup(key, 2, kNow)->subject, "b");
}

TEST(TokenCache, BoundedWithLeastRecentlyUsedEviction) {
  TokenCache cache({3, 1});
  for (int i = 0; i < 3; ++i) {
    cache.Insert(TokenCache::KeyFor(absl::StrCat("t", i)), 1, kNow + absl::Hours(1),
                 Jwt(absl::StrCat(i)));
  }
  // Touch t0 so that t1 is the least recently used.
  ASSERT_NE(cache.Lookup(TokenCache::KeyFor("t0"), 1, kNow), nullptr);
  cache.Insert(TokenCache::KeyFor("t3"), 1, kNow + absl::Hours(1), Jwt("3"));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Lookup(TokenCache::KeyFor("t1"), 1, kNow), nullptr);
  EXPECT_NE(cache.Lookup(TokenCache::KeyFor("t0"), 1, kNow), nullptr);
  EXPECT_NE(cache.Lookup(TokenCache::KeyFor("t2"), 1, kNow), nullptr);
  EXPECT_NE(cache.Lookup(TokenCache::KeyFor("t3"), 1, kNow), nullptr);
}

TEST(TokenCache, SizeStaysBoundedAcrossShards) {
  TokenCache cache({64, 8});
  for (int i = 0; i < 1000; ++i) {
    cache.Insert(TokenCache::KeyFor(absl::StrCat("t", i)), 1, kNow + absl::Hours(1), Jwt("x"));
  }
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GT(cache.size(), 32u);
}

TEST(TokenCache, InsertReplacesExistingEntry) {
  TokenCache cache({10, 1});
  const auto key = TokenCache::KeyFor("t");
  cache.Insert(key, 1, kNow + absl::Hours(1), Jwt("a"));
  cache.Insert(key, 1, kNow + absl::Hours(1), Jwt("b"));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Lookup(key, 1, kNow)->subject, "b");
}

TEST(TokenCache, ClearDropsEverything) {
  TokenCache cache({10, 2});
  cache.Insert(TokenCache::KeyFor("a"), 1, kNow + absl::Hours(1), Jwt("a"));
  cache.Insert(TokenCache::KeyFor("b"), 1, kNow + absl::Hours(1), Jwt("b"));
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Lookup(TokenCache::KeyFor("a"), 1, kNow), nullptr);
}

TEST(TokenCache, ZeroCapacityDisablesCaching) {
  TokenCache cache({0, 4});
  cache.Insert(TokenCache::KeyFor("a"), 1, kNow + absl::Hours(1), Jwt("a"));
  EXPECT_EQ(cache.Lookup(TokenCache::KeyFor("a"), 1, kNow), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TokenCache, ConcurrentLookupsAndInserts) {
  TokenCache cache({128, 4});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto key = TokenCache::KeyFor(absl::StrCat("t", (i * 7 + t) % 300));
        if (cache.Lookup(key, 1, kNow) == nullptr) {
          cache.Insert(key, 1, kNow + absl::Hours(1), Jwt("x"));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(cache.size(), 128u);
}

}  // namespace
}  // namespace gateway::auth
