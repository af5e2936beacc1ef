// For the upstream library's tests: drive an io_context from the test's own thread, in
// short slices, until a condition holds or a time limit passes.
#ifndef GATEWAY_UPSTREAM_TEST_LOOP_H_
#define GATEWAY_UPSTREAM_TEST_LOOP_H_

#include <chrono>

#include <boost/asio/io_context.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gateway::upstream {

// Runs `io` until `done()` or `limit` passed; returns whether `done()` held.
template <typename F>
bool RunLoopUntil(boost::asio::io_context& io, F done, absl::Duration limit,
                  std::chrono::milliseconds slice = std::chrono::milliseconds(5)) {
  const absl::Time end = absl::Now() + limit;
  while (!done() && absl::Now() < end) {
    io.restart();
    io.run_for(slice);
  }
  return done();
}

// Runs `io` for `d`.
inline void RunLoopFor(boost::asio::io_context& io, absl::Duration d,
                       std::chrono::milliseconds slice = std::chrono::milliseconds(5)) {
  RunLoopUntil(io, [] { return false; }, d, slice);
}

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_TEST_LOOP_H_
