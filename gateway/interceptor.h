// The interceptor chain: one sequence of checks (authentication, quotas, deadlines) that
// every call runs through before it is sent to its backend, whichever front end (gRPC or
// HTTP) received it.
//
// A front end builds a CallContext from what it decoded (method, metadata, peer, deadline),
// runs the chain, and, when the chain accepts the call, sends it to the backend with the
// metadata and deadline the interceptors left in the context; when it rejects the call, the
// front end answers with the status (gRPC) or its HTTP mapping plus `response_headers`.
// The chain never sees a grpc::ServerContext or an HTTP parser: a front end that relays
// HTTP/2 frames itself can run it as well.
//
// Interceptors are synchronous in the common case (a cached token, a local bucket): they
// return kContinue or kReject at once. One that must wait (a JWKS fetch, a Redis check)
// returns kPending and later calls the context's Resume() exactly once, from any thread;
// the chain then goes on from the next interceptor. The front end learns the outcome
// through the `done` callback given to Run(), which is invoked exactly once, inline when no
// interceptor went asynchronous.
//
// Rules per method: each interceptor resolves once per method what applies to it
// (Interceptor::Resolve: the auth rule, the quota rules, the deadline rule). Route tables
// do that when they are built, for the configured services and for services registered at
// run time alike, and keep the result in each Route (MethodRules); a front end passes it in
// CallContext::rules, so a call pays no selector matching. A context without rules (or with
// rules of another chain) is resolved on the spot, which is correct but slower.
//
// Thread-safety: an InterceptorChain and its interceptors are immutable and shared by all
// calls; a CallContext belongs to one call.
//
// Example:
//   CallContext ctx;
//   ctx.method = route->method; ctx.path = "/pkg.Svc/Method"; ctx.rules = &route->rules; ...
//   chain.Run(&ctx, [](CallContext* ctx, absl::Status status) {
//     if (!status.ok()) { reject(status, ctx->response_headers); return; }
//     forward(client metadata + ctx->backend_metadata edits, ctx->backend_deadline);
//   });

#ifndef GATEWAY_INTERCEPTOR_H_
#define GATEWAY_INTERCEPTOR_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/upstream/retry_policy.h"
#include "google/protobuf/descriptor.h"

namespace gateway {

enum class FrontEnd { kGrpc, kHttp };

class InterceptorChain;

// What every interceptor of one chain does for one method (see InterceptorChain::Resolve).
struct MethodRules {
  const InterceptorChain* chain = nullptr;
  // One entry per interceptor of `chain`, in order: what its Resolve() returned.
  std::vector<std::shared_ptr<const void>> rules;
};

// Everything an interceptor may read about a call, and what it may add.
struct CallContext {
  // --- Set by the front end before Run(). ---
  FrontEnd front_end = FrontEnd::kGrpc;
  // The resolved method; never null.
  const google::protobuf::MethodDescriptor* method = nullptr;
  // The method's rules as resolved for the chain (Route::rules); may be null.
  const MethodRules* rules = nullptr;
  // "/pkg.Service/Method".
  std::string path;
  // Request metadata / headers, keys lower case, viewing the front end's storage (valid
  // until the call ends). For HTTP calls the raw query string is in `query`.
  std::vector<std::pair<absl::string_view, absl::string_view>> request_metadata;
  absl::string_view query;
  // The client's address ("ipv4:127.0.0.1:5000" style or "127.0.0.1:5000").
  std::string peer_address;
  // Verified client certificate identity (SAN URI such as a SPIFFE id, or the subject),
  // empty without mutual TLS.
  std::string peer_identity;
  // The deadline the client asked for (InfiniteFuture when none).
  absl::Time client_deadline = absl::InfiniteFuture();
  // The time the call arrived (from the chain's clock).
  absl::Time arrival;

  // --- Set by interceptors. ---
  // Who is calling (a token subject, an API key id), for quotas and logs; empty if
  // anonymous.
  std::string caller_id;
  // Changes to the metadata the backend gets (on top of the client's entries that the
  // metadata policy forwards): Set() replaces the client's values of a key, Add() appends,
  // Remove() drops a key. Keys lower case; an interceptor that sets a header should claim
  // it (Interceptor::OwnedMetadata) so that a client's copy is never forwarded. Entries
  // are checked against gRPC's rules before use (an invalid one fails the call: INTERNAL).
  metadata::MetadataEdits backend_metadata;
  // The deadline to give the backend call (starts as client_deadline).
  absl::Time backend_deadline = absl::InfiniteFuture();
  // When the backend call is tried again (the retry interceptor sets it from
  // `retries.rules`); null: only calls the backend did not process are. Used by the HTTP
  // front end's upstream; the gRPC front end does not retry yet.
  const upstream::RetryPolicy* retry_policy = nullptr;
  // Headers for the HTTP response when the call is rejected (WWW-Authenticate,
  // Retry-After, RateLimit-*). gRPC front ends send them as trailing metadata.
  std::vector<std::pair<std::string, std::string>> response_headers;

