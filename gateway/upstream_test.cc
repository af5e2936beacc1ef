#include "gateway/upstream.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A backend whose every method ends at once with UNAVAILABLE and a message that names an
// address, as an application that lost its database would.
class FailingService : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database at 127.0.0.1:5432 is down"));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor();
  }
};

class ClientStatusTest : public ::testing::Test {
 protected:
  std::shared_ptr<Backend> MakeBackend(const std::string& target) {
    config::v1::Backend config;
    config.set_name("bookstore");
    config.set_target(target);
    absl::StatusOr<std::shared_ptr<Backend>> backend =
        Backend::Create(config, config::v1::Limits(), "", "backends[0]");
    EXPECT_TRUE(backend.ok()) << backend.status();
    return *backend;
  }

  // One unary call to `backend` (bounded by a 10 s deadline); returns the status the front
  // ends would send to the client, and the raw one in *raw.
  grpc::Status Call(const Backend& backend, grpc::Status* raw) {
    grpc::CompletionQueue cq;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice slice(std::string("x"));
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
        backend.stub().PrepareUnaryCall(&context, "/pkg.Svc/Method", request, &cq);
    call->StartCall();
    call->Finish(&response, raw, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    grpc::Status out = backend.ClientStatus(context, *raw, "/pkg.Svc/Method");
    call.reset();
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return out;
  }
};

TEST_F(ClientStatusTest, ConnectionRefusedNamesTheBackendNotItsAddress) {
  // Port 1 on loopback: nothing listens there (a privileged port no test binds).
  std::shared_ptr<Backend> backend = MakeBackend("ipv4:127.0.0.1:1");
  grpc::Status raw;
  grpc::Status status = Call(*backend, &raw);
  // What gRPC core says names the address; what the client gets does not.
  EXPECT_THAT(raw.error_message(), HasSubstr("127.0.0.1:1"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "backend \"bookstore\" is unavailable: failed to connect");
}

TEST_F(ClientStatusTest, NameResolutionFailureIsSaidSo) {
  std::shared_ptr<Backend> backend = MakeBackend("dns:///no-such-host.invalid:50051");
  grpc::Status raw;
  grpc::Status status = Call(*backend, &raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << raw.error_message();
  EXPECT_EQ(status.error_message(),
            "backend \"bookstore\" is unavailable: name resolution failed");
}

TEST_F(ClientStatusTest, StatusTheBackendSentPassesUntouched) {
  FailingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  std::shared_ptr<Backend> backend = MakeBackend(absl::StrCat("ipv4:127.0.0.1:", port));
  grpc::Status raw;
  grpc::Status status = Call(*backend, &raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "database at 127.0.0.1:5432 is down");
  server->Shutdown(std::chrono::system_clock::now());
}

TEST_F(ClientStatusTest, StatusTheFrontEndSetItselfPassesUntouched) {
  std::shared_ptr<Backend> backend = MakeBackend("ipv4:127.0.0.1:1");
  grpc::Status raw;
  Call(*backend, &raw);
  // A context whose call ended otherwise (here: never ran) does not hold this message.
  grpc::ClientContext other;
  grpc::Status own(grpc::StatusCode::INTERNAL, "bad response from the backend: truncated");
  grpc::Status status = backend->ClientStatus(other, own, "/pkg.Svc/Method");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), own.error_message());
}

TEST(DescribeTransportFailure, NamesWhatFailedWithoutAddresses) {
  EXPECT_EQ(DescribeTransportFailure(
                "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                "Failed to connect to remote host: Connection refused"),
            "failed to connect");
  EXPECT_EQ(DescribeTransportFailure(
                "failed to connect to all addresses; last error: UNAVAILABLE: "
                "ipv4:10.0.0.1:443: Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL "
                "routines::certificate verify failed"),
            "TLS handshake failed");
  EXPECT_EQ(DescribeTransportFailure(
                "DNS resolution failed for backend:50051: C-ares status is not ARES_SUCCESS"),
            "name resolution failed");
  EXPECT_EQ(DescribeTransportFailure("Socket closed"), "connection lost");
  EXPECT_EQ(DescribeTransportFailure("Received RST_STREAM with error code 2"),
            "connection lost");
  EXPECT_EQ(DescribeTransportFailure("something new at ipv4:10.1.2.3:80"),
            "transport failure");
  EXPECT_THAT(DescribeTransportFailure("ipv4:10.1.2.3:80: Connection refused"),
              Not(HasSubstr("10.1.2.3")));
}

}  // namespace
}  // namespace gateway
