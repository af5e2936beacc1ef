// RedisStore: the registry kept in a Redis server shared by several gateways, and
// RedisWatcher, which tells a gateway when another one changed it.
//
// Keys (all under `prefix`, default "gatewayd:registry"):
//   <prefix>:v:<service>@<version>  one version, framed like a registry file (magic, length,
//                                   CRC-32, record: see directory_store.h), written once
//                                   (SET NX), so two gateways can never both take a number;
//   <prefix>:index                  a set of the version keys;
//   <prefix>:counter                incremented on every change;
//   <prefix>:changes                pub/sub channel; each change publishes the new counter.
// A corrupt or missing entry is reported and skipped, never served in part.
//
// RedisWatcher runs one thread with its own connection subscribed to <prefix>:changes,
// and also compares the counter once a second (which covers notices missed while it was
// reconnecting); on a change it calls the callback (the gateway reloads its registry).
// Instances therefore converge within about a second of a change. While Redis does not
// answer it retries with backoff (100 ms doubling to 5 s), and calls the callback once it
// answers again.
//
// Redis outages. With a cache directory, every state loaded from Redis is mirrored there
// (<cache>/versions/: one file per version, as DirectoryStore writes them; <cache>/synced_at:
// when, in Unix seconds). When Redis does not answer at start, the store opens anyway and
// Load returns the cached state (or, without a cache, an empty one), so the gateway starts
// serving the last state it saw; writes are refused until the shared state has been loaded
// from Redis again. RedisRegistryStatus tells the log and /readyz which state is served.
//
// Thread-safety: RedisStore is not thread-safe (the Registry serializes its calls);
// RedisWatcher is started and stopped from one thread, its callback runs on its own thread;
// RedisRegistryStatus is thread-safe.
//
// Example:
//   auto status = std::make_shared<RedisRegistryStatus>("127.0.0.1:6379");
//   auto store = std::make_unique<RedisStore>("127.0.0.1:6379", "gatewayd:registry",
//                                             "/var/cache/gatewayd/registry", status);
//   RedisWatcher watcher("127.0.0.1:6379", "gatewayd:registry",
//                        [&] { return registry->Reload(&p).ok(); }, status);
//   RedisRegistryStatus::Report r = status->Get();  // for /readyz

#ifndef GATEWAY_REGISTRY_REDIS_STORE_H_
#define GATEWAY_REGISTRY_REDIS_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/registry/directory_store.h"

struct redisContext;

namespace gateway::registry {

inline constexpr char kDefaultRedisPrefix[] = "gatewayd:registry";

// What a gateway knows of its shared registry: whether Redis answers, and which state is
// served (loaded from Redis, or from the cache, and from when). Thread-safe.
class RedisRegistryStatus {
 public:
  explicit RedisRegistryStatus(std::string address) : address_(std::move(address)) {}

  // The shared state was loaded from Redis at `at`.
  void Synced(absl::Time at);
  // The served state was loaded from the cache, which Redis last filled at `from`
  // (InfinitePast: there was no cache, nothing registered is served).
  void ServingCache(absl::Time from);
  // Redis did not answer (`why`: hiredis' error). Returns true when it answered before
  // (a change worth a log line).
  bool Unavailable(const std::string& why);
  // Redis answers again. Returns true when it did not before.
  bool Available();

  struct Report {
    bool ready = true;   // false: no state of the registry is served at all
    std::string detail;  // empty when all is well; else one line without "\n"
  };
  // E.g. {true, "degraded: registry: redis 127.0.0.1:6379 unavailable (Connection refused),
  // serving cached state from 2026-12-05T16:20:00Z"}; {false, "registry: redis ...
  // unavailable (...), no cached state: registered services are not served"}.
  Report Get() const;

 private:
  const std::string address_;
  mutable absl::Mutex mu_;
  bool available_ ABSL_GUARDED_BY(mu_) = true;
  std::string why_ ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;      // some state is served
  bool from_cache_ ABSL_GUARDED_BY(mu_) = false;  // ... and it came from the cache
  absl::Time state_from_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

class RedisStore : public RegistryStore {
 public:
  // `address` is HOST:PORT. `cache_directory` (empty: no cache) keeps the last state
  // loaded from Redis. `status` may be null.
  RedisStore(std::string address, std::string prefix, std::string cache_directory = "",
             std::shared_ptr<RedisRegistryStatus> status = nullptr);
  ~RedisStore() override;

  // Connects. When Redis does not answer: OK (Load then serves the cache), reported by
  // Load. UNAVAILABLE only when the cache directory cannot be created.
  absl::Status Open() override;
  // Reads every version listed in the index, and mirrors it into the cache. When Redis
  // fails before any state was loaded from it: the cached state (empty without a cache),
  // with a problem line saying so; after that: UNAVAILABLE (the served state is kept).
  absl::StatusOr<Loaded> Load() const override;
  // SET NX of the version, then index, counter and notice; then the cache. ALREADY_EXISTS
  // when another gateway stored that version first ("retry": the registry reloads within a
  // second). UNAVAILABLE when Redis fails or the shared state was not loaded yet.
  absl::Status Write(const ServiceVersion& version) const override;
  // DEL of the version and SREM from the index (a version pruned from the history).
  // UNAVAILABLE when Redis fails.
  absl::Status Delete(const std::string& service, int64_t version) const override;

 private:
  absl::Status Connect() const;
  // Mirrors `state` into the cache; returns the error (the cache is then stale).
  absl::Status SyncCache(const RegistryState& state) const;
  // The cached state, with a problem line saying what is served.
  Loaded LoadCache(const absl::Status& redis_error) const;

  const std::string address_;
  const std::string prefix_;
  const std::string cache_directory_;
  const std::shared_ptr<RedisRegistryStatus> status_;
  mutable redisContext* context_ = nullptr;
  mutable bool synced_ = false;  // a state was loaded from Redis
};

class RedisWatcher {
 public:
  // `on_change` returns true when it reloaded (false: it is called again at the next
  // check, about a second later). `status` (may be null) is told when Redis stops and
  // starts answering; the changes are logged.
  RedisWatcher(std::string address, std::string prefix, std::function<bool()> on_change,
               std::shared_ptr<RedisRegistryStatus> status = nullptr);
  ~RedisWatcher();  // stops the thread (within about a second)

 private:
  void Run();

  const std::string address_;
  const std::string prefix_;
  const std::function<bool()> on_change_;
  const std::shared_ptr<RedisRegistryStatus> status_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REDIS_STORE_H_
