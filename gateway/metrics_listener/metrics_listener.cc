#include "gateway/metrics_listener/metrics_listener.h"

#include <pthread.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", address, "\": the host must be an IP address or localhost"));
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

class MetricsListener::Impl {
 public:
  Impl(const Options& options, std::function<std::string()> render)
      : options_(options), render_(std::move(render)), acceptor_(ioc_) {}

  boost::system::error_code Bind(const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    return ec;
  }

  int port() const { return acceptor_.local_endpoint().port(); }

  void Run() {
    Accept();
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "gw-metrics");
      ioc_.run();
    });
  }

  void Stop() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  class Session;

  void Accept();

  const Options options_;
  const std::function<std::string()> render_;
  // Only on the listener's thread (and while ioc_ destroys the sessions it still holds:
  // declared before ioc_ for that).
  int connections_ = 0;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  asio::steady_timer retry_{ioc_};  // after an accept error (e.g. out of descriptors)
  std::thread thread_;
};

// One connection: reads requests one after another (keep-alive) and answers each.
class MetricsListener::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* listener, tcp::socket socket)
      : listener_(listener),
        stream_(std::move(socket)),
        buffer_(listener->options_.max_request_bytes) {
    ++listener_->connections_;
  }
  ~Session() { --listener_->connections_; }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(listener_->options_.max_request_bytes));
    parser_->body_limit(0);
    stream_.expires_after(absl::ToChronoSeconds(listener_->options_.timeout));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(boost::system::error_code ec) {
    if (ec) {
      // A closed, timed out, oversized or malformed request: nothing more to say.
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    const http::request<http::empty_body>& request = parser_->get();
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive());
    const beast::string_view target = request.target();
    const bool metrics_path =
        target == "/metrics" || (target.size() > 8 && target.starts_with("/metrics?"));
    if (!metrics_path) {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "not found; metrics are at /metrics\n";
    } else if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "method not allowed\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, kContentType);
      response_.body() = listener_->render_();
    }
    response_.prepare_payload();
    if (request.method() == http::verb::head) response_.body().clear();
    stream_.expires_after(absl::ToChronoSeconds(listener_->options_.timeout));
    http::async_write(stream_, response_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(boost::system::error_code ec) {
    if (ec || !response_.keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    Read();
  }

  Impl* const listener_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
};

void MetricsListener::Impl::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {  // do not spin on an error that persists: try again a little later
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    if (connections_ >= options_.max_connections) {
      socket.close(ec);  // over the limit: refuse by closing
    } else {
      std::make_shared<Session>(this, std::move(socket))->Read();
    }
    Accept();
  });
}

absl::StatusOr<std::unique_ptr<MetricsListener>> MetricsListener::Start(
    const Options& options, std::function<std::string()> render) {
  absl::StatusOr<tcp::endpoint> endpoint = ParseEndpoint(options.address);
  if (!endpoint.ok()) return endpoint.status();
  std::unique_ptr<MetricsListener> listener(new MetricsListener());
  listener->impl_ = std::make_unique<Impl>(options, std::move(render));
  const boost::system::error_code ec = listener->impl_->Bind(*endpoint);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, ": ", ec.message()));
  }
  listener->port_ = listener->impl_->port();
  listener->impl_->Run();
  return listener;
}

void MetricsListener::Shutdown() {
  if (impl_ != nullptr) impl_->Stop();
}

MetricsListener::~MetricsListener() {
  Shutdown();
  impl_.reset();
}

absl::StatusOr<MetricsListener::Options> CompileMetricsListener(
    const config::v1::MetricsListener& config) {
  MetricsListener::Options options;
  if (!config.address().empty()) options.address = config.address();
  absl::StatusOr<tcp::endpoint> endpoint = ParseEndpoint(options.address);
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_listener.address: ", endpoint.status().message()));
  }
  if (config.max_connections() > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listener.max_connections: ", config.max_connections(), " is over 1024"));
  }
  if (config.max_connections() != 0) options.max_connections = config.max_connections();
  if (config.max_request_bytes() != 0) {
    if (config.max_request_bytes() < 256) {
      return absl::InvalidArgumentError(absl::StrCat("metrics_listener.max_request_bytes: ",
                                                     config.max_request_bytes(),
                                                     " is under 256"));
    }
    options.max_request_bytes = config.max_request_bytes();
  }
  if (config.has_timeout()) {
    options.timeout = absl::Seconds(config.timeout().seconds()) +
                      absl::Nanoseconds(config.timeout().nanos());
    if (options.timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("metrics_listener.timeout: must be positive");
    }
  }
  return options;
}

}  // namespace gateway
