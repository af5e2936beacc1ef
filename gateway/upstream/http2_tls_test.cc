// Http2Connection over TLS (ALPN h2) against a grpc++ backend with SslServerCredentials in
// this process. Certificates are made per test run with the openssl command line.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "gateway/upstream/http2_connection.h"
#include "gtest/gtest.h"
#include "gateway/upstream/test_loop.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::upstream {
namespace {

using ::gateway::test::v1::Echo;
using ::gateway::test::v1::EchoRequest;
using ::gateway::test::v1::EchoResponse;

class EchoService final : public Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* req,
                     EchoResponse* resp) override {
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Run(const std::string& dir, const std::string& args) {
  const std::string cmd = absl::StrCat("cd '", dir, "' && openssl ", args, " >/dev/null 2>&1");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// PEM files of a test PKI: ca (signs server and client), other_ca (signs nothing here).
struct Pki {
  std::string ca, other_ca, server_cert, server_key, client_cert, client_key;
};

const Pki& TestPki() {
  static const Pki* pki = [] {
    const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki");
    std::system(absl::StrCat("mkdir -p '", dir, "'").c_str());
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    Run(dir, absl::StrCat("req -x509 ", ec, " -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca"));
    Run(dir, absl::StrCat("req -x509 ", ec,
                          " -keyout other.key -out other.pem -days 1 -subj /CN=other-ca"));
    std::ofstream(dir + "/server.ext")
        << "subjectAltName=DNS:backend.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
    std::ofstream(dir + "/client.ext") << "basicConstraints=CA:FALSE\n";
    for (const char* who : {"server", "client"}) {
      Run(dir, absl::StrCat("req ", ec, " -keyout ", who, ".key -out ", who, ".csr -subj /CN=",
                            who));
      Run(dir, absl::StrCat("x509 -req -in ", who, ".csr -CA ca.pem -CAkey ca.key ",
                            "-CAcreateserial -days 1 -extfile ", who, ".ext -out ", who, ".pem"));
    }
    auto* p = new Pki;
    p->ca = ReadFile(dir + "/ca.pem");
    p->other_ca = ReadFile(dir + "/other.pem");
    p->server_cert = ReadFile(dir + "/server.pem");
    p->server_key = ReadFile(dir + "/server.key");
    p->client_cert = ReadFile(dir + "/client.pem");
    p->client_key = ReadFile(dir + "/client.key");
    return p;
  }();
  return *pki;
}

class TlsTest : public ::testing::Test {
 protected:
  void StartServer(bool require_client_cert) {
    const Pki& pki = TestPki();
    ASSERT_FALSE(pki.server_cert.empty());
    grpc::SslServerCredentialsOptions ssl(
        require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                            : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_root_certs = pki.ca;
    ssl.pem_key_cert_pairs.push_back({pki.server_key, pki.server_cert});
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  template <typename F>
  bool RunUntil(F done, absl::Duration limit = absl::Seconds(10)) {
    return RunLoopUntil(io_, done, limit);
  }

  // One unary call "hello" on a new connection with `tls`; its result.
  CallResult Call(ClientTlsOptions tls, std::shared_ptr<Http2Connection>* conn_out = nullptr,
                  std::string* payload = nullptr) {
    tls.enabled = true;
    ConnectionOptions options;
    options.tls = std::move(tls);
    options.connect_timeout = absl::Seconds(5);
    auto conn = Http2Connection::Create(io_, Endpoint::Tcp("127.0.0.1", port_), options);
    if (conn_out != nullptr) *conn_out = conn;
    std::optional<CallResult> result;
    std::shared_ptr<GrpcStream> stream;
    GrpcStreamCallbacks cb;
    cb.on_message = [&](std::string m) {
      EchoResponse r;
      EXPECT_TRUE(r.ParseFromString(m));
      if (payload != nullptr) *payload = r.payload();
      stream->RequestNext();
    };
    cb.on_done = [&](const CallResult& r) { result = r; };
    auto s = conn->StartStream({"/gateway.test.v1.Echo/Unary", absl::Now() + absl::Seconds(8)},
                               std::move(cb));
    // A connection that failed at once (bad options) refuses the stream.
    if (!s.ok()) return CallResult{s.status()};
    stream = *s;
    EchoRequest req;
    req.set_payload("hello");
    EXPECT_TRUE(stream->Write(req.SerializeAsString()).ok());
    stream->WritesDone();
    EXPECT_TRUE(RunUntil([&] { return result.has_value(); }));
    if (!result.has_value()) return CallResult{absl::UnknownError("no result")};
    return *result;
  }

  boost::asio::io_context io_;
  EchoService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsTest, CallOverTlsVerifiesTheIpAddressOfTheAuthority) {
  StartServer(false);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().ca;
  std::string payload;
  std::shared_ptr<Http2Connection> conn;
  CallResult r = Call(tls, &conn, &payload);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(payload, "hello");
  EXPECT_EQ(conn->state(), Http2Connection::State::kReady);
}

TEST_F(TlsTest, CallOverTlsWithAServerName) {
  StartServer(false);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().ca;
  tls.server_name = "backend.test";
  CallResult r = Call(tls);
  EXPECT_TRUE(r.status.ok()) << r.status;
}

TEST_F(TlsTest, UnknownCaIsUnavailableAndSaysWhy) {
  StartServer(false);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().other_ca;
  std::shared_ptr<Http2Connection> conn;
  CallResult r = Call(tls, &conn);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(),
                                "certificate was not accepted for '127.0.0.1'"))
      << r.status;
  EXPECT_TRUE(r.unprocessed);
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
}

TEST_F(TlsTest, SystemRootsDoNotTrustATestCa) {
  StartServer(false);
  CallResult r = Call(ClientTlsOptions{});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "certificate was not accepted"))
      << r.status;
}

