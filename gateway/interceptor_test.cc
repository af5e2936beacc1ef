#include "gateway/interceptor.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

// Appends its name to the call's caller_id and answers as configured.
class Recorder : public Interceptor {
 public:
  Recorder(std::string name, Result result, absl::Status status = absl::OkStatus())
      : name_(std::move(name)), result_(result), status_(std::move(status)) {}
  absl::string_view name() const override { return name_; }
  std::shared_ptr<const void> Resolve(const google::protobuf::MethodDescriptor&) const override {
    return nullptr;
  }
  Result Intercept(CallContext* ctx, absl::Status* status) const override {
    ctx->caller_id += name_;
    *status = status_;
    return result_;
  }

 private:
  std::string name_;
  Result result_;
  absl::Status status_;
};

// Goes asynchronous: resumes from another thread with `status`.
class Async : public Interceptor {
 public:
  explicit Async(absl::Status status) : status_(std::move(status)) {}
  absl::string_view name() const override { return "async"; }
  std::shared_ptr<const void> Resolve(const google::protobuf::MethodDescriptor&) const override {
    return nullptr;
  }
  Result Intercept(CallContext* ctx, absl::Status*) const override {
    ctx->caller_id += "async";
    std::thread([ctx, status = status_] { ctx->Resume(status); }).detach();
    return Result::kPending;
  }

 private:
  absl::Status status_;
};

using Result = Interceptor::Result;

// Claims headers and sets one of them toward the backend.
class Claimer : public Interceptor {
 public:
  absl::string_view name() const override { return "claimer"; }
  std::shared_ptr<const void> Resolve(const google::protobuf::MethodDescriptor&) const override {
    return nullptr;
  }
  std::vector<std::string> OwnedMetadata() const override {
    return {"X-Verified-User", "not a name", "grpc-status"};
  }
  Result Intercept(CallContext* ctx, absl::Status*) const override {
    ctx->backend_metadata.Set("x-verified-user", "alice");
    ctx->backend_metadata.Remove("x-debug");
    return Result::kContinue;
  }
};

TEST(InterceptorChain, MetadataPolicyOwnsWhatItsInterceptorsClaim) {
  InterceptorChain chain({std::make_shared<Claimer>()});
  const metadata::MetadataPolicy& policy = chain.metadata_policy();
  EXPECT_TRUE(policy.IsOwned("x-verified-user"));
  EXPECT_FALSE(policy.IsOwned("not a name"));  // no interceptor could set it
  EXPECT_FALSE(policy.IsOwned("x-other"));
  EXPECT_TRUE(InterceptorChain().metadata_policy().owned().empty());
}

TEST(InterceptorChain, InterceptorEditsReplaceTheClientsMetadata) {
  InterceptorChain chain({std::make_shared<Claimer>()});
  const std::vector<metadata::Entry> client = {
      {"x-verified-user", "forged"}, {"x-debug", "1"}, {"x-request-id", "r1"}};
  std::vector<metadata::OwnedEntry> out;
  ASSERT_TRUE(chain.metadata_policy()
                  .CollectClientMetadata(metadata::Protocol::kGrpc, client, nullptr, &out)
                  .ok());
  CallContext ctx;
  absl::Status result = absl::UnknownError("not run");
  chain.Run(&ctx, [&](CallContext*, absl::Status s) { result = s; });
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(metadata::MetadataPolicy::ApplyEdits(ctx.backend_metadata, &out).ok());
  EXPECT_THAT(out, ::testing::ElementsAre(::testing::Pair("x-request-id", "r1"),
                                          ::testing::Pair("x-verified-user", "alice")));
}

TEST(InterceptorChain, EmptyChainAcceptsInlineAndKeepsTheClientDeadline) {
  InterceptorChain chain;
  CallContext ctx;
  ctx.client_deadline = absl::FromUnixSeconds(100);
  bool called = false;
  chain.Run(&ctx, [&](CallContext* c, absl::Status status) {
    called = true;
    EXPECT_TRUE(status.ok());
    EXPECT_EQ(c->backend_deadline, absl::FromUnixSeconds(100));
  });
  EXPECT_TRUE(called);
}

