#include "gateway/registry/redis_store.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

long long Counter(redisContext* c, const std::string& prefix) {
  Reply r(static_cast<redisReply*>(
      redisCommand(c, "GET %s:counter", prefix.c_str())));
  long long value = 0;
  if (r != nullptr && r->type == REDIS_REPLY_STRING) {
    absl::SimpleAtoi(absl::string_view(r->str, r->len), &value);
  }
  return value;
}

}  // namespace

RedisStore::RedisStore(std::string address, std::string prefix)
    : address_(std::move(address)), prefix_(std::move(prefix)) {}

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

absl::Status RedisStore::Open() { return Connect(); }

absl::StatusOr<RegistryStore::Loaded> RedisStore::Load() const {
  if (absl::Status s = Connect(); !s.ok()) return s;
  Loaded loaded;
  Reply keys(static_cast<redisReply*>(
      redisCommand(context_, "SMEMBERS %s:index", prefix_.c_str())));
  if (keys == nullptr || keys->type != REDIS_REPLY_ARRAY) {
    return absl::UnavailableError(absl::StrCat("registry redis ", address_,
                                               ": cannot read the index: ",
                                               keys == nullptr ? context_->errstr : "bad reply"));
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
  return loaded;
}

absl::Status RedisStore::Write(const ServiceVersion& version) const {
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
  return absl::OkStatus();
}

RedisWatcher::RedisWatcher(std::string address, std::string prefix,
                           std::function<void()> on_change)
    : address_(std::move(address)),
      prefix_(std::move(prefix)),
      on_change_(std::move(on_change)),
      thread_([this] { Run(); }) {}

RedisWatcher::~RedisWatcher() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void RedisWatcher::Run() {
  long long seen = -1;
  redisContext* sub = nullptr;
  redisContext* poll_conn = nullptr;
  auto last_check = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  while (!stop_.load()) {
    std::string error;
    if (poll_conn == nullptr || poll_conn->err) {
      if (poll_conn != nullptr) redisFree(poll_conn);
      poll_conn = ConnectTo(address_, &error);
    }
    if (sub == nullptr || sub->err) {
      if (sub != nullptr) redisFree(sub);
      sub = ConnectTo(address_, &error);
      if (sub != nullptr) {
        Reply r(static_cast<redisReply*>(
            redisCommand(sub, "SUBSCRIBE %s:changes", prefix_.c_str())));
        if (r == nullptr) {
          redisFree(sub);
          sub = nullptr;
        }
      }
    }
    if (sub == nullptr || poll_conn == nullptr) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
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
      const long long counter = Counter(poll_conn, prefix_);
      if (counter != seen) {
        on_change_();  // also the first time: a change may predate the watcher
        seen = counter;
      }
    }
  }
  if (sub != nullptr) redisFree(sub);
  if (poll_conn != nullptr) redisFree(poll_conn);
}

}  // namespace gateway::registry
