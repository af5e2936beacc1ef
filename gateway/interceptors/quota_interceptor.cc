#include "gateway/interceptors/quota_interceptor.h"

#include <atomic>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/interceptors/deadline_interceptor.h"
#include "gateway/log.h"

namespace gateway {
namespace {

constexpr std::size_t kDefaultMaxKeys = 100000;

std::string Seconds(absl::Duration d) {
  return absl::StrCat(static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(d))));
}

}  // namespace

absl::string_view PeerIp(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:")) return peer;
  absl::ConsumePrefix(&peer, "ipv4:");
  absl::ConsumePrefix(&peer, "ipv6:");
  if (absl::ConsumePrefix(&peer, "[")) {
    const std::size_t end = peer.find(']');
    return end == absl::string_view::npos ? peer : peer.substr(0, end);
  }
  const std::size_t colon = peer.rfind(':');
  if (colon != absl::string_view::npos && peer.find(':') == colon) {
    return peer.substr(0, colon);
  }
  return peer;
}

absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> QuotaInterceptor::Create(
    const config::v1::Quotas& config, const google::protobuf::DescriptorPool& pool,
    const std::vector<std::string>& services, std::shared_ptr<const Clock> clock,
    SelectorCheck check, metrics::MetricRegistry* metrics) {
  std::shared_ptr<QuotaInterceptor> interceptor(new QuotaInterceptor());
  interceptor->clock_ = std::move(clock);
  absl::flat_hash_set<std::string> names;
  bool any_shared = false;
  const std::string prefix =
      config.redis().key_prefix().empty() ? "gateway:quota:" : config.redis().key_prefix();
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::QuotaRule& r = config.rules(i);
    const std::string key = absl::StrCat("quotas.rules[", i, "]");
    if (r.name().empty()) return absl::InvalidArgumentError(absl::StrCat(key, ".name: required"));
    if (!names.insert(r.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".name: \"", r.name(), "\" is used by another rule"));
    }
    if (r.selectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".selectors: at least one"));
    }
    if (r.requests() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".requests: required, at least 1"));
    }
    auto rule = std::make_unique<Rule>();
    rule->name = r.name();
    rule->key = r.key() == config::v1::QuotaRule::KEY_UNSPECIFIED ? config::v1::QuotaRule::CALLER
                                                                    : r.key();
    if (rule->key == config::v1::QuotaRule::HEADER) {
      if (r.header().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".header: required with key HEADER"));
      }
      rule->header = absl::AsciiStrToLower(r.header());
    }
    RateLimiter::Limits limits;
    limits.requests = r.requests();
    limits.period = r.has_per() ? ToDuration(r.per()) : absl::Seconds(1);
    if (limits.period <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".per: must be positive"));
    }
    limits.burst = r.burst() == 0 ? r.requests() : r.burst();
    limits.max_keys =
        config.max_keys_per_rule() == 0 ? kDefaultMaxKeys : config.max_keys_per_rule();
    // Shared rules keep a limiter too: it holds the limits (and is never counted in).
    rule->limiter = std::make_unique<RateLimiter>(limits);
    if (r.shared()) {
      if (!config.has_redis() || config.redis().address().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".shared: needs quotas.redis.address (the shared store)"));
      }
      rule->shared = true;
      rule->redis_prefix = absl::StrCat(prefix, r.name(), ":");
      any_shared = true;
    }
    SelectorMap<Rule>::Builder builder;
    for (int s = 0; s < r.selectors_size(); ++s) {
      absl::Status status = builder.Add(r.selectors(s), rule.get(),
                                        absl::StrCat(key, ".selectors[", s, "]"));
      if (!status.ok()) return status;
    }
    absl::StatusOr<SelectorMap<Rule>> applies = std::move(builder).Build(pool, services, check);
    if (!applies.ok()) return applies.status();
    rule->applies = *std::move(applies);
    interceptor->rules_.push_back(std::move(rule));
  }
  if (any_shared) {
    RedisQuotaStore::Options options;
    options.address = config.redis().address();
    options.connections =
        config.redis().connections() == 0 ? 2 : static_cast<int>(config.redis().connections());
    if (config.redis().has_timeout()) {
      options.timeout = ToDuration(config.redis().timeout());
      if (options.timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("quotas.redis.timeout: must be positive");
      }
    }
    options.metrics = metrics;
    absl::StatusOr<std::unique_ptr<RedisQuotaStore>> store = RedisQuotaStore::Create(options);
    if (!store.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("quotas.redis.address: ", store.status().message()));
    }
    interceptor->store_ = *std::move(store);
    interceptor->fail_open_ =
        config.redis().failure_mode() != config::v1::RedisStore::FAIL_CLOSED;
  }
  return std::shared_ptr<const QuotaInterceptor>(std::move(interceptor));
}

absl::string_view QuotaInterceptor::KeyOf(const Rule& rule, const CallContext& ctx) const {
  switch (rule.key) {
    case config::v1::QuotaRule::CALLER:
      return ctx.caller_id.empty() ? PeerIp(ctx.peer_address)
                                   : absl::string_view(ctx.caller_id);
    case config::v1::QuotaRule::CLIENT_IP:
      return PeerIp(ctx.peer_address);
    case config::v1::QuotaRule::HEADER:
      return ctx.Metadata(rule.header);
    case config::v1::QuotaRule::METHOD:
      return ctx.path;
    default:
      return "";
  }
}

