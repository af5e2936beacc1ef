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
// Instances therefore converge within about a second of a change.
//
// Thread-safety: RedisStore is not thread-safe (the Registry serializes its calls);
// RedisWatcher is started and stopped from one thread, its callback runs on its own thread.
//
// Example:
//   auto store = std::make_unique<RedisStore>("127.0.0.1:6379", "gatewayd:registry");
//   RedisWatcher watcher("127.0.0.1:6379", "gatewayd:registry", [&] { registry->Reload(&p); });

#ifndef GATEWAY_REGISTRY_REDIS_STORE_H_
#define GATEWAY_REGISTRY_REDIS_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "gateway/registry/directory_store.h"

struct redisContext;

namespace gateway::registry {

inline constexpr char kDefaultRedisPrefix[] = "gatewayd:registry";

class RedisStore : public RegistryStore {
 public:
  // `address` is HOST:PORT.
  RedisStore(std::string address, std::string prefix);
  ~RedisStore() override;

  // Connects. UNAVAILABLE naming the address when Redis does not answer.
  absl::Status Open() override;
  // Reads every version listed in the index. UNAVAILABLE when Redis fails.
  absl::StatusOr<Loaded> Load() const override;
  // SET NX of the version, then index, counter and notice. ALREADY_EXISTS when another
  // gateway stored that version first ("retry": the registry reloads within a second).
  absl::Status Write(const ServiceVersion& version) const override;
  // DEL of the version and SREM from the index (a version pruned from the history).
  // UNAVAILABLE when Redis fails.
  absl::Status Delete(const std::string& service, int64_t version) const override;

 private:
  absl::Status Connect() const;

  const std::string address_;
  const std::string prefix_;
  mutable redisContext* context_ = nullptr;
};

class RedisWatcher {
 public:
  RedisWatcher(std::string address, std::string prefix, std::function<void()> on_change);
  ~RedisWatcher();  // stops the thread (within about a second)

 private:
  void Run();

  const std::string address_;
  const std::string prefix_;
  const std::function<void()> on_change_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REDIS_STORE_H_
