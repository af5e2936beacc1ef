#include "gateway/http/http_server.h"

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "gateway/http/call.h"
#include "gateway/http/http1_connection.h"
#include "gateway/http/request_checks.h"
#include "gateway/http/server_internal.h"
#include "gateway/http/tls_identity.h"

namespace gateway::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::chrono::steady_clock::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

namespace {

// ALPN: h2 when the client offers it, else http/1.1; a client that offers neither gets
// HTTP/1.1 too.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static constexpr unsigned char kH2[] = {'h', '2'};
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  const unsigned char* http11 = nullptr;
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    const unsigned char* proto = in + i + 1;
    if (len == sizeof(kH2) && std::memcmp(proto, kH2, len) == 0) {
      *out = proto;
      *outlen = len;
      return SSL_TLSEXT_ERR_OK;
    }
    if (len == sizeof(kHttp11) && std::memcmp(proto, kHttp11, len) == 0) http11 = proto;
    i += 1 + len;
  }
  if (http11 != nullptr) {
    *out = http11;
    *outlen = sizeof(kHttp11);
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward-secret AEAD suites only (TLS 1.3 suites are all of that kind).
  SSL_CTX_set_cipher_list(native,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load the certificate chain ", cert_file));
  }
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load the private key ", key_file, " (or it does not match ",
                     cert_file, ")"));
  }
  SSL_CTX_set_alpn_select_cb(native, SelectAlpn, nullptr);
  if (!client_ca_file.empty()) {
    absl::Status status = RequireClientCertificates(native, client_ca_file);
    if (!status.ok()) return status;
  }
  return ctx;
}

absl::Status HttpServer::Impl::Listen() {
  const std::string& address = options_.address;
  const std::size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  tcp::resolver resolver(workers_[0]->ioc_);
  auto results = resolver.resolve(host, std::to_string(port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", address, ": ", ec.message()));
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_ = std::make_unique<tcp::acceptor>(workers_[0]->ioc_);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", ec.message()));
  }
  port_ = acceptor_->local_endpoint().port();
  return absl::OkStatus();
}

// The TLS handshake (within header_read_timeout), then HTTP/2 or HTTP/1.1 as ALPN chose.
void HttpServer::Impl::StartTls(Worker* worker, tcp::socket socket) {
  std::shared_ptr<asio::ssl::context> context = CurrentTls();
  auto tls = std::make_shared<TlsStream>(beast::tcp_stream(std::move(socket)), *context);
  asio::post(worker->ioc_, [this, worker, tls, context] {
    beast::get_lowest_layer(*tls).expires_after(header_read_timeout_);
    tls->async_handshake(asio::ssl::stream_base::server, [this, worker, tls,
                                                          context](beast::error_code ec) {
      if (ec) {
        beast::get_lowest_layer(*tls).close();
        return;
      }
      beast::get_lowest_layer(*tls).expires_never();
      const unsigned char* alpn = nullptr;
      unsigned int alpn_length = 0;
      SSL_get0_alpn_selected(tls->native_handle(), &alpn, &alpn_length);
      const bool h2 = absl::string_view(reinterpret_cast<const char*>(alpn), alpn_length) == "h2";
      beast::error_code peer_ec;
      const tcp::endpoint peer = beast::get_lowest_layer(*tls).socket().remote_endpoint(peer_ec);
      std::string peer_text;
      if (!peer_ec) {
        const bool v6 = peer.address().is_v6();
        peer_text = absl::StrCat(v6 ? "ipv6:[" : "ipv4:", peer.address().to_string(),
                                 v6 ? "]:" : ":", peer.port());
      }
      if (h2) {
        StartHttp2Session(this, worker, std::move(*tls), std::string(), std::move(peer_text));
        return;
      }
      auto connection = std::make_shared<Connection<TlsStream>>(this, worker, std::move(*tls));
      connection->Start();
    });
  });
}

void HttpServer::Impl::Accept() {
  Worker* worker = workers_[next_worker_].get();
  next_worker_ = (next_worker_ + 1) % workers_.size();
  acceptor_->async_accept(worker->ioc_, [this, worker](beast::error_code ec,
                                                       tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) {
      if (tls_ != nullptr) {
        StartTls(worker, std::move(socket));
      } else {
        auto connection = std::make_shared<Connection<beast::tcp_stream>>(
            this, worker, beast::tcp_stream(std::move(socket)));
        asio::post(worker->ioc_, [connection] { connection->Start(); });
      }
    }
    Accept();
  });
}

