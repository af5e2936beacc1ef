// RouteSet: the google.api.http routes of a set of gRPC services, compiled
// once from a DescriptorPool into per-binding MethodPlans and a PathMatcher.
//
// A RouteSet is immutable after Create and thread-safe: any number of threads
// may call Match and read the plans at once. It does not own the pool, which
// must outlive it.
//
// Example:
//   absl::StatusOr<std::unique_ptr<const RouteSet>> routes =
//       RouteSet::Create(pool, {"pkg.Bookstore"}, RouteSetOptions());
//   absl::StatusOr<RouteMatch> m = (*routes)->Match("GET", "/v1/shelves/1/books");
//   // m->plan->method->full_name() == "pkg.Bookstore.ListBooks"
//   // m->bindings == {"1"} (one value per m->plan->path_fields entry)
//
// Every binding of a method becomes its own MethodPlan: the rule itself and
// each of its additional_bindings. Field paths, the body field, the
// response_body field and the update mask field are resolved to descriptors
// at build time, so requests never look fields up by name for them.
#ifndef GATEWAY_TRANSCODER_ROUTE_SET_H_
#define GATEWAY_TRANSCODER_ROUTE_SET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "transcoder/http_template.h"
#include "transcoder/path_matcher.h"

namespace gateway::transcoder {

// A chain of fields from the request message down, e.g. {book, id} for
// "book.id". Every field but the last is a singular message field.
using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

struct MethodPlan {
  enum class BodyKind {
    kNone,   // no body: every field not bound by the path comes from the query
    kWhole,  // body "*": the body is the whole request message
    kField,  // body "<field>": the body is one top-level field
  };

  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string http_method;  // "GET", "POST", ... or the custom kind
  HttpTemplate path_template;
  std::string rule_text;  // e.g. get "/v1/{name=shelves/*}", for messages

  // One entry per path_template.variables entry, same order.
  std::vector<FieldPath> path_fields;

  BodyKind body_kind = BodyKind::kNone;
  const google::protobuf::FieldDescriptor* body_field = nullptr;  // kField
  // The body is a google.api.HttpBody (the whole request or the body field):
  // the raw bytes and content type are stored instead of parsing JSON.
  bool body_is_http_body = false;

  // response_body "<field>", or nullptr for the whole response message.
  const google::protobuf::FieldDescriptor* response_body_field = nullptr;
  // The response (or the response_body field) is a google.api.HttpBody.
  bool response_is_http_body = false;

  // For PATCH with a body field: the first top-level google.protobuf.FieldMask
  // field of the request, filled from the body's JSON keys when the request
  // leaves it empty. nullptr otherwise.
  const google::protobuf::FieldDescriptor* update_mask_field = nullptr;

  bool client_streaming = false;
  bool server_streaming = false;
};

struct RouteMatch {
  const MethodPlan* plan = nullptr;  // owned by the RouteSet
  // Decoded values, one per plan->path_fields entry.
  std::vector<std::string> bindings;
};

struct RouteSetOptions {
  // Also route POST "/<package.Service>/<Method>" with body "*" for every
  // method of the exposed services (also those without a google.api.http
  // option).
  bool expose_grpc_paths = false;
};

class RouteSet {
 public:
  // Builds the routes of `services` (full names, e.g. "pkg.Bookstore") from
  // the google.api.http options found in `pool`. Methods without the option
  // are not routed (unless options.expose_grpc_paths).
  //
  // Returns INVALID_ARGUMENT when a service is not in the pool, when a rule is
  // invalid (the message names the method, the rule and, for template
  // errors, the position), or when two rules conflict (naming both methods).
  static absl::StatusOr<std::unique_ptr<const RouteSet>> Create(
      const google::protobuf::DescriptorPool& pool,
      const std::vector<std::string>& services,
      const RouteSetOptions& options = RouteSetOptions());

  // Finds the binding for (http_method, path). Returns NOT_FOUND when no
  // route matches; never INVALID_ARGUMENT (bad values are found when the
  // request is translated).
  absl::StatusOr<RouteMatch> Match(absl::string_view http_method,
                                   absl::string_view path) const;

  const std::vector<std::unique_ptr<const MethodPlan>>& plans() const {
    return plans_;
  }
  const google::protobuf::DescriptorPool& pool() const { return *pool_; }

 private:
  RouteSet() = default;

  const google::protobuf::DescriptorPool* pool_ = nullptr;
  std::vector<std::unique_ptr<const MethodPlan>> plans_;
  std::unique_ptr<const PathMatcher> matcher_;
};

// True when `d` is google.api.HttpBody.
bool IsHttpBody(const google::protobuf::Descriptor* d);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_ROUTE_SET_H_
