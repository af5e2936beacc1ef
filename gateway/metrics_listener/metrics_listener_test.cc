#include "gateway/metrics_listener/metrics_listener.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class MetricsListenerTest : public ::testing::Test {
 protected:
  void StartListener(MetricsListener::Options options = {}) {
    options.address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<MetricsListener>> listener =
        MetricsListener::Start(options, [this] {
          ++renders_;
          return std::string("# TYPE up gauge\nup 1\n");
        });
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
  }

  tcp::socket Connect() {
    tcp::socket socket(ioc_);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener_->port()));
    return socket;
  }

  http::response<http::string_body> Send(tcp::socket& socket, http::verb verb,
                                         const std::string& target, bool keep_alive = true) {
    http::request<http::empty_body> request(verb, target, 11);
    request.set(http::field::host, "127.0.0.1");
    request.keep_alive(keep_alive);
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(verb == http::verb::head);
    http::read(socket, buffer, parser);
    return parser.release();
  }

  asio::io_context ioc_;
  std::atomic<int> renders_{0};
  std::unique_ptr<MetricsListener> listener_;
};

TEST_F(MetricsListenerTest, GetMetricsAnswersThePageAsTextFormat004) {
  StartListener();
  tcp::socket socket = Connect();
  http::response<http::string_body> r = Send(socket, http::verb::get, "/metrics");
  EXPECT_EQ(r.result(), http::status::ok);
  EXPECT_EQ(r[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body(), "# TYPE up gauge\nup 1\n");
  // Keep-alive: a second request on the same connection renders again.
  r = Send(socket, http::verb::get, "/metrics?name[]=up");
  EXPECT_EQ(r.result(), http::status::ok);
  EXPECT_EQ(renders_.load(), 2);
}

TEST_F(MetricsListenerTest, HeadHasHeadersWithoutBody) {
  StartListener();
  tcp::socket socket = Connect();
  http::response<http::string_body> r = Send(socket, http::verb::head, "/metrics");
  EXPECT_EQ(r.result(), http::status::ok);
  EXPECT_EQ(r[http::field::content_length], "21");
  EXPECT_EQ(r.body(), "");
}

TEST_F(MetricsListenerTest, OtherPathsAre404AndOtherMethods405) {
  StartListener();
  tcp::socket socket = Connect();
  EXPECT_EQ(Send(socket, http::verb::get, "/").result(), http::status::not_found);
  EXPECT_EQ(Send(socket, http::verb::get, "/metricsx").result(), http::status::not_found);
  EXPECT_EQ(Send(socket, http::verb::get, "/metrics/").result(), http::status::not_found);
  http::response<http::string_body> r = Send(socket, http::verb::post, "/metrics");
  EXPECT_EQ(r.result(), http::status::method_not_allowed);
  EXPECT_EQ(r[http::field::allow], "GET, HEAD");
  EXPECT_EQ(renders_.load(), 0);
}

TEST_F(MetricsListenerTest, ClosesAfterResponseWithoutKeepAlive) {
  StartListener();
  tcp::socket socket = Connect();
  EXPECT_EQ(Send(socket, http::verb::get, "/metrics", false).result(), http::status::ok);
  char byte;
  boost::system::error_code ec;
  asio::read(socket, asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(MetricsListenerTest, OversizedRequestHeadIsDropped) {
  StartListener({.max_request_bytes = 1024});
  tcp::socket socket = Connect();
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                              std::string(4096, 'a') + "\r\n\r\n";
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(request), ec);
  char byte;
  asio::read(socket, asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_EQ(renders_.load(), 0);
}

TEST_F(MetricsListenerTest, SilentClientIsDisconnectedAfterTheTimeout) {
  StartListener({.timeout = absl::Milliseconds(200)});
  tcp::socket socket = Connect();
  const auto started = std::chrono::steady_clock::now();
  char byte;
  boost::system::error_code ec;
  asio::read(socket, asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(MetricsListenerTest, ConnectionsOverTheLimitAreClosed) {
  StartListener({.max_connections = 2});
  tcp::socket a = Connect();
  tcp::socket b = Connect();
  // Both are served (and so counted) before the third arrives.
  EXPECT_EQ(Send(a, http::verb::get, "/metrics").result(), http::status::ok);
  EXPECT_EQ(Send(b, http::verb::get, "/metrics").result(), http::status::ok);
  tcp::socket c = Connect();
  char byte;
  boost::system::error_code ec;
  asio::read(c, asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  // Once one closes, a new connection is served again.
  a.close();
  for (int attempt = 0;; ++attempt) {
    tcp::socket d = Connect();
    boost::system::error_code write_ec;
    http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
    http::write(d, request, write_ec);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> r;
    boost::system::error_code read_ec;
    http::read(d, buffer, r, read_ec);
    if (!read_ec) {
      EXPECT_EQ(r.result(), http::status::ok);
      break;
    }
    ASSERT_LT(attempt, 50) << "the listener never took a connection again";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(CompileMetricsListener, DefaultsToLoopbackAndNamesTheKeyOnBadAddresses) {
  config::v1::MetricsListener config;
  absl::StatusOr<MetricsListener::Options> options = CompileMetricsListener(config);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->address, "127.0.0.1:9464");
  config.set_address("[::1]:0");
  EXPECT_TRUE(CompileMetricsListener(config).ok());
  config.set_address("127.0.0.1");
  EXPECT_EQ(CompileMetricsListener(config).status().message(),
            "metrics_listener.address: \"127.0.0.1\" is not HOST:PORT");
  config.set_address("metrics.example.com:9464");
  EXPECT_EQ(CompileMetricsListener(config).status().message(),
            "metrics_listener.address: \"metrics.example.com:9464\": the host must be an IP "
            "address or localhost");
  config.set_address("127.0.0.1:70000");
  EXPECT_EQ(CompileMetricsListener(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CompileMetricsListener, LimitsHaveDefaultsAndBounds) {
  config::v1::MetricsListener config;
  absl::StatusOr<MetricsListener::Options> options = CompileMetricsListener(config);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->max_connections, 8);
  EXPECT_EQ(options->max_request_bytes, 8192u);
  EXPECT_EQ(options->timeout, absl::Seconds(10));
  config.set_max_connections(2);
  config.set_max_request_bytes(1024);
  config.mutable_timeout()->set_nanos(500000000);
  options = CompileMetricsListener(config);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->max_connections, 2);
  EXPECT_EQ(options->max_request_bytes, 1024u);
  EXPECT_EQ(options->timeout, absl::Milliseconds(500));
  config.set_max_connections(1025);
  EXPECT_EQ(CompileMetricsListener(config).status().message(),
            "metrics_listener.max_connections: 1025 is over 1024");
  config.set_max_connections(0);
  config.set_max_request_bytes(100);
  EXPECT_EQ(CompileMetricsListener(config).status().message(),
            "metrics_listener.max_request_bytes: 100 is under 256");
  config.set_max_request_bytes(0);
  config.mutable_timeout()->set_nanos(-1);
  EXPECT_EQ(CompileMetricsListener(config).status().message(),
            "metrics_listener.timeout: must be positive");
}

TEST(MetricsListenerStart, PortInUseIsUnavailable) {
  asio::io_context ioc;
  tcp::acceptor taken(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const int port = taken.local_endpoint().port();
  MetricsListener::Options options;
  options.address = "127.0.0.1:" + std::to_string(port);
  absl::StatusOr<std::unique_ptr<MetricsListener>> listener =
      MetricsListener::Start(options, [] { return std::string(); });
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(listener.status().message()),
              ::testing::HasSubstr("cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace gateway
