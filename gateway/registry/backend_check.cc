#include "gateway/registry/backend_check.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace gateway::registry {
namespace {

using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

bool Unreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// One varint (for the few bytes of the health messages).
void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// grpc.health.v1.Check(HealthCheckRequest{service}) through a generic stub: the status of
// the call and, when OK, HealthCheckResponse.status (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING,
// 3 SERVICE_UNKNOWN).
grpc::Status HealthCheck(grpc::Channel& channel, const std::string& service,
                         absl::Time deadline, int* serving_status) {
  std::string request;
  request.push_back('\x0a');  // field 1, length-delimited
  PutVarint(service.size(), &request);
  request += service;
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call = stub.PrepareUnaryCall(
      &context, "/grpc.health.v1.Health/Check", request_buffer, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);  // the context's deadline bounds it
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  *serving_status = 0;
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return status;
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status = 1 (varint)}: "\x08" then the value (absent when 0).
  if (bytes.size() >= 2 && bytes[0] == '\x08') {
    *serving_status = static_cast<unsigned char>(bytes[1]) & 0x7f;
  }
  return status;
}

}  // namespace

ServiceCheck CheckBackendServes(grpc::Channel& channel, const std::string& service,
                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ServiceCheck check;

  // 1. Server reflection: the list of services.
  {
    std::unique_ptr<ServerReflection::Stub> stub = ServerReflection::NewStub(
        std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    std::unique_ptr<grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>>
        stream = stub->ServerReflectionInfo(&context);
    ServerReflectionRequest request;
    request.set_list_services("*");
    ServerReflectionResponse response;
    const bool answered = stream->Write(request) && stream->Read(&response);
    stream->WritesDone();
    if (answered) context.TryCancel();  // one answer is all it takes
    grpc::Status status = stream->Finish();
    if (answered && response.has_list_services_response()) {
      std::vector<std::string> names;
      for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
      std::sort(names.begin(), names.end());
      const bool served = std::find(names.begin(), names.end(), service) != names.end();
      check.verdict = served ? ServiceCheck::kServed : ServiceCheck::kNotServed;
      check.detail = absl::StrCat("its server reflection lists: ",
                                  names.empty() ? "no service" : absl::StrJoin(names, ", "));
      return check;
    }
    if (!answered && Unreachable(status)) {
      check.detail = absl::StrCat("unreachable: ", status.error_message());
      return check;
    }
  }

  // 2. Health checking: Check with the service's name.
  int serving_status = 0;
  grpc::Status status = HealthCheck(channel, service, deadline, &serving_status);
  if (status.ok()) {
    if (serving_status == 3) {
      check.verdict = ServiceCheck::kNotServed;
      check.detail = "grpc.health.v1 Check answered SERVICE_UNKNOWN";
    } else {
      check.verdict = ServiceCheck::kServed;
      check.detail = absl::StrCat("grpc.health.v1 Check answered ",
                                  serving_status == 1   ? "SERVING"
                                  : serving_status == 2 ? "NOT_SERVING"
                                                        : "UNKNOWN");
    }
    return check;
  }
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    check.verdict = ServiceCheck::kNotServed;
    check.detail = "grpc.health.v1 Check answered NOT_FOUND";
    return check;
  }
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    check.detail = "it serves neither server reflection nor grpc.health.v1";
  } else {
    check.detail = absl::StrCat("grpc.health.v1 Check failed: ", status.error_message());
  }
  return check;
}

}  // namespace gateway::registry
