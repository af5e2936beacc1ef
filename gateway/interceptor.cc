#include "gateway/interceptor.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway {

std::unique_ptr<CallContext> CallContext::Make(Facts facts) {
  auto ctx = std::make_unique<CallContext>();
  ctx->front_end = facts.front_end;
  ctx->method = facts.method;
  ctx->rules = facts.rules;
  ctx->path = std::move(facts.path);
  ctx->request_metadata.reserve(facts.metadata_entries);
  ctx->peer_address = std::move(facts.peer_address);
  ctx->peer_identity = std::move(facts.peer_identity);
  ctx->client_deadline = facts.client_deadline;
  ctx->backend_deadline = facts.client_deadline;
  ctx->arrival = facts.arrival;
  return ctx;
}

InterceptorChain::InterceptorChain(std::vector<std::shared_ptr<const Interceptor>> interceptors)
    : interceptors_(std::move(interceptors)) {
  std::vector<std::string> owned;
  for (const auto& interceptor : interceptors_) {
    for (std::string& name : interceptor->OwnedMetadata()) {
      if (metadata::MetadataPolicy::Create({name}).ok()) owned.push_back(std::move(name));
    }
  }
  metadata_policy_ = *metadata::MetadataPolicy::Create(owned);
}

void InterceptorChain::Run(CallContext* ctx,
                           std::function<void(CallContext*, absl::Status)> done) const {
  ctx->chain_ = this;
  ctx->next_ = 0;
  ctx->done_ = std::move(done);
  if (ctx->rules != nullptr && ctx->rules->chain == this) {
    ctx->active_rules_ = ctx->rules;
  } else {
    auto resolved = std::make_shared<MethodRules>();
    if (ctx->method != nullptr) {
      *resolved = Resolve(*ctx->method);
    } else {  // nothing to resolve against: no interceptor has a rule
      resolved->chain = this;
      resolved->rules.resize(interceptors_.size());
    }
    ctx->active_rules_ = resolved.get();
    ctx->resolved_ = std::move(resolved);
  }
  if (ctx->backend_deadline == absl::InfiniteFuture()) {
    ctx->backend_deadline = ctx->client_deadline;
  }
  Continue(ctx);
}

void InterceptorChain::Continue(CallContext* ctx) const {
  while (ctx->next_ < interceptors_.size()) {
    ctx->rule_ = ctx->active_rules_->rules[ctx->next_].get();
    const Interceptor& interceptor = *interceptors_[ctx->next_++];
    absl::Status status;
    switch (interceptor.Intercept(ctx, &status)) {
      case Interceptor::Result::kContinue:
        continue;
      case Interceptor::Result::kReject: {
        if (status.ok()) {
          status = absl::InternalError(
              absl::StrCat("interceptor ", interceptor.name(), " rejected without a reason"));
        }
        auto done = std::move(ctx->done_);
        done(ctx, std::move(status));
        return;
      }
      case Interceptor::Result::kPending:
        return;
    }
  }
  auto done = std::move(ctx->done_);
  done(ctx, absl::OkStatus());
}

MethodRules InterceptorChain::Resolve(const google::protobuf::MethodDescriptor& method) const {
  MethodRules rules;
  rules.chain = this;
  rules.rules.reserve(interceptors_.size());
  for (const auto& interceptor : interceptors_) rules.rules.push_back(interceptor->Resolve(method));
  return rules;
}

void CallContext::Resume(absl::Status status) {
  if (!status.ok()) {
    auto done = std::move(done_);
    done(this, std::move(status));
    return;
  }
  chain_->Continue(this);
}

}  // namespace gateway