TEST_F(TlsTest, WrongServerNameIsUnavailable) {
  StartServer(false);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().ca;
  tls.server_name = "someone-else.test";
  CallResult r = Call(tls);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "someone-else.test")) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "mismatch")) << r.status;
}

TEST_F(TlsTest, MutualTlsWithAClientCertificate) {
  StartServer(true);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().ca;
  tls.cert_chain_pem = TestPki().client_cert;
  tls.private_key_pem = TestPki().client_key;
  CallResult r = Call(tls);
  EXPECT_TRUE(r.status.ok()) << r.status;
}

TEST_F(TlsTest, MutualTlsRequiredAndNoClientCertificateIsUnavailable) {
  StartServer(true);
  ClientTlsOptions tls;
  tls.ca_pem = TestPki().ca;
  std::shared_ptr<Http2Connection> conn;
  CallResult r = Call(tls, &conn);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
}

TEST_F(TlsTest, BadPemIsNamed) {
  StartServer(false);
  ClientTlsOptions tls;
  tls.ca_pem = "not a certificate";
  CallResult r = Call(tls);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "tls.ca_pem")) << r.status;
  tls.ca_pem = TestPki().ca;
  tls.cert_chain_pem = TestPki().client_cert;
  r = Call(tls);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "tls.private_key_pem")) << r.status;
}

// A TLS server that completes handshakes but selects no ALPN protocol (as an HTTP/1.1-only
// server would), then holds the connection open until the test ends.
TEST_F(TlsTest, BackendWithoutAlpnH2IsUnavailable) {
  namespace asio = boost::asio;
  const Pki& pki = TestPki();
  asio::io_context server_io;
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.use_certificate_chain(asio::buffer(pki.server_cert));
  ctx.use_private_key(asio::buffer(pki.server_key), asio::ssl::context::pem);
  asio::ip::tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  port_ = acceptor.local_endpoint().port();
  asio::ssl::stream<asio::ip::tcp::socket> peer(server_io, ctx);
  acceptor.async_accept(peer.lowest_layer(), [&](boost::system::error_code ec) {
    if (!ec) peer.async_handshake(asio::ssl::stream_base::server, [](auto) {});
  });
  auto work = asio::make_work_guard(server_io);
  std::thread server_thread([&] { server_io.run(); });

  ClientTlsOptions tls;
  tls.ca_pem = pki.ca;
  CallResult r = Call(tls);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "did not negotiate HTTP/2")) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "ALPN")) << r.status;
  EXPECT_TRUE(r.unprocessed);

  work.reset();
  asio::post(server_io, [&] {
    boost::system::error_code ignored;
    peer.lowest_layer().close(ignored);
    acceptor.close(ignored);
  });
  server_thread.join();
}

// A server that accepts TCP but never answers the ClientHello: connect_timeout covers the
// handshake, and closing the socket under the pending handshake is safe.
TEST_F(TlsTest, SilentServerTimesOutTheHandshake) {
  namespace asio = boost::asio;
  asio::io_context server_io;
  asio::ip::tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  port_ = acceptor.local_endpoint().port();
  ClientTlsOptions tls;
  tls.enabled = true;
  tls.ca_pem = TestPki().ca;
  ConnectionOptions options;
  options.tls = tls;
  options.connect_timeout = absl::Milliseconds(300);
  auto conn = Http2Connection::Create(io_, Endpoint::Tcp("127.0.0.1", port_), options);
  std::optional<absl::Status> connected;
  const absl::Time start = absl::Now();
  conn->Connect([&](absl::Status s) { connected = s; });
  ASSERT_TRUE(RunUntil([&] { return connected.has_value(); }));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(connected->code(), absl::StatusCode::kUnavailable) << *connected;
  EXPECT_TRUE(absl::StrContains(connected->message(), "connect timed out")) << *connected;
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));  // the aborted handshake's handler runs
}

TEST_F(TlsTest, NoNameToVerifyIsRefused) {
  StartServer(false);
  ConnectionOptions options;
  options.tls.enabled = true;
  options.tls.ca_pem = TestPki().ca;
  Endpoint endpoint = Endpoint::Tcp("127.0.0.1", port_);
  endpoint.authority.clear();
  auto conn = Http2Connection::Create(io_, endpoint, options);
  std::optional<absl::Status> connected;
  conn->Connect([&](absl::Status s) { connected = s; });
  ASSERT_TRUE(RunUntil([&] { return connected.has_value(); }));
  EXPECT_EQ(connected->code(), absl::StatusCode::kUnavailable) << *connected;
  EXPECT_TRUE(absl::StrContains(connected->message(), "no name to check")) << *connected;
}

}  // namespace
}  // namespace gateway::upstream
