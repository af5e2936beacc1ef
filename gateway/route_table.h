// RouteTable: which backend serves each gRPC method, resolved once from the descriptor
// pool, looked up per call by the method's path ("/pkg.Service/Method").
//
// A RouteTable is immutable. It keeps alive everything its routes point to (the descriptor
// pool, the backends), so a call holding the table may use its Route for as long as the
// call runs, even after a new table has been published (see Snapshot<T>).
//
// Thread-safety: immutable; safe for concurrent use.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const RouteTable>> table =
//       RouteTable::Create(pool, {{"bookstore.v1.Bookstore", backend}});
//   const Route* route = (*table)->Find("/bookstore.v1.Bookstore/GetShelf");
//
// The table also holds the HTTP routes of the same services (their google.api.http rules,
// compiled into a transcoder::Transcoder), so gRPC and HTTP routing always change
// together; every HTTP binding is resolved to its Route at build time:
//   absl::StatusOr<transcoder::RouteMatch> m =
//       (*table)->transcoder().Match("GET", "/v1/shelves/1");
//   const Route* route = (*table)->ForPlan(m->plan);

#ifndef GATEWAY_ROUTE_TABLE_H_
#define GATEWAY_ROUTE_TABLE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/interceptor.h"
#include "gateway/upstream.h"
#include "google/protobuf/descriptor.h"
#include "transcoder/transcoder.h"

namespace gateway {

enum class CallKind { kUnary, kClientStreaming, kServerStreaming, kBidiStreaming };

// The name of a call kind ("unary", "client streaming", ...).
absl::string_view CallKindName(CallKind kind);

struct Route {
  std::string path;  // "/pkg.Service/Method"
  const google::protobuf::MethodDescriptor* method = nullptr;
  CallKind kind = CallKind::kUnary;
  Backend* backend = nullptr;
  // What the table's interceptor chain applies to this method, for CallContext::rules.
  MethodRules rules;
};

// One service and the backend that serves all its methods.
struct ServiceBinding {
  std::string service;  // full name, "pkg.Service"
  std::shared_ptr<Backend> backend;
};

class RouteTable {
 public:
  // Builds the routes of every method of every bound service, and their HTTP routes with
  // `http_options`, and resolves the rules of `chain` (null: no interceptors) for every
  // method; the table keeps the chain for the front ends (chain()). Returns INVALID_ARGUMENT when a service is not in `pool` or is bound
  // twice, naming it, or with the transcoder's message when an HTTP rule is invalid or two
  // rules conflict.
  static absl::StatusOr<std::shared_ptr<const RouteTable>> Create(
      std::shared_ptr<const google::protobuf::DescriptorPool> pool,
      std::vector<ServiceBinding> services,
      const transcoder::TranscoderOptions& http_options = transcoder::TranscoderOptions(),
      std::shared_ptr<const InterceptorChain> chain = nullptr);

  // The route for a method path, or nullptr when no bound service has that method.
  // The pointer is valid as long as this table is.
  const Route* Find(absl::string_view path) const {
    auto it = routes_.find(path);
    return it == routes_.end() ? nullptr : &it->second;
  }

  // The HTTP routes (google.api.http rules) of the bound services.
  const transcoder::Transcoder& transcoder() const { return *transcoder_; }

  // The Route of an HTTP binding of this table's transcoder (never null for a plan that
  // transcoder().Match() returned). Valid as long as this table is.
  const Route* ForPlan(const transcoder::MethodPlan* plan) const {
    auto it = plan_routes_.find(plan);
    return it == plan_routes_.end() ? nullptr : it->second;
  }

  // The interceptors every call of this table runs through (never null; may be empty).
  // Route::rules were resolved for this chain.
  const InterceptorChain& chain() const { return *chain_; }
  const std::shared_ptr<const InterceptorChain>& shared_chain() const { return chain_; }

  const google::protobuf::DescriptorPool& pool() const { return *pool_; }
  const std::vector<ServiceBinding>& services() const { return services_; }
  std::size_t size() const { return routes_.size(); }

 private:
  RouteTable() = default;

  std::shared_ptr<const google::protobuf::DescriptorPool> pool_;
  std::vector<ServiceBinding> services_;
  std::shared_ptr<const InterceptorChain> chain_;
  absl::flat_hash_map<std::string, Route> routes_;
  // Declared after pool_: refers to it.
  std::unique_ptr<const transcoder::Transcoder> transcoder_;
  absl::flat_hash_map<const transcoder::MethodPlan*, const Route*> plan_routes_;
};

}  // namespace gateway

#endif  // GATEWAY_ROUTE_TABLE_H_
