#include "gateway/registry/redis_store.h"

#include <dirent.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/config/config_loader.h"
#include "gateway/log.h"

namespace gateway::registry {
namespace {

bool SplitAddress(const std::string& address, std::string* host, int* port) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *host = address.substr(0, colon);
  return absl::SimpleAtoi(address.substr(colon + 1), port);
}

redisContext* ConnectTo(const std::string& address, std::string* error) {
  std::string host;
  int port = 0;
  if (!SplitAddress(address, &host, &port)) {
    *error = absl::StrCat("\"", address, "\" is not HOST:PORT");
    return nullptr;
  }
  struct timeval timeout = {2, 0};
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, timeout);
  if (c == nullptr || c->err) {
    *error = c == nullptr ? "out of memory" : c->errstr;
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, timeout);
  return c;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Reads <prefix>:counter (0 when unset) into *value; false when Redis did not answer.
bool ReadCounter(redisContext* c, const std::string& prefix, long long* value) {
  Reply r(static_cast<redisReply*>(
      redisCommand(c, "GET %s:counter", prefix.c_str())));
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) return false;
  *value = 0;
  if (r->type == REDIS_REPLY_STRING) {
    absl::SimpleAtoi(absl::string_view(r->str, r->len), value);
  }
  return true;
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

constexpr char kCacheVersions[] = "/versions";
constexpr char kCacheSyncedAt[] = "/synced_at";

// Writes `content` to `path` through a temporary file and a rename.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string temp = absl::StrCat(path, ".tmp");
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("cannot write ", temp));
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed || std::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace

// --- RedisRegistryStatus ---

void RedisRegistryStatus::Synced(absl::Time at) {
  absl::MutexLock lock(&mu_);
  available_ = true;
  loaded_ = true;
  from_cache_ = false;
  state_from_ = at;
}

void RedisRegistryStatus::ServingCache(absl::Time from) {
  absl::MutexLock lock(&mu_);
  loaded_ = from != absl::InfinitePast();
  from_cache_ = true;
  state_from_ = from;
}

bool RedisRegistryStatus::Unavailable(const std::string& why) {
  absl::MutexLock lock(&mu_);
  const bool was_available = available_;
  available_ = false;
  why_ = why;
  return was_available;
}

bool RedisRegistryStatus::Available() {
  absl::MutexLock lock(&mu_);
  const bool was_available = available_;
  available_ = true;
  return !was_available;
}

RedisRegistryStatus::Report RedisRegistryStatus::Get() const {
  absl::MutexLock lock(&mu_);
  Report report;
  if (available_ && !from_cache_) return report;  // the state served is Redis'
  // "degraded": the gateway serves, but a state Redis has not confirmed (monitoring can
  // match the word); a gateway with nothing to serve is simply not ready.
  const std::string down = absl::StrCat(
      loaded_ ? "degraded: " : "", "registry: redis ", address_,
      available_ ? " answers again, loading the shared state"
                 : absl::StrCat(" unavailable (", why_, ")"));
  if (!loaded_) {
    report.ready = false;
    report.detail = absl::StrCat(down, ", no cached state: registered services are not served");
  } else if (from_cache_) {
    report.detail = absl::StrCat(down, ", serving cached state from ", FormatUtc(state_from_));
  } else {
    report.detail =
        absl::StrCat(down, ", serving the state loaded at ", FormatUtc(state_from_));
  }
  return report;
}

// --- RedisStore ---

RedisStore::RedisStore(std::string address, std::string prefix, std::string cache_directory,
                       std::shared_ptr<RedisRegistryStatus> status)
    : address_(std::move(address)),
      prefix_(std::move(prefix)),
      cache_directory_(std::move(cache_directory)),
      status_(std::move(status)) {}

RedisStore::~RedisStore() {
  if (context_ != nullptr) redisFree(context_);
}

absl::Status RedisStore::Connect() const {
  if (context_ != nullptr && context_->err == 0) return absl::OkStatus();
  if (context_ != nullptr) redisFree(context_);
  std::string error;
  context_ = ConnectTo(address_, &error);
  if (context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("registry redis ", address_, ": ", error));
  }
  return absl::OkStatus();
}

