// ReflectionService: gRPC server reflection (grpc.reflection.v1alpha) over the route table
// the gateway currently serves, so reflection clients (grpcurl, grpc_cli, gatewayctl
// --from-reflection) see every service of the config and of the registry, each change
// included as soon as it is published.
//
// gatewayd serves one on the admin listener (listing the served services and the admin
// API, which that listener serves) and one on a loopback server of its own to which the
// front ends route the reflection service (listing exactly what they serve), so clients of
// the gateway ask the gateway itself and see only what they could call there (see
// AdminServer). Reflection answers never require the admin token: they describe what the
// listener serves anyway.
//
// Thread-safety: thread-safe; each call reads the table once per request.
//
// Example:
//   ReflectionService reflection([&] { return registry->routes(); });
//   builder.RegisterService(&reflection);

#ifndef GATEWAY_REGISTRY_REFLECTION_SERVICE_H_
#define GATEWAY_REGISTRY_REFLECTION_SERVICE_H_

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gateway/route_table.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace gateway::registry {

// The full name of the reflection service.
inline constexpr char kReflectionService[] = "grpc.reflection.v1alpha.ServerReflection";

class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `routes` returns the current table (may return null while starting: the call then
  // fails with UNAVAILABLE). `also_serves` are services of the listener itself that are
  // not in the table (e.g. the admin API on the admin listener): listed too, and their
  // files (with imports) answered. The descriptors must outlive the service (e.g. from the
  // generated pool).
  explicit ReflectionService(
      std::function<std::shared_ptr<const RouteTable>()> routes,
      std::vector<const google::protobuf::ServiceDescriptor*> also_serves = {});

  // Answers list_services (every bound service), file_by_filename and
  // file_containing_symbol (the file and every file it imports, dependencies first);
  // NOT_FOUND in an error_response for an unknown name, UNIMPLEMENTED for extension queries.
  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1alpha::ServerReflectionResponse,
                               grpc::reflection::v1alpha::ServerReflectionRequest>* stream)
      override;

 private:
  // The file named `name` or holding `symbol` (one of them empty) from the table's pool,
  // else from the files of also_serves_; nullptr when neither has it.
  const google::protobuf::FileDescriptor* FindFile(const google::protobuf::DescriptorPool& pool,
                                                   const std::string& name,
                                                   const std::string& symbol) const;

  const std::function<std::shared_ptr<const RouteTable>()> routes_;
  const std::vector<const google::protobuf::ServiceDescriptor*> also_serves_;
  std::set<std::string> own_files_;  // files of also_serves_ and their imports
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REFLECTION_SERVICE_H_
