// Internal pieces of the HTTP front end shared by its HTTP/1.1 and HTTP/2 connections: the
// event loops (Worker) and the server's shared state (HttpServer::Impl).
//
// Thread-safety: as noted per member.

#ifndef GATEWAY_HTTP_SERVER_INTERNAL_H_
#define GATEWAY_HTTP_SERVER_INTERNAL_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "gateway/http/call.h"
#include "gateway/http/http_server.h"

namespace gateway::http {

namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;

// A client connection as the server sees it at shutdown. Methods run on the connection's
// event loop.
class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  virtual ~ServerConnection() = default;
  // Closes the connection if no request is in progress; otherwise lets the requests in
  // progress finish and closes it afterwards.
  virtual void CloseIfIdle() = 0;
  // Cancels the calls in progress and closes the connection.
  virtual void Abort() = 0;
};

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

std::chrono::steady_clock::duration ToSteady(absl::Duration d);

// A server TLS context: TLS 1.2 or newer, forward-secret AEAD suites, ALPN h2 / http/1.1;
// with `client_ca_file`, clients must present a certificate that CA signed (mutual TLS).
// INVALID_ARGUMENT naming the file when the certificate, key or CA cannot be loaded.
absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file,
    const std::string& client_ca_file = "");

// One event loop and the connections it owns.
class Worker {
 public:
  // `name`: the thread's (cut to 15 characters). `busy_poll`: HttpServer::Options'.
  Worker(const Snapshot<RouteTable>* routes, std::string name, absl::Duration busy_poll)
      : ioc_(1),
        upstreams_(ioc_),
        guard_(asio::make_work_guard(ioc_)),
        reader_(routes),
        name_(std::move(name)),
        busy_poll_(absl::ToChronoNanoseconds(busy_poll)) {}

  ~Worker() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Only on this worker's thread.
  const std::shared_ptr<const RouteTable>& routes() { return reader_.Get(); }
  // This worker's connections to the backends (only on this worker's thread).
  upstream::WorkerUpstreams* upstreams() { return &upstreams_; }

  void Add(ServerConnection* c) {
    absl::MutexLock lock(&mu_);
    connections_.insert(c);
  }
  void Remove(ServerConnection* c) {
    absl::MutexLock lock(&mu_);
    connections_.erase(c);
  }
  // Posts `fn(connection)` for every live connection.
  template <typename Fn>
  void ForEachConnection(Fn fn) {
    std::vector<std::weak_ptr<ServerConnection>> live;
    {
      absl::MutexLock lock(&mu_);
      for (ServerConnection* c : connections_) live.push_back(c->weak_from_this());
    }
    asio::post(ioc_, [live = std::move(live), fn]() {
      for (const auto& weak : live) {
        if (std::shared_ptr<ServerConnection> c = weak.lock()) fn(*c);
      }
    });
  }

  void Stop() {
    guard_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Mutex mu_;
  absl::flat_hash_set<ServerConnection*> connections_ ABSL_GUARDED_BY(mu_);
  // Declared after mu_ and connections_ so that it is destroyed before them: destroying
  // it destroys the connections it still holds, which unregister.
  asio::io_context ioc_;

 private:
  // The thread's body: ioc_.run(), or with busy_poll_ a loop that polls until busy_poll_
  // has passed since a handler last ran, then blocks for the next one.
  void Run();

  // Declared after ioc_: destroyed first (its connections' timers and sockets belong to
  // ioc_).
  upstream::WorkerUpstreams upstreams_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  Snapshot<RouteTable>::Reader reader_;  // used by thread_ only
  const std::string name_;
  const std::chrono::nanoseconds busy_poll_;
  std::thread thread_;
};

class HttpServer::Impl {
 public:
  Impl(const Options& options, const Snapshot<RouteTable>* routes)
      : options_(options), routes_(routes) {
    env_.max_body_bytes = options.max_body_bytes;
    env_.allow_encoded_slashes = options.allow_encoded_slashes;
    env_.default_deadline = options.default_deadline;
    env_.message_idle_timeout = options.idle_timeout;
    env_.timeout_header = options.timeout_header;
    env_.forwarded.insert("x-request-id");
    env_.forwarded.insert("traceparent");
    for (const std::string& h : options.forwarded_request_headers) {
      env_.forwarded.insert(absl::AsciiStrToLower(h));
    }
    for (const std::string& h : options.exposed_response_metadata) {
      env_.exposed.insert(absl::AsciiStrToLower(h));
    }
    env_.cors = options.cors;
    env_.openapi = options.openapi.get();
    env_.readiness = options.readiness;
    env_.access_log = options.access_log;
    env_.generate_request_id = options.generate_request_id;
    env_.tracer = options.tracer;
    if (options.metrics != nullptr) {
      metrics_ = std::make_unique<HttpMetrics>(options.metrics);
      env_.metrics = metrics_.get();
      grpc_metrics_ = std::make_unique<GrpcMetrics>(options.metrics);
      env_.grpc_metrics = grpc_metrics_.get();
    }
    header_read_timeout_ = ToSteady(options.header_read_timeout);
    idle_timeout_ = ToSteady(options.idle_timeout);
  }

  absl::Status Listen();
  void Accept();
  void StartTls(Worker* worker, tcp::socket socket);
  // The context new TLS connections take: the one ReplaceTls set last, else tls_.
  std::shared_ptr<asio::ssl::context> CurrentTls();
  void Shutdown(absl::Duration grace);

  const Options options_;
  const Snapshot<RouteTable>* const routes_;
  std::unique_ptr<HttpMetrics> metrics_;  // null without Options::metrics
  std::unique_ptr<GrpcMetrics> grpc_metrics_;  // null without Options::metrics
  CallEnv env_;
  std::chrono::steady_clock::duration header_read_timeout_;
  std::chrono::steady_clock::duration idle_timeout_;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> acceptor_;  // on workers_[0]
  std::unique_ptr<asio::ssl::context> tls_;   // null: plaintext
  // Set by HttpServer::ReplaceTls (a reloaded certificate); connections keep theirs.
  absl::Mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> replaced_tls_ ABSL_GUARDED_BY(tls_mu_);
  std::size_t next_worker_ = 0;
  int port_ = 0;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;
};

// Serves an HTTP/2 connection whose first bytes (`preface`: the client preface and maybe
// more; empty after a TLS handshake) were already read from `stream`.
void StartHttp2Session(HttpServer::Impl* server, Worker* worker, boost::beast::tcp_stream stream,
                       std::string preface, std::string peer);
void StartHttp2Session(HttpServer::Impl* server, Worker* worker, TlsStream stream,
                       std::string preface, std::string peer);

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_SERVER_INTERNAL_H_
