#include "auth/token_cache.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

namespace gateway::auth {

size_t TokenCache::KeyHash::operator()(const Key& k) const {
  // The key is already a uniformly distributed digest.
  size_t h;
  std::memcpy(&h, k.data(), sizeof(h));
  return h;
}

TokenCache::TokenCache(Options options) {
  const int shards = std::max(1, options.shards);
  per_shard_capacity_ =
      options.max_entries == 0 ? 0 : (options.max_entries + shards - 1) / shards;
  shards_.reserve(shards);
  for (int i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

TokenCache::Key TokenCache::KeyFor(absl::string_view token) {
  Key key;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), key.data());
  return key;
}

TokenCache::Shard& TokenCache::ShardFor(const Key& key) {
  // Bytes 8.. pick the shard; bytes 0..7 feed the hash map.
  uint64_t h;
  std::memcpy(&h, key.data() + 8, sizeof(h));
  return *shards_[h % shards_.size()];
}

std::shared_ptr<const VerifiedJwt> TokenCache::Lookup(const Key& key, uint64_t generation,
                                                      absl::Time now) {
  if (per_shard_capacity_ == 0) return nullptr;
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.index.find(key);
  if (it == shard.index.end()) return nullptr;
  auto entry = it->second;
  if (entry->generation != generation || now >= entry->expires) {
    shard.index.erase(it);
    shard.lru.erase(entry);
    return nullptr;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, entry);
  return entry->value;
}

void TokenCache::Insert(const Key& key, uint64_t generation, absl::Time expires,
                        std::shared_ptr<const VerifiedJwt> value) {
  if (per_shard_capacity_ == 0) return;
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.index.find(key);
  if (it != shard.index.end()) {
    auto entry = it->second;
    entry->generation = generation;
    entry->expires = expires;
    entry->value = std::move(value);
    shard.lru.splice(shard.lru.begin(), shard.lru, entry);
    return;
  }
  if (shard.lru.size() >= per_shard_capacity_) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
  }
  shard.lru.push_front(Entry{key, generation, expires, std::move(value)});
  shard.index.emplace(key, shard.lru.begin());
}

void TokenCache::Clear() {
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->index.clear();
    shard->lru.clear();
  }
}

size_t TokenCache::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->lru.size();
  }
  return n;
}

}  // namespace gateway::auth