TEST(InterceptorChain, RunsInOrderAndStopsAtTheFirstRejection) {
  InterceptorChain chain({std::make_shared<Recorder>("a", Result::kContinue),
                          std::make_shared<Recorder>(
                              "b", Result::kReject, absl::UnauthenticatedError("no token")),
                          std::make_shared<Recorder>("c", Result::kContinue)});
  CallContext ctx;
  absl::Status outcome;
  int calls = 0;
  chain.Run(&ctx, [&](CallContext*, absl::Status status) {
    ++calls;
    outcome = status;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ctx.caller_id, "ab");
  EXPECT_EQ(outcome, absl::UnauthenticatedError("no token"));
}

TEST(InterceptorChain, RejectionWithoutStatusBecomesInternal) {
  InterceptorChain chain({std::make_shared<Recorder>("bad", Result::kReject)});
  CallContext ctx;
  absl::Status outcome;
  chain.Run(&ctx, [&](CallContext*, absl::Status status) { outcome = status; });
  EXPECT_EQ(outcome.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(outcome.message()), testing::HasSubstr("bad"));
}

TEST(InterceptorChain, PendingInterceptorResumesTheRestFromAnotherThread) {
  InterceptorChain chain({std::make_shared<Recorder>("a", Result::kContinue),
                          std::make_shared<Async>(absl::OkStatus()),
                          std::make_shared<Recorder>("c", Result::kContinue)});
  CallContext ctx;
  absl::Notification done;
  absl::Status outcome = absl::UnknownError("not called");
  chain.Run(&ctx, [&](CallContext*, absl::Status status) {
    outcome = status;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(ctx.caller_id, "aasyncc");
}

TEST(InterceptorChain, PendingInterceptorCanReject) {
  InterceptorChain chain({std::make_shared<Async>(absl::ResourceExhaustedError("over")),
                          std::make_shared<Recorder>("never", Result::kContinue)});
  CallContext ctx;
  absl::Notification done;
  absl::Status outcome;
  chain.Run(&ctx, [&](CallContext*, absl::Status status) {
    outcome = status;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(outcome, absl::ResourceExhaustedError("over"));
  EXPECT_EQ(ctx.caller_id, "async");
}

// Resolves to the method's name and records what each call got as its rule.
class RuleEcho : public Interceptor {
 public:
  absl::string_view name() const override { return "rule-echo"; }
  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override {
    ++resolved;
    return std::make_shared<const std::string>("rule of " + method.name());
  }
  Result Intercept(CallContext* ctx, absl::Status*) const override {
    const auto* rule = static_cast<const std::string*>(ctx->rule());
    ctx->caller_id = rule == nullptr ? "no rule" : *rule;
    return Result::kContinue;
  }
  mutable int resolved = 0;
};

TEST(InterceptorChain, HandsEachInterceptorTheRuleResolvedForTheMethod) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("svc.proto");
  file.set_package("p");
  file.add_message_type()->set_name("M");
  auto* service = file.add_service();
  service->set_name("S");
  auto* m = service->add_method();
  m->set_name("Get");
  m->set_input_type(".p.M");
  m->set_output_type(".p.M");
  google::protobuf::DescriptorPool pool;
  ASSERT_NE(pool.BuildFile(file), nullptr);
  const google::protobuf::MethodDescriptor* method = pool.FindMethodByName("p.S.Get");

  auto echo = std::make_shared<RuleEcho>();
  InterceptorChain chain({echo});
  const MethodRules rules = chain.Resolve(*method);
  EXPECT_EQ(echo->resolved, 1);

  // Resolved rules are used as they are: no resolution per call.
  for (int i = 0; i < 3; ++i) {
    CallContext ctx;
    ctx.method = method;
    ctx.rules = &rules;
    chain.Run(&ctx, [](CallContext*, absl::Status status) { EXPECT_TRUE(status.ok()); });
    EXPECT_EQ(ctx.caller_id, "rule of Get");
  }
  EXPECT_EQ(echo->resolved, 1);

  // Rules of another chain do not fit: resolved on the spot.
  InterceptorChain other({echo});
  CallContext ctx;
  ctx.method = method;
  ctx.rules = &rules;
  other.Run(&ctx, [](CallContext*, absl::Status) {});
  EXPECT_EQ(ctx.caller_id, "rule of Get");
  EXPECT_EQ(echo->resolved, 2);

  // No method: no rule.
  CallContext bare;
  chain.Run(&bare, [](CallContext*, absl::Status) {});
  EXPECT_EQ(bare.caller_id, "no rule");
}

TEST(CallContext, MetadataReturnsTheFirstValue) {
  CallContext ctx;
  ctx.request_metadata = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
  EXPECT_EQ(ctx.Metadata("a"), "1");
  EXPECT_EQ(ctx.Metadata("b"), "2");
  EXPECT_EQ(ctx.Metadata("c"), "");
}

}  // namespace
}  // namespace gateway
