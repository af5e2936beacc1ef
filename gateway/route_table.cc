#include "gateway/route_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway {

absl::string_view CallKindName(CallKind kind) {
  switch (kind) {
    case CallKind::kUnary:
      return "unary";
    case CallKind::kClientStreaming:
      return "client streaming";
    case CallKind::kServerStreaming:
      return "server streaming";
    case CallKind::kBidiStreaming:
      return "bidi streaming";
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::Create(
    std::shared_ptr<const google::protobuf::DescriptorPool> pool,
    std::vector<ServiceBinding> services, const transcoder::TranscoderOptions& http_options,
    std::shared_ptr<const InterceptorChain> chain) {
  std::shared_ptr<RouteTable> table(new RouteTable());
  table->chain_ = chain != nullptr ? std::move(chain) : std::make_shared<const InterceptorChain>();
  for (const ServiceBinding& binding : services) {
    if (binding.backend == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("service ", binding.service, ": no backend"));
    }
    const google::protobuf::ServiceDescriptor* service =
        pool->FindServiceByName(binding.service);
    if (service == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "service \"", binding.service, "\" is not defined in the descriptor sets"));
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      Route route;
      route.path = absl::StrCat("/", service->full_name(), "/", method->name());
      route.method = method;
      route.backend = binding.backend.get();
      if (method->client_streaming() && method->server_streaming()) {
        route.kind = CallKind::kBidiStreaming;
      } else if (method->client_streaming()) {
        route.kind = CallKind::kClientStreaming;
      } else if (method->server_streaming()) {
        route.kind = CallKind::kServerStreaming;
      } else {
        route.kind = CallKind::kUnary;
      }
      if (!table->chain_->empty()) route.rules = table->chain_->Resolve(*method);
      std::string key = route.path;
      if (!table->routes_.emplace(std::move(key), std::move(route)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("service \"", binding.service, "\" is bound more than once"));
      }
    }
  }
  std::vector<std::string> names;
  names.reserve(services.size());
  for (const ServiceBinding& binding : services) names.push_back(binding.service);
  absl::StatusOr<std::unique_ptr<const transcoder::Transcoder>> http =
      transcoder::Transcoder::Create(*pool, names, http_options);
  if (!http.ok()) return http.status();
  table->transcoder_ = *std::move(http);
  for (const auto& plan : table->transcoder_->routes().plans()) {
    const std::string path = absl::StrCat("/", plan->method->service()->full_name(), "/",
                                          plan->method->name());
    auto it = table->routes_.find(path);
    if (it == table->routes_.end()) {
      return absl::InternalError(absl::StrCat("HTTP rule of ", path, " has no route"));
    }
    table->plan_routes_.emplace(plan.get(), &it->second);
  }
  table->pool_ = std::move(pool);
  table->services_ = std::move(services);
  return std::shared_ptr<const RouteTable>(std::move(table));
}

}  // namespace gateway