absl::Status RedisStore::Open() {
  if (!cache_directory_.empty()) {
    DirectoryStore versions(absl::StrCat(cache_directory_, kCacheVersions));
    if (absl::Status s = versions.Open(); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("registry cache ", cache_directory_, ": ", s.message()));
    }
  }
  // A Redis that does not answer is not an error here: Load serves the cache.
  (void)Connect();
  return absl::OkStatus();
}

RegistryStore::Loaded RedisStore::LoadCache(const absl::Status& redis_error) const {
  const std::string why(absl::StripPrefix(redis_error.message(),
                                          absl::StrCat("registry redis ", address_, ": ")));
  const std::string down = absl::StrCat("redis ", address_, " unavailable at start (", why, ")");
  Loaded loaded;
  absl::Time synced_at = absl::InfinitePast();
  if (!cache_directory_.empty()) {
    absl::StatusOr<std::string> text =
        ReadFileToString(absl::StrCat(cache_directory_, kCacheSyncedAt));
    int64_t seconds = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &seconds)) {
      DirectoryStore versions(absl::StrCat(cache_directory_, kCacheVersions));
      absl::StatusOr<Loaded> cached = versions.Load();
      if (cached.ok()) {
        loaded = *std::move(cached);
        synced_at = absl::FromUnixSeconds(seconds);
      } else {
        loaded.problems.push_back(absl::StrCat("registry cache ", cache_directory_, ": ",
                                               cached.status().message()));
      }
    }
  }
  if (status_ != nullptr) {
    status_->Unavailable(why);
    status_->ServingCache(synced_at);
  }
  if (synced_at != absl::InfinitePast()) {
    loaded.problems.push_back(absl::StrCat(
        down, ": serving the cached state from ", FormatUtc(synced_at), " (",
        cache_directory_, "); reconnecting in the background"));
  } else {
    loaded.problems.push_back(absl::StrCat(
        down, ": no cached state",
        cache_directory_.empty() ? " (admin_listener.registry_redis_cache_directory is not set)"
                                 : absl::StrCat(" in ", cache_directory_),
        ", registered services are not served until it answers; reconnecting in the "
        "background"));
  }
  return loaded;
}

absl::Status RedisStore::SyncCache(const RegistryState& state) const {
  if (cache_directory_.empty()) return absl::OkStatus();
  const std::string dir = absl::StrCat(cache_directory_, kCacheVersions);
  DirectoryStore versions(dir);
  if (absl::Status s = versions.Open(); !s.ok()) return s;
  std::set<std::string> wanted;
  for (const std::string& service : state.Names()) {
    for (const ServiceVersion& v : state.History(service)) {
      wanted.insert(DirectoryStore::FileName(v.service, v.version));
    }
  }
  std::set<std::string> present;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") present.insert(name);
    }
    ::closedir(d);
  }
  for (const std::string& name : present) {
    if (wanted.count(name) == 0 && ::unlink(absl::StrCat(dir, "/", name).c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot remove ", dir, "/", name));
    }
  }
  for (const std::string& service : state.Names()) {
    for (const ServiceVersion& v : state.History(service)) {
      const std::string name = DirectoryStore::FileName(v.service, v.version);
      if (present.count(name) > 0) {
        // Same name, same content, unless Redis was emptied and numbering started over.
        const std::string path = absl::StrCat(dir, "/", name);
        absl::StatusOr<std::string> bytes = ReadFileToString(path);
        if (bytes.ok() && *bytes == EncodeVersionFile(v)) continue;
        if (::unlink(path.c_str()) != 0) {
          return absl::UnavailableError(absl::StrCat("cannot remove ", path));
        }
      }
      absl::Status s = versions.Write(v);
      if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    }
  }
  return WriteFileAtomically(absl::StrCat(cache_directory_, kCacheSyncedAt),
                             absl::StrCat(absl::ToUnixSeconds(absl::Now()), "\n"));
}

