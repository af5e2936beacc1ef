// Load balancing: the choice of one endpoint among a cluster's endpoints for one call.
//
// Pure logic, no I/O and no clock. The endpoints are seen through a `Candidates` view (a
// count and accessors by index: weight, load, eligibility), so the caller decides what
// "eligible" means (healthy, not ejected, not in reconnect backoff ...) and the balancer
// only applies its policy:
//  - round robin: smooth weighted round robin (each pick adds every eligible endpoint's
//    weight to its credit, takes the endpoint with the most credit and charges it the sum
//    of the eligible weights). Deterministic; over a whole number of rounds of the total
//    weight, every endpoint gets exactly its share, interleaved (weights 1,2,3 give
//    C B A C B C ...), not in bursts.
//  - least request: two distinct eligible endpoints drawn at random, the one with the
//    lower load / weight wins ("power of two choices").
//  - pick first: the first eligible endpoint in order.
// `avoid` (an index) is skipped when another eligible endpoint exists.
//
// A balancer keeps per-thread state (the round robin credits, a random generator) and is
// not thread-safe: one per worker and cluster. When the endpoint set changes, the caller
// passes a new `version` and the state is reset for the new set.
//
//   class MyCandidates : public LoadBalancer::Candidates { ... };  // over the endpoints
//   std::unique_ptr<LoadBalancer> lb = LoadBalancer::RoundRobin();
//   std::optional<size_t> i = lb->Pick(candidates, version, /*avoid=*/std::nullopt);
#ifndef GATEWAY_UPSTREAM_LOAD_BALANCER_H_
#define GATEWAY_UPSTREAM_LOAD_BALANCER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace gateway::upstream {

class LoadBalancer {
 public:
  // The endpoints a pick chooses among, by index in [0, size()). Called during Pick only
  // (the accessors may read atomics that other threads change).
  class Candidates {
   public:
    virtual ~Candidates() = default;
    virtual size_t size() const = 0;
    virtual uint32_t weight(size_t i) const = 0;  // 0 counts as 1
    virtual int64_t load(size_t i) const = 0;     // calls in flight (least request)
    virtual bool eligible(size_t i) const = 0;
  };

  // `randomize_start`: round robin begins at a random point of its cycle, so that many
  // workers starting at once do not all send their first call to the same endpoint (the
  // shares over whole rounds are unchanged). Tests pass false for a known sequence.
  static std::unique_ptr<LoadBalancer> RoundRobin(bool randomize_start = true);
  static std::unique_ptr<LoadBalancer> LeastRequest();
  static std::unique_ptr<LoadBalancer> PickFirst();
  virtual ~LoadBalancer() = default;

  // Returns the index of the chosen endpoint, or nullopt when no candidate is eligible.
  // `version` identifies the endpoint set (indices mean the same endpoints while it stays
  // the same); a different value resets the per-set state. `avoid`: an index to skip
  // unless it is the only eligible one.
  virtual std::optional<size_t> Pick(const Candidates& candidates, uint64_t version,
                                     std::optional<size_t> avoid) = 0;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_LOAD_BALANCER_H_