  // The one way a front end makes the context of a call (every front end sets the same
  // fields the same way): what the call is, who sent it, its deadline. The front end then
  // appends request_metadata (views into its own storage) and, for HTTP, sets `query`.
  // backend_deadline starts as client_deadline.
  struct Facts {
    FrontEnd front_end = FrontEnd::kGrpc;
    const google::protobuf::MethodDescriptor* method = nullptr;
    const MethodRules* rules = nullptr;
    std::string path;
    std::string peer_address;
    std::string peer_identity;
    absl::Time client_deadline = absl::InfiniteFuture();
    absl::Time arrival;
    size_t metadata_entries = 0;  // capacity to reserve for request_metadata
  };
  static std::unique_ptr<CallContext> Make(Facts facts);

  // The first value of metadata `key` (lower case), or empty.
  absl::string_view Metadata(absl::string_view key) const {
    for (const auto& [k, v] : request_metadata) {
      if (k == key) return v;
    }
    return {};
  }

  // While an interceptor runs: what its Resolve() returned for ctx->method (null: nothing
  // applies).
  const void* rule() const { return rule_; }

  // For interceptors that returned kPending: continue the chain with `status` (OK goes on
  // to the next interceptor, an error rejects the call). Exactly once, from any thread.
  void Resume(absl::Status status);

 private:
  friend class InterceptorChain;
  const InterceptorChain* chain_ = nullptr;
  std::size_t next_ = 0;
  const MethodRules* active_rules_ = nullptr;
  std::shared_ptr<const MethodRules> resolved_;  // when `rules` did not fit the chain
  const void* rule_ = nullptr;
  std::function<void(CallContext*, absl::Status)> done_;
};

class Interceptor {
 public:
  enum class Result { kContinue, kReject, kPending };

  virtual ~Interceptor() = default;

  // A short name for logs and metrics ("jwt", "quota", "deadline").
  virtual absl::string_view name() const = 0;

  // What applies to `method` (the rule, or the list of rules), resolved when a route table
  // is built, never per call; Intercept() gets it back as ctx->rule(). Null: nothing applies.
  // The result may point into this interceptor (which outlives every route table holding
  // its chain) or own what it points to.
  virtual std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const = 0;

 protected:
  // A Resolve() result that points at `rule` without owning it.
  static std::shared_ptr<const void> Borrowed(const void* rule) {
    return std::shared_ptr<const void>(std::shared_ptr<const void>(), rule);
  }

 public:

  // The request headers only this interceptor may set toward the backend (lower case):
  // the front ends remove a client's copies of them on every call (see
  // gateway/metadata/metadata_policy.h). Asked once, when the chain is built.
  virtual std::vector<std::string> OwnedMetadata() const { return {}; }

  // Examines the call. kContinue: go on. kReject: stop with *status (an error, with a
  // message that tells the client what was wrong). kPending: the interceptor will call
  // ctx->Resume() later.
  virtual Result Intercept(CallContext* ctx, absl::Status* status) const = 0;
};

class InterceptorChain {
 public:
  InterceptorChain() = default;
  // Builds the chain's metadata policy from what its interceptors own (a name that is not
  // a valid text metadata key is left out: no interceptor can set it).
  explicit InterceptorChain(std::vector<std::shared_ptr<const Interceptor>> interceptors);

  // Runs the interceptors in order; calls `done` exactly once with OK (the call may go
  // ahead) or the rejecting status. `ctx` must stay alive until `done` ran.
  void Run(CallContext* ctx, std::function<void(CallContext*, absl::Status)> done) const;

  // The rules of every interceptor for `method`.
  MethodRules Resolve(const google::protobuf::MethodDescriptor& method) const;

  // What every front end forwards, drops and reserves for calls run through this chain.
  const metadata::MetadataPolicy& metadata_policy() const { return metadata_policy_; }

  std::size_t size() const { return interceptors_.size(); }
  bool empty() const { return interceptors_.empty(); }
  // The interceptors, in order (to build a chain that runs more after them).
  const std::vector<std::shared_ptr<const Interceptor>>& interceptors() const {
    return interceptors_;
  }

 private:
  friend struct CallContext;
  // Runs from ctx->next_ until the end, a rejection or a pending interceptor.
  void Continue(CallContext* ctx) const;

  std::vector<std::shared_ptr<const Interceptor>> interceptors_;
  metadata::MetadataPolicy metadata_policy_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTOR_H_