absl::StatusOr<RegistryStore::Loaded> RedisStore::Load() const {
  if (absl::Status s = Connect(); !s.ok()) {
    if (synced_) return s;
    return LoadCache(s);
  }
  Loaded loaded;
  Reply keys(static_cast<redisReply*>(
      redisCommand(context_, "SMEMBERS %s:index", prefix_.c_str())));
  if (keys == nullptr && Connect().ok()) {
    // The connection died since its last use (e.g. Redis restarted): once more on a new one.
    keys.reset(static_cast<redisReply*>(
        redisCommand(context_, "SMEMBERS %s:index", prefix_.c_str())));
  }
  if (keys == nullptr || keys->type != REDIS_REPLY_ARRAY) {
    absl::Status error = absl::UnavailableError(
        absl::StrCat("registry redis ", address_, ": cannot read the index: ",
                     keys == nullptr ? context_->errstr : "bad reply"));
    if (synced_) return error;
    return LoadCache(error);
  }
  const std::string key_prefix = absl::StrCat(prefix_, ":v:");
  for (size_t i = 0; i < keys->elements; ++i) {
    const std::string key(keys->element[i]->str, keys->element[i]->len);
    const std::string where = absl::StrCat("redis ", address_, " ", key);
    Reply value(static_cast<redisReply*>(
        redisCommand(context_, "GET %b", key.data(), key.size())));
    if (value == nullptr) {
      return absl::UnavailableError(absl::StrCat(where, ": ", context_->errstr));
    }
    if (value->type != REDIS_REPLY_STRING) {
      loaded.problems.push_back(absl::StrCat(where, ": listed but missing, skipped"));
      continue;
    }
    absl::StatusOr<ServiceVersion> v =
        DecodeVersionFile(std::string(value->str, value->len));
    if (!v.ok()) {
      loaded.problems.push_back(absl::StrCat(where, ": ", v.status().message(), ", skipped"));
      continue;
    }
    if (key != absl::StrCat(key_prefix, v->service, "@", v->version)) {
      loaded.problems.push_back(absl::StrCat(where, ": holds ", v->service, " v", v->version,
                                             ", not what its key says, skipped"));
      continue;
    }
    loaded.state.Restore(*std::move(v));
  }
  synced_ = true;
  if (status_ != nullptr) {
    status_->Available();
    status_->Synced(absl::Now());
  }
  if (absl::Status s = SyncCache(loaded.state); !s.ok()) {
    loaded.problems.push_back(absl::StrCat("registry cache ", cache_directory_, ": ",
                                           s.message(), " (the cache is stale)"));
  }
  return loaded;
}

