#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/registry/backend_check.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

// CheckBackendServes against backends without server reflection (this binary does not link
// grpc++'s reflection plugin): with grpc.health.v1, and with neither.
namespace gateway::registry {
namespace {

using ::testing::HasSubstr;

// Answers every method it does not serve otherwise with UNIMPLEMENTED, as a gRPC server does.
class Unimplemented final : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")); }
      void OnDone() override { delete this; }
    };
    return new Reactor;
  }
};

struct TestServer {
  explicit TestServer(bool health) {
    grpc::EnableDefaultHealthCheckService(health);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(&unimplemented);
    server = builder.BuildAndStart();
    if (health) {
      server->GetHealthCheckService()->SetServingStatus("shop.v1.Shop", true);
      server->GetHealthCheckService()->SetServingStatus("shop.v1.Closed", false);
    }
    channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                  grpc::InsecureChannelCredentials());
  }
  ~TestServer() { server->Shutdown(std::chrono::system_clock::now()); }

  Unimplemented unimplemented;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

TEST(CheckBackendServes, HealthCheckingSaysWhetherAServiceIsKnown) {
  TestServer server(/*health=*/true);
  ServiceCheck served = CheckBackendServes(*server.channel, "shop.v1.Shop", absl::Seconds(2));
  EXPECT_EQ(served.verdict, ServiceCheck::kServed) << served.detail;
  EXPECT_EQ(served.detail, "grpc.health.v1 Check answered SERVING");
  ServiceCheck closed = CheckBackendServes(*server.channel, "shop.v1.Closed", absl::Seconds(2));
  EXPECT_EQ(closed.verdict, ServiceCheck::kServed) << closed.detail;
  EXPECT_EQ(closed.detail, "grpc.health.v1 Check answered NOT_SERVING");
  ServiceCheck missing = CheckBackendServes(*server.channel, "lib.v1.Library", absl::Seconds(2));
  EXPECT_EQ(missing.verdict, ServiceCheck::kNotServed);
  EXPECT_EQ(missing.detail, "grpc.health.v1 Check answered NOT_FOUND");
}

TEST(CheckBackendServes, BackendWithNeitherServiceCannotBeAsked) {
  TestServer server(/*health=*/false);
  ServiceCheck check = CheckBackendServes(*server.channel, "shop.v1.Shop", absl::Seconds(2));
  EXPECT_EQ(check.verdict, ServiceCheck::kUnknown);
  EXPECT_EQ(check.detail, "it serves neither server reflection nor grpc.health.v1");
}

}  // namespace
}  // namespace gateway::registry
