// Clock: where the gateway's time-dependent code (deadlines, quota windows, token expiry)
// reads the time, so tests can move time by hand.
//
// Thread-safety: implementations are thread-safe.
//
// Example:
//   std::shared_ptr<const Clock> clock = RealClock();
//   absl::Time now = clock->Now();

#ifndef GATEWAY_CLOCK_H_
#define GATEWAY_CLOCK_H_

#include <atomic>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gateway {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's real time.
inline std::shared_ptr<const Clock> RealClock() {
  class Real : public Clock {
   public:
    absl::Time Now() const override { return absl::Now(); }
  };
  static const auto* clock = new std::shared_ptr<const Clock>(std::make_shared<Real>());
  return *clock;
}

// A clock for tests: stands still until Advance() or Set().
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Advance(absl::Duration d) { nanos_.fetch_add(absl::ToInt64Nanoseconds(d)); }
  void Set(absl::Time t) { nanos_.store(absl::ToUnixNanos(t)); }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace gateway

#endif  // GATEWAY_CLOCK_H_
