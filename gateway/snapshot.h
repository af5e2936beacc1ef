// Snapshot<T>: an immutable value that is replaced as a whole, read without a lock.
//
// Writers publish a complete new value with Publish(); readers see either the old or the
// new one, never a mix, and a value stays alive while anyone still holds it (a call that
// started on an old route table finishes on it).
//
// The read path is lock-free: each reader thread keeps a Snapshot<T>::Reader, which caches
// the current value and compares one atomic version number per read; only after a Publish()
// does the next read take the writer's mutex once to refresh its cache.
//
// Thread-safety: Snapshot is thread-safe. A Reader belongs to one thread.
//
// Example:
//   Snapshot<RouteTable> routes(initial_table);
//   Snapshot<RouteTable>::Reader reader(&routes);   // one per worker thread
//   const RouteTable& table = *reader.Get();
//   routes.Publish(new_table);                      // from any thread

#ifndef GATEWAY_SNAPSHOT_H_
#define GATEWAY_SNAPSHOT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gateway {

template <typename T>
class Snapshot {
 public:
  explicit Snapshot(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}

  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Replaces the value. Readers pick it up on their next Get().
  void Publish(std::shared_ptr<const T> value) {
    absl::MutexLock lock(&mu_);
    value_ = std::move(value);
    version_.fetch_add(1, std::memory_order_release);
    if (listener_) listener_(value_);
  }

  // Called by every later Publish() with the new value, on the publishing thread and under
  // the publishing lock (so in publish order): it must return quickly and must not use this
  // Snapshot. Replaces an earlier listener.
  using Listener = std::function<void(const std::shared_ptr<const T>&)>;
  void SetListener(Listener listener) {
    absl::MutexLock lock(&mu_);
    listener_ = std::move(listener);
  }

  // The current value (takes the mutex; for occasional readers).
  std::shared_ptr<const T> Load() const {
    absl::MutexLock lock(&mu_);
    return value_;
  }

  // A per-thread cache of the current value.
  class Reader {
   public:
    explicit Reader(const Snapshot* source) : source_(source) { Refresh(); }

    // The current value; valid until the next Get() on this reader. Copy the shared_ptr to
    // keep it longer.
    const std::shared_ptr<const T>& Get() {
      if (source_->version_.load(std::memory_order_acquire) != version_) Refresh();
      return cached_;
    }

   private:
    void Refresh() {
      absl::MutexLock lock(&source_->mu_);
      version_ = source_->version_.load(std::memory_order_relaxed);
      cached_ = source_->value_;
    }

    const Snapshot* source_;
    uint64_t version_ = 0;
    std::shared_ptr<const T> cached_;
  };

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const T> value_ ABSL_GUARDED_BY(mu_);
  Listener listener_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> version_{0};
};

}  // namespace gateway

#endif  // GATEWAY_SNAPSHOT_H_
