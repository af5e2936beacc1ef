// TokenCache: a bounded, thread-safe cache of already verified JWTs, so that a
// token presented again skips signature verification and JSON parsing.
//
// Entries are keyed by the SHA-256 of the token bytes (the token itself is
// not stored), carry the key-set generation they were verified under, and
// expire at a time given on insertion (the token's exp plus the provider's
// clock skew). A lookup hits only when the digest, the generation and the
// clock all agree, so rotating the key set (a new generation) invalidates every
// older entry at once, without a sweep.
//
// The cache is split into shards, each an LRU list guarded by its own
// absl::Mutex; a full shard evicts its least recently used entry.
// Thread-safe.
//
// Example:
//   TokenCache cache({.max_entries = 10000});
//   TokenCache::Key key = TokenCache::KeyFor(token);
//   if (auto hit = cache.Lookup(key, generation, now)) return hit;
//   ... verify ...
//   cache.Insert(key, generation, expiry, verified);
#ifndef GATEWAY_AUTH_TOKEN_CACHE_H_
#define GATEWAY_AUTH_TOKEN_CACHE_H_

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gateway::auth {

struct VerifiedJwt;

class TokenCache {
 public:
  struct Options {
    // Upper bound on the number of entries (over all shards). 0 disables caching.
    size_t max_entries = 10000;
    // Number of independently locked shards (at least 1).
    int shards = 16;
  };

  // SHA-256 of the token bytes.
  using Key = std::array<uint8_t, 32>;

  explicit TokenCache(Options options);
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  static Key KeyFor(absl::string_view token);

  // Returns the cached value for `key` if it was inserted under `generation`
  // and `now` is before its expiry; otherwise null (and drops a stale entry).
  std::shared_ptr<const VerifiedJwt> Lookup(const Key& key, uint64_t generation,
                                            absl::Time now);

  // Stores `value` (non-null) until `expires`, replacing an entry with the
  // same key. Evicts the shard's least recently used entry when it is full.
  void Insert(const Key& key, uint64_t generation, absl::Time expires,
              std::shared_ptr<const VerifiedJwt> value);

  // Drops every entry.
  void Clear();

  // Number of entries (including not yet dropped stale ones).
  size_t size() const;

 private:
  struct Entry {
    Key key;
    uint64_t generation;
    absl::Time expires;
    std::shared_ptr<const VerifiedJwt> value;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Shard {
    mutable absl::Mutex mu;
    std::list<Entry> lru ABSL_GUARDED_BY(mu);  // most recently used first
    absl::flat_hash_map<Key, std::list<Entry>::iterator, KeyHash> index ABSL_GUARDED_BY(mu);
  };

  Shard& ShardFor(const Key& key);

  size_t per_shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_TOKEN_CACHE_H_