absl::Status QuotaInterceptor::Rejection(const Rule& rule, const RateLimiter::Decision& d,
                                         CallContext* ctx) {
  const RateLimiter::Limits& limits = rule.limiter->limits();
  ctx->response_headers.emplace_back("retry-after",
                                     Seconds(std::max(d.retry_after, absl::Seconds(1))));
  ctx->response_headers.emplace_back("ratelimit-limit", absl::StrCat(limits.burst));
  ctx->response_headers.emplace_back("ratelimit-remaining", "0");
  ctx->response_headers.emplace_back("ratelimit-reset", Seconds(d.reset_after));
  return absl::ResourceExhaustedError(absl::StrCat(
      "quota \"", rule.name, "\" exceeded (", limits.requests, " calls per ",
      absl::FormatDuration(limits.period), ", burst ", limits.burst, "); retry after ",
      absl::FormatDuration(absl::Ceil(d.retry_after, absl::Milliseconds(1)))));
}

void QuotaInterceptor::OnStoreFailure(const absl::Status& status) const {
  store_->CountFailureDecision(fail_open_);
  if (store_down_.exchange(true, std::memory_order_acq_rel)) return;  // once per outage
  LogWarn(absl::StrCat("quota store unavailable (", status.message(), "); failing ",
                       fail_open_ ? "open: shared quotas are not enforced"
                                  : "closed: calls under shared quotas are rejected"));
}

void QuotaInterceptor::OnStoreAnswered() const {
  if (!store_down_.load(std::memory_order_relaxed) ||
      !store_down_.exchange(false, std::memory_order_acq_rel)) {
    return;
  }
  LogInfo("quota store answers again; shared quotas are enforced");
}

// The shared rules of one call, checked in Redis together.
struct QuotaInterceptor::SharedCheck {
  const QuotaInterceptor* self;
  CallContext* ctx;
  std::atomic<int> waiting{0};
  absl::Mutex mu;
  // The first rejection (by rule order) and the first store failure.
  int rejected_index ABSL_GUARDED_BY(mu) = -1;
  RateLimiter::Decision rejected;
  absl::Status failure ABSL_GUARDED_BY(mu);
  std::vector<const Rule*> rules;
  std::vector<std::string> keys;

  void Done(int index, absl::StatusOr<RateLimiter::Decision> result) {
    {
      absl::MutexLock lock(&mu);
      if (!result.ok()) {
        if (failure.ok()) failure = result.status();
      } else if (!result->allowed && (rejected_index < 0 || index < rejected_index)) {
        rejected_index = index;
        rejected = *result;
      }
    }
    if (waiting.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    absl::Status outcome;
    {
      absl::MutexLock lock(&mu);
      if (failure.ok()) self->OnStoreAnswered();
      if (rejected_index >= 0) {
        outcome = Rejection(*rules[rejected_index], rejected, ctx);
      } else if (!failure.ok()) {
        self->OnStoreFailure(failure);
        if (!self->fail_open_) {
          outcome = absl::UnavailableError(
              absl::StrCat("quota store unavailable; shared quotas fail closed (",
                           failure.message(), ")"));
        }
      }
    }
    CallContext* c = ctx;
    delete this;
    c->Resume(std::move(outcome));
  }
};

std::shared_ptr<const void> QuotaInterceptor::Resolve(
    const google::protobuf::MethodDescriptor& method) const {
  auto applicable = std::make_shared<std::vector<const Rule*>>();
  for (const auto& rule : rules_) {
    if (rule->applies.Find(&method) != nullptr) applicable->push_back(rule.get());
  }
  if (applicable->empty()) return nullptr;
  return applicable;
}

Interceptor::Result QuotaInterceptor::Intercept(CallContext* ctx, absl::Status* status) const {
  return InterceptWith(ctx, ctx->rule(), status);
}

Interceptor::Result QuotaInterceptor::InterceptWith(CallContext* ctx, const void* rules,
                                                    absl::Status* status) const {
  const auto* applicable = static_cast<const std::vector<const Rule*>*>(rules);
  if (applicable == nullptr) return Result::kContinue;
  SharedCheck* shared = nullptr;
  for (const Rule* rule : *applicable) {
    const absl::string_view key = KeyOf(*rule, *ctx);
    if (rule->shared) {
      if (shared == nullptr) {
        shared = new SharedCheck();
        shared->self = this;
        shared->ctx = ctx;
      }
      shared->rules.push_back(rule);
      shared->keys.push_back(absl::StrCat(rule->redis_prefix, key));
      continue;
    }
    const RateLimiter::Decision d = rule->limiter->Check(key, clock_->Now());
    if (d.allowed) continue;
    delete shared;
    *status = Rejection(*rule, d, ctx);
    return Result::kReject;
  }
  if (shared == nullptr) return Result::kContinue;
  const int n = static_cast<int>(shared->rules.size());
  shared->waiting.store(n, std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    const RateLimiter::Limits& limits = shared->rules[i]->limiter->limits();
    const absl::Duration interval = limits.period / static_cast<int64_t>(limits.requests);
    const absl::Duration tolerance = interval * static_cast<int64_t>(limits.burst - 1);
    // `shared` deletes itself after the last callback: read nothing from it after that.
    std::string key = std::move(shared->keys[i]);
    store_->Check(std::move(key), interval, tolerance,
                  [shared, i](absl::StatusOr<RateLimiter::Decision> result) {
                    shared->Done(i, std::move(result));
                  });
  }
  return Result::kPending;
}

}  // namespace gateway
