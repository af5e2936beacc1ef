#include "gateway/upstream/load_balancer.h"

#include <algorithm>
#include <vector>

#include "absl/random/random.h"

namespace gateway::upstream {
namespace {

uint32_t WeightOf(const LoadBalancer::Candidates& c, size_t i) {
  const uint32_t w = c.weight(i);
  return w == 0 ? 1 : w;
}

// Shared by the policies: which candidates a pick chooses among (eligible ones, without
// `avoid` unless it is the only one), kept in a buffer reused from pick to pick.
class PolicyBase : public LoadBalancer {
 protected:
  // Fills `chosen_` (1 = may be picked) and returns how many may be picked.
  size_t Select(const Candidates& c, std::optional<size_t> avoid) {
    const size_t n = c.size();
    chosen_.assign(n, 0);
    size_t count = 0;
    bool avoid_eligible = false;
    for (size_t i = 0; i < n; ++i) {
      if (!c.eligible(i)) continue;
      if (avoid.has_value() && *avoid == i) {
        avoid_eligible = true;
        continue;
      }
      chosen_[i] = 1;
      ++count;
    }
    if (count == 0 && avoid_eligible) {
      chosen_[*avoid] = 1;
      count = 1;
    }
    return count;
  }
  std::vector<char> chosen_;
};

class RoundRobinBalancer final : public PolicyBase {
 public:
  explicit RoundRobinBalancer(bool randomize_start) : randomize_start_(randomize_start) {}

  std::optional<size_t> Pick(const Candidates& c, uint64_t version,
                             std::optional<size_t> avoid) override {
    if (!initialized_ || version != version_ || credit_.size() != c.size()) Reset(c, version);
    if (Select(c, avoid) == 0) return std::nullopt;
    return Step(c);
  }

 private:
  void Reset(const Candidates& c, uint64_t version) {
    initialized_ = true;
    version_ = version;
    credit_.assign(c.size(), 0);
    if (!randomize_start_ || c.size() < 2) return;
    // Advance by a random number of picks of the full set: a point of the same cycle.
    int64_t total = 0;
    for (size_t i = 0; i < c.size(); ++i) total += WeightOf(c, i);
    absl::BitGen gen;
    const int64_t skip = absl::Uniform<int64_t>(gen, 0, std::min<int64_t>(total, 1024));
    chosen_.assign(c.size(), 1);
    for (int64_t k = 0; k < skip; ++k) Step(c);
  }

  // One smooth weighted round robin step over `chosen_`.
  size_t Step(const Candidates& c) {
    int64_t total = 0;
    size_t best = 0;
    bool have_best = false;
    for (size_t i = 0; i < credit_.size(); ++i) {
      if (!chosen_[i]) continue;
      const int64_t w = WeightOf(c, i);
      credit_[i] += w;
      total += w;
      if (!have_best || credit_[i] > credit_[best]) {
        best = i;
        have_best = true;
      }
    }
    credit_[best] -= total;
    return best;
  }

  const bool randomize_start_;
  bool initialized_ = false;
  uint64_t version_ = 0;
  std::vector<int64_t> credit_;
};

class LeastRequestBalancer final : public PolicyBase {
 public:
  std::optional<size_t> Pick(const Candidates& c, uint64_t /*version*/,
                             std::optional<size_t> avoid) override {
    const size_t count = Select(c, avoid);
    if (count == 0) return std::nullopt;
    if (count == 1) return Nth(0);
    const size_t r1 = absl::Uniform<size_t>(gen_, 0, count);
    size_t r2 = absl::Uniform<size_t>(gen_, 0, count - 1);
    if (r2 >= r1) ++r2;
    const size_t a = Nth(r1);
    const size_t b = Nth(r2);
    // load(a) / weight(a) <= load(b) / weight(b), without division.
    const __int128 la = std::max<int64_t>(c.load(a), 0);
    const __int128 lb = std::max<int64_t>(c.load(b), 0);
    return la * WeightOf(c, b) <= lb * WeightOf(c, a) ? a : b;
  }

 private:
  // The index of the n-th (from 0) chosen candidate.
  size_t Nth(size_t n) const {
    for (size_t i = 0; i < chosen_.size(); ++i) {
      if (chosen_[i] && n-- == 0) return i;
    }
    return 0;  // unreachable: n < count
  }
  absl::BitGen gen_;
};

class PickFirstBalancer final : public PolicyBase {
 public:
  std::optional<size_t> Pick(const Candidates& c, uint64_t /*version*/,
                             std::optional<size_t> avoid) override {
    if (Select(c, avoid) == 0) return std::nullopt;
    for (size_t i = 0; i < chosen_.size(); ++i) {
      if (chosen_[i]) return i;
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<LoadBalancer> LoadBalancer::RoundRobin(bool randomize_start) {
  return std::make_unique<RoundRobinBalancer>(randomize_start);
}
std::unique_ptr<LoadBalancer> LoadBalancer::LeastRequest() {
  return std::make_unique<LeastRequestBalancer>();
}
std::unique_ptr<LoadBalancer> LoadBalancer::PickFirst() {
  return std::make_unique<PickFirstBalancer>();
}

}  // namespace gateway::upstream