absl::Status RedisStore::Write(const ServiceVersion& version) const {
  if (!synced_) {
    return absl::UnavailableError(absl::StrCat(
        "registry redis ", address_,
        ": the shared registry has not been loaded since the start (this gateway serves "
        "its cached state); changes need Redis, retry once it answers"));
  }
  if (absl::Status s = Connect(); !s.ok()) return s;
  const std::string key = absl::StrCat(prefix_, ":v:", version.service, "@", version.version);
  const std::string content = EncodeVersionFile(version);
  Reply set(static_cast<redisReply*>(redisCommand(context_, "SET %b %b NX", key.data(),
                                                  key.size(), content.data(), content.size())));
  if (set == nullptr) {
    return absl::UnavailableError(absl::StrCat("registry redis ", address_, ": ",
                                               context_->errstr));
  }
  if (set->type == REDIS_REPLY_NIL) {
    return absl::AlreadyExistsError(absl::StrCat(
        version.service, " v", version.version,
        " was just stored by another gateway; retry (this gateway reloads within a second)"));
  }
  if (set->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("registry redis ", address_, ": ",
                                               std::string(set->str, set->len)));
  }
  Reply add(static_cast<redisReply*>(redisCommand(context_, "SADD %s:index %b", prefix_.c_str(),
                                                  key.data(), key.size())));
  Reply counter(static_cast<redisReply*>(
      redisCommand(context_, "INCR %s:counter", prefix_.c_str())));
  if (add == nullptr || counter == nullptr || counter->type != REDIS_REPLY_INTEGER) {
    return absl::UnavailableError(absl::StrCat("registry redis ", address_,
                                               ": stored ", key, " but could not index it"));
  }
  Reply published(static_cast<redisReply*>(
      redisCommand(context_, "PUBLISH %s:changes %lld", prefix_.c_str(), counter->integer)));
  if (!cache_directory_.empty()) {
    // Best effort: the next Load mirrors the whole state anyway.
    absl::Status cached =
        DirectoryStore(absl::StrCat(cache_directory_, kCacheVersions)).Write(version);
    if (!cached.ok() && !absl::IsAlreadyExists(cached)) {
      LogWarn(absl::StrCat("registry cache ", cache_directory_, ": ", cached.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status RedisStore::Delete(const std::string& service, int64_t version) const {
  if (absl::Status s = Connect(); !s.ok()) return s;
  const std::string key = absl::StrCat(prefix_, ":v:", service, "@", version);
  Reply del(static_cast<redisReply*>(redisCommand(context_, "DEL %b", key.data(), key.size())));
  Reply rem(static_cast<redisReply*>(redisCommand(context_, "SREM %s:index %b", prefix_.c_str(),
                                                  key.data(), key.size())));
  if (del == nullptr || rem == nullptr || del->type == REDIS_REPLY_ERROR ||
      rem->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("registry redis ", address_, ": cannot delete ", key));
  }
  if (!cache_directory_.empty()) {
    // Best effort: the next Load mirrors the whole state anyway.
    (void)DirectoryStore(absl::StrCat(cache_directory_, kCacheVersions)).Delete(service, version);
  }
  return absl::OkStatus();
}

RedisWatcher::RedisWatcher(std::string address, std::string prefix,
                           std::function<bool()> on_change,
                           std::shared_ptr<RedisRegistryStatus> status)
    : address_(std::move(address)),
      prefix_(std::move(prefix)),
      on_change_(std::move(on_change)),
      status_(std::move(status)),
      thread_([this] {
        pthread_setname_np(pthread_self(), "gw-registry");
        Run();
      }) {}

RedisWatcher::~RedisWatcher() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void RedisWatcher::Run() {
  constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
  long long seen = -1;
  redisContext* sub = nullptr;
  redisContext* poll_conn = nullptr;
  auto last_check = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto backoff = std::chrono::milliseconds(kFirstBackoff);
  bool down = false;  // logged as unavailable
  while (!stop_.load()) {
    std::string error;
    if (poll_conn == nullptr || poll_conn->err) {
      if (poll_conn != nullptr) redisFree(poll_conn);
      poll_conn = ConnectTo(address_, &error);
    }
    if (poll_conn != nullptr && (sub == nullptr || sub->err)) {
      if (sub != nullptr) redisFree(sub);
      sub = ConnectTo(address_, &error);
      if (sub != nullptr) {
        Reply r(static_cast<redisReply*>(
            redisCommand(sub, "SUBSCRIBE %s:changes", prefix_.c_str())));
        if (r == nullptr) {
          error = sub->errstr;
          redisFree(sub);
          sub = nullptr;
        }
      }
    }
    if (sub == nullptr || poll_conn == nullptr) {
      // Redis does not answer: say so once, retry with backoff (stopping within 50 ms).
      if (status_ != nullptr) status_->Unavailable(error);
      if (!down) {
        LogWarn(absl::StrCat("registry: redis ", address_, " unavailable (", error,
                             "); serving the last state seen, reconnecting with backoff (",
                             kFirstBackoff.count(), " ms doubling to ", kMaxBackoff.count(),
                             " ms)"));
        down = true;
      }
      const auto until = std::chrono::steady_clock::now() + backoff;
      while (!stop_.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
    if (down) {
      LogLine(absl::StrCat("registry: redis ", address_,
                           " answers again; loading the shared state"));
      down = false;
      seen = -1;  // reload whatever the counter says
    }
    backoff = kFirstBackoff;
    if (status_ != nullptr) status_->Available();
    bool changed = false;
    struct pollfd pfd = {sub->fd, POLLIN, 0};
    if (::poll(&pfd, 1, 200) > 0) {
      if (redisBufferRead(sub) != REDIS_OK) continue;  // reconnects above
      void* reply = nullptr;
      while (redisGetReplyFromReader(sub, &reply) == REDIS_OK && reply != nullptr) {
        freeReplyObject(reply);
        reply = nullptr;
        changed = true;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (changed || now - last_check >= std::chrono::seconds(1)) {
      last_check = now;
      long long counter = 0;
      if (!ReadCounter(poll_conn, prefix_, &counter)) continue;  // reconnects above
      // Also the first time: a change may predate the watcher. A failed reload is tried
      // again at the next check.
      if (counter != seen && on_change_()) seen = counter;
    }
  }
  if (sub != nullptr) redisFree(sub);
  if (poll_conn != nullptr) redisFree(poll_conn);
}

}  // namespace gateway::registry
