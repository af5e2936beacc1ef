#include "gateway/snapshot.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gateway {
namespace {

TEST(Snapshot, ReaderSeesPublishedValue) {
  Snapshot<int> snapshot(std::make_shared<const int>(1));
  Snapshot<int>::Reader reader(&snapshot);
  EXPECT_EQ(*reader.Get(), 1);
  snapshot.Publish(std::make_shared<const int>(2));
  EXPECT_EQ(*reader.Get(), 2);
  EXPECT_EQ(*snapshot.Load(), 2);
}

TEST(Snapshot, OldValueStaysAliveWhileHeld) {
  Snapshot<int> snapshot(std::make_shared<const int>(1));
  Snapshot<int>::Reader reader(&snapshot);
  std::shared_ptr<const int> held = reader.Get();
  std::weak_ptr<const int> watch = held;
  snapshot.Publish(std::make_shared<const int>(2));
  EXPECT_EQ(*reader.Get(), 2);  // the reader dropped its cached copy
  EXPECT_EQ(*held, 1);
  held.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(Snapshot, ListenerGetsEveryPublishedValueInOrder) {
  Snapshot<int> snapshot(std::make_shared<const int>(1));
  std::vector<int> seen;
  snapshot.SetListener([&seen](const std::shared_ptr<const int>& v) { seen.push_back(*v); });
  snapshot.Publish(std::make_shared<const int>(2));
  snapshot.Publish(std::make_shared<const int>(3));
  EXPECT_EQ(seen, (std::vector<int>{2, 3}));
  EXPECT_EQ(*snapshot.Load(), 3);
}

TEST(Snapshot, ConcurrentReadersNeverSeeATornValue) {
  struct Pair {
    int a;
    int b;
  };
  Snapshot<Pair> snapshot(std::make_shared<const Pair>(Pair{0, 0}));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      Snapshot<Pair>::Reader reader(&snapshot);
      while (!stop.load()) {
        const Pair& p = *reader.Get();
        if (p.a != p.b) bad.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 20000; ++i) snapshot.Publish(std::make_shared<const Pair>(Pair{i, i}));
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace gateway
