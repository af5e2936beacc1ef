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

void CollectFiles(const google::protobuf::FileDescriptor* file, std::set<std::string>* out) {
  if (!out->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) CollectFiles(file->dependency(i), out);
}

}  // namespace

ReflectionService::ReflectionService(
    std::function<std::shared_ptr<const RouteTable>()> routes,
    std::vector<const google::protobuf::ServiceDescriptor*> also_serves)
    : routes_(std::move(routes)), also_serves_(std::move(also_serves)) {
  for (const google::protobuf::ServiceDescriptor* s : also_serves_) {
    CollectFiles(s->file(), &own_files_);
  }
}

const google::protobuf::FileDescriptor* ReflectionService::FindFile(
    const google::protobuf::DescriptorPool& pool, const std::string& name,
    const std::string& symbol) const {
  const google::protobuf::FileDescriptor* file =
      name.empty() ? pool.FindFileContainingSymbol(symbol) : pool.FindFileByName(name);
  if (file != nullptr || also_serves_.empty()) return file;
  const google::protobuf::DescriptorPool* own = also_serves_.front()->file()->pool();
  file = name.empty() ? own->FindFileContainingSymbol(symbol) : own->FindFileByName(name);
  return file != nullptr && own_files_.count(file->name()) > 0 ? file : nullptr;
}

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
        std::set<std::string> listed;
        for (const ServiceBinding& b : table->services()) {
          if (listed.insert(b.service).second) list->add_service()->set_name(b.service);
        }
        for (const google::protobuf::ServiceDescriptor* s : also_serves_) {
          if (listed.insert(s->full_name()).second) list->add_service()->set_name(s->full_name());
        }
        break;
      }
      case ServerReflectionRequest::kFileByFilename: {
        const google::protobuf::FileDescriptor* file =
            FindFile(pool, request.file_by_filename(), "");
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
            FindFile(pool, "", request.file_containing_symbol());
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
