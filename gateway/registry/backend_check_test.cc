#include "gateway/registry/backend_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

using ::testing::HasSubstr;

using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

// Server reflection that lists two services (and answers nothing else).
class ListingReflection final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  grpc::Status ServerReflectionInfo(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>* stream)
      override {
    ServerReflectionRequest request;
    while (stream->Read(&request)) {
      ServerReflectionResponse response;
      if (request.has_list_services()) {
        response.mutable_list_services_response()->add_service()->set_name("shop.v1.Shop");
        response.mutable_list_services_response()->add_service()->set_name(
            "grpc.reflection.v1alpha.ServerReflection");
      } else {
        response.mutable_error_response()->set_error_code(12);
      }
      stream->Write(response);
    }
    return grpc::Status::OK;
  }
};

// A real gRPC server on 127.0.0.1 serving ListingReflection.
struct TestServer {
  TestServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&reflection);
    server = builder.BuildAndStart();
    channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                  grpc::InsecureChannelCredentials());
  }
  ~TestServer() { server->Shutdown(std::chrono::system_clock::now()); }

  ListingReflection reflection;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

TEST(CheckBackendServes, ReflectionSaysWhichServicesAreServed) {
  TestServer server;
  ServiceCheck served = CheckBackendServes(*server.channel, "shop.v1.Shop", absl::Seconds(2));
  EXPECT_EQ(served.verdict, ServiceCheck::kServed) << served.detail;
  ServiceCheck missing = CheckBackendServes(*server.channel, "lib.v1.Library", absl::Seconds(2));
  EXPECT_EQ(missing.verdict, ServiceCheck::kNotServed);
  EXPECT_EQ(missing.detail,
            "its server reflection lists: grpc.reflection.v1alpha.ServerReflection, shop.v1.Shop");
}

TEST(CheckBackendServes, UnreachableBackendIsUnknownWithinTheTimeout) {
  // A port nobody listens on (taken and released).
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port = ntohs(address.sin_port);
    ::close(fd);
  }
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  const absl::Time start = absl::Now();
  ServiceCheck check = CheckBackendServes(*channel, "shop.v1.Shop", absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(check.verdict, ServiceCheck::kUnknown);
  EXPECT_THAT(check.detail, HasSubstr("unreachable"));
}

}  // namespace
}  // namespace gateway::registry