void HttpServer::Impl::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  draining_.store(true);
  std::promise<void> closed;
  asio::post(workers_[0]->ioc_, [this, &closed] {
    beast::error_code ec;
    acceptor_->close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  for (auto& worker : workers_) {
    worker->ForEachConnection([](ServerConnection& c) { c.CloseIfIdle(); });
  }
  const absl::Time deadline = absl::Now() + grace;
  while (in_flight_.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  for (auto& worker : workers_) {
    worker->ForEachConnection([](ServerConnection& c) { c.Abort(); });
  }
  // The calls were cancelled (their backend streams reset on the same loops); give the
  // loops a moment to send that.
  const absl::Time hard = absl::Now() + absl::Seconds(5);
  while (in_flight_.load() > 0 && absl::Now() < hard) absl::SleepFor(absl::Milliseconds(5));
  for (auto& worker : workers_) worker->Stop();
  acceptor_.reset();
  // Destroying the event loops destroys the connections (client and backend) and the
  // handlers they still hold.
  workers_.clear();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(absl::ZeroDuration()); }

int HttpServer::port() const { return impl_->port_; }

void HttpServer::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }

std::shared_ptr<asio::ssl::context> HttpServer::Impl::CurrentTls() {
  absl::MutexLock lock(&tls_mu_);
  if (replaced_tls_ != nullptr) return replaced_tls_;
  return std::shared_ptr<asio::ssl::context>(std::shared_ptr<void>(), tls_.get());
}

absl::Status HttpServer::ReplaceTls(const std::string& cert_file, const std::string& key_file,
                                    const std::string& client_ca_file) {
  if (impl_->tls_ == nullptr) {
    return absl::FailedPreconditionError("the listener was started without TLS");
  }
  absl::StatusOr<std::unique_ptr<asio::ssl::context>> tls =
      MakeTlsContext(cert_file, key_file, client_ca_file);
  if (!tls.ok()) return tls.status();
  absl::MutexLock lock(&impl_->tls_mu_);
  impl_->replaced_tls_ = std::shared_ptr<asio::ssl::context>(*std::move(tls));
  return absl::OkStatus();
}

void Worker::Run() {
  // Linux keeps 15 characters of a thread's name; a longer one is refused, so cut it.
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  if (busy_poll_ <= std::chrono::nanoseconds::zero()) {
    ioc_.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  while (!ioc_.stopped()) {
    // poll() runs what is ready, checking the sockets with epoll_wait(0) when nothing is:
    // a wake-up the loop catches here costs no sleep and no scheduler round trip.
    Clock::time_point until = Clock::now() + busy_poll_;
    while (!ioc_.stopped()) {
      if (ioc_.poll() > 0) {
        until = Clock::now() + busy_poll_;
      } else if (Clock::now() >= until) {
        break;
      }
    }
    ioc_.run_one();  // sleeps until there is work (returns at once when stopped)
  }
}

absl::Status HttpServer::CheckTls(const std::string& cert_file, const std::string& key_file,
                                  const std::string& client_ca_file) {
  return MakeTlsContext(cert_file, key_file, client_ca_file).status();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const Options& options, const Snapshot<RouteTable>* routes) {
  auto impl = std::make_unique<Impl>(options, routes);
  const int threads = std::max(1, options.worker_threads);
  for (int i = 0; i < threads; ++i) {
    impl->workers_.push_back(std::make_unique<Worker>(
        routes, absl::StrCat(options.thread_name, "-", i), options.busy_poll));
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::unique_ptr<asio::ssl::context>> tls =
        MakeTlsContext(options.tls_cert_file, options.tls_key_file, options.tls_client_ca_file);
    if (!tls.ok()) return tls.status();
    impl->tls_ = *std::move(tls);
  }
  absl::Status status = impl->Listen();
  if (!status.ok()) return status;
  impl->Accept();
  for (auto& worker : impl->workers_) worker->Start();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace gateway::http
