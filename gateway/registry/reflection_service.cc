#include "gateway/registry/reflection_service.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway::registry {
namespace {

using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

// Appends `file` and the files it imports (dependencies first), each once.
void AddFileAndDeps(const google::protobuf::FileDescriptor* file, std::set<std::string>* sent,
                    ServerReflectionResponse* response) {
  if (!sent->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndDeps(file->dependency(i), sent, response);
  }
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  file->CopyJsonNameTo(&proto);
  proto.SerializeToString(
      response->mutable_file_descriptor_response()->add_file_descriptor_proto());
}

void Error(grpc::StatusCode code, const std::string& message,
           ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(code);
  response->mutable_error_response()->set_error_message(message);
}

}  // namespace

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>* stream) {
  ServerReflectionRequest request;
  while (stream->Read(&request)) {
    std::shared_ptr<const RouteTable> table = routes_();
    if (table == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting");
    const google::protobuf::DescriptorPool& pool = table->pool();
    ServerReflectionResponse response;
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    std::set<std::string> sent;
    switch (request.message_request_case()) {
      case ServerReflectionRequest::kListServices: {
        auto* list = response.mutable_list_services_response();
        for (const ServiceBinding& b : table->services()) list->add_service()->set_name(b.service);
        break;
      }
      case ServerReflectionRequest::kFileByFilename: {
        const google::protobuf::FileDescriptor* file =
            pool.FindFileByName(request.file_by_filename());
        if (file == nullptr) {
          Error(grpc::StatusCode::NOT_FOUND,
                absl::StrCat("file not found: ", request.file_by_filename()), &response);
        } else {
          AddFileAndDeps(file, &sent, &response);
        }
        break;
      }
      case ServerReflectionRequest::kFileContainingSymbol: {
        const google::protobuf::FileDescriptor* file =
            pool.FindFileContainingSymbol(request.file_containing_symbol());
        if (file == nullptr) {
          Error(grpc::StatusCode::NOT_FOUND,
                absl::StrCat("symbol not found: ", request.file_containing_symbol()),
                &response);
        } else {
          AddFileAndDeps(file, &sent, &response);
        }
        break;
      }
      default:
        Error(grpc::StatusCode::UNIMPLEMENTED, "extension queries are not supported",
              &response);
        break;
    }
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

}  // namespace gateway::registry
