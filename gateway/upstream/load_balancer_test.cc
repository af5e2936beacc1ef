#include "gateway/upstream/load_balancer.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gateway::upstream {
namespace {

struct Fake {
  uint32_t weight = 1;
  int64_t load = 0;
  bool eligible = true;
};

class FakeCandidates : public LoadBalancer::Candidates {
 public:
  explicit FakeCandidates(std::vector<Fake> e) : e_(std::move(e)) {}
  size_t size() const override { return e_.size(); }
  uint32_t weight(size_t i) const override { return e_[i].weight; }
  int64_t load(size_t i) const override { return e_[i].load; }
  bool eligible(size_t i) const override { return e_[i].eligible; }
  Fake& operator[](size_t i) { return e_[i]; }

 private:
  std::vector<Fake> e_;
};

std::vector<int> Count(LoadBalancer& lb, const FakeCandidates& c, int picks, uint64_t version = 1,
                       std::optional<size_t> avoid = std::nullopt) {
  std::vector<int> n(c.size(), 0);
  for (int k = 0; k < picks; ++k) {
    auto i = lb.Pick(c, version, avoid);
    EXPECT_TRUE(i.has_value());
    if (i) ++n[*i];
  }
  return n;
}

TEST(RoundRobin, WeightsOneTwoThreeGiveExactSharesOver600Picks) {
  FakeCandidates c({{1}, {2}, {3}});
  auto lb = LoadBalancer::RoundRobin(/*randomize_start=*/false);
  EXPECT_EQ(Count(*lb, c, 600), (std::vector<int>{100, 200, 300}));
}

TEST(RoundRobin, RandomStartKeepsExactSharesOverWholeRounds) {
  FakeCandidates c({{1}, {2}, {3}});
  for (int run = 0; run < 20; ++run) {
    auto lb = LoadBalancer::RoundRobin(/*randomize_start=*/true);
    EXPECT_EQ(Count(*lb, c, 600), (std::vector<int>{100, 200, 300}));
  }
}

TEST(RoundRobin, InterleavesInsteadOfBursts) {
  FakeCandidates c({{1}, {2}, {3}});
  auto lb = LoadBalancer::RoundRobin(false);
  std::string seq;
  for (int k = 0; k < 12; ++k) seq += static_cast<char>('A' + *lb->Pick(c, 1, std::nullopt));
  EXPECT_EQ(seq, "CBACBCCBACBC");
}

TEST(RoundRobin, EqualWeightsRotate) {
  FakeCandidates c({{1}, {1}, {1}});
  auto lb = LoadBalancer::RoundRobin(false);
  std::string seq;
  for (int k = 0; k < 6; ++k) seq += static_cast<char>('A' + *lb->Pick(c, 1, std::nullopt));
  EXPECT_EQ(seq, "ABCABC");
}

TEST(RoundRobin, SkipsIneligibleAndSharesAmongTheRest) {
  FakeCandidates c({{1}, {2}, {3}});
  c[2].eligible = false;
  auto lb = LoadBalancer::RoundRobin(false);
  EXPECT_EQ(Count(*lb, c, 300), (std::vector<int>{100, 200, 0}));
}

TEST(RoundRobin, NoEligibleEndpointIsNullopt) {
  FakeCandidates c({{1, 0, false}, {1, 0, false}});
  auto lb = LoadBalancer::RoundRobin(false);
  EXPECT_EQ(lb->Pick(c, 1, std::nullopt), std::nullopt);
  FakeCandidates empty({});
  EXPECT_EQ(lb->Pick(empty, 2, std::nullopt), std::nullopt);
}

TEST(RoundRobin, CopesWithANewEndpointSet) {
  FakeCandidates three({{1}, {2}, {3}});
  auto lb = LoadBalancer::RoundRobin(false);
  Count(*lb, three, 7, /*version=*/1);
  // The set shrinks to two endpoints (indices now mean other endpoints): the state is reset.
  FakeCandidates two({{1}, {1}});
  EXPECT_EQ(Count(*lb, two, 10, /*version=*/2), (std::vector<int>{5, 5}));
  // A set of the same size under a new version: shares from a fresh start.
  FakeCandidates other({{3}, {1}});
  EXPECT_EQ(Count(*lb, other, 400, /*version=*/3), (std::vector<int>{300, 100}));
}

TEST(RoundRobin, AvoidIsRespectedWhenAnotherIsEligible) {
  FakeCandidates c({{1}, {1}, {1}});
  auto lb = LoadBalancer::RoundRobin(false);
  EXPECT_EQ(Count(*lb, c, 100, 1, /*avoid=*/1)[1], 0);
  c[0].eligible = false;
  c[2].eligible = false;
  // The avoided endpoint is the only one left: it is used.
  EXPECT_EQ(lb->Pick(c, 1, 1), std::optional<size_t>(1));
}

TEST(LeastRequest, PrefersTheLessLoaded) {
  FakeCandidates c({{1, 10}, {1, 0}, {1, 10}});
  auto lb = LoadBalancer::LeastRequest();
  // Endpoint 1 is in 2 of the 3 possible pairs and wins each: 2/3 of the picks; the others
  // win only against each other (1/6 each).
  const std::vector<int> n = Count(*lb, c, 3000);
  EXPECT_GT(n[1], 1800);
  EXPECT_LT(n[1], 2200);
  EXPECT_GT(n[0], 300);
  EXPECT_GT(n[2], 300);
}

TEST(LeastRequest, TwoEndpointsAlwaysTheLessLoaded) {
  FakeCandidates c({{1, 5}, {1, 4}});
  auto lb = LoadBalancer::LeastRequest();
  EXPECT_EQ(Count(*lb, c, 200), (std::vector<int>{0, 200}));
}

TEST(LeastRequest, ComparesLoadPerWeight) {
  // 6/3 = 2 < 3/1 = 3: the heavier endpoint wins despite more calls in flight.
  FakeCandidates c({{3, 6}, {1, 3}});
  auto lb = LoadBalancer::LeastRequest();
  EXPECT_EQ(Count(*lb, c, 200), (std::vector<int>{200, 0}));
}

TEST(LeastRequest, OnlyEligibleAndAvoid) {
  FakeCandidates c({{1, 0, false}, {1, 50}, {1, 0}});
  auto lb = LoadBalancer::LeastRequest();
  // Index 0 is idle but not eligible; index 2 is avoided: only index 1 is left.
  EXPECT_EQ(Count(*lb, c, 100, 1, /*avoid=*/2), (std::vector<int>{0, 100, 0}));
  c[1].eligible = false;
  EXPECT_EQ(lb->Pick(c, 1, 2), std::optional<size_t>(2));
  c[2].eligible = false;
  EXPECT_EQ(lb->Pick(c, 1, 2), std::nullopt);
}

TEST(PickFirst, TakesTheFirstEligibleAndMovesOn) {
  FakeCandidates c({{1}, {1}, {1}});
  auto lb = LoadBalancer::PickFirst();
  EXPECT_EQ(Count(*lb, c, 10), (std::vector<int>{10, 0, 0}));
  c[0].eligible = false;
  EXPECT_EQ(Count(*lb, c, 10), (std::vector<int>{0, 10, 0}));
  c[1].eligible = false;
  EXPECT_EQ(lb->Pick(c, 1, std::nullopt), std::optional<size_t>(2));
  c[0].eligible = true;
  EXPECT_EQ(lb->Pick(c, 1, std::nullopt), std::optional<size_t>(0));
}

TEST(PickFirst, AvoidGoesToTheNext) {
  FakeCandidates c({{1}, {1}, {1}});
  auto lb = LoadBalancer::PickFirst();
  EXPECT_EQ(lb->Pick(c, 1, 0), std::optional<size_t>(1));
  c[1].eligible = false;
  c[2].eligible = false;
  EXPECT_EQ(lb->Pick(c, 1, 0), std::optional<size_t>(0));
}

}  // namespace
}  // namespace gateway::upstream
