#include "gateway/http/http_server.h"

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

absl::string_view SV(beast::string_view s) { return absl::string_view(s.data(), s.size()); }
beast::string_view BV(absl::string_view s) { return beast::string_view(s.data(), s.size()); }

}  // namespace

// One HTTP/1.1 client connection: reads requests one at a time, hands each to an
// HttpCall, writes its response. Lives on its worker's thread.
//
// `Stream` is beast::tcp_stream (plaintext: HTTP/1.1, or h2c detected by its preface) or
// TlsStream (HTTP/1.1 chosen by ALPN).
//
// A request for a client-streaming method whose body has not fully arrived with its head is
// started at once, and its call pulls the body through BodyReader::Read, one piece per read
// of the socket. While a call is in flight the socket is read too (WatchForDisconnect), so a
// client that goes away is noticed and its backend call cancelled even when nothing is being
// written to it; bytes that arrive meanwhile (a pipelined request) are kept for later.
template <typename Stream>
class Connection : public ServerConnection, public CallSink, public BodyReader {
 public:
  static constexpr bool kPlain = std::is_same_v<Stream, beast::tcp_stream>;

  Connection(HttpServer::Impl* server, Worker* worker, Stream stream)
      : server_(server), worker_(worker), stream_(std::move(stream)) {
    beast::error_code ec;
    const tcp::endpoint peer = Lowest().socket().remote_endpoint(ec);
    if (!ec) {
      const bool v6 = peer.address().is_v6();
      peer_ = absl::StrCat(v6 ? "ipv6:[" : "ipv4:", peer.address().to_string(),
                           v6 ? "]:" : ":", peer.port());
    }
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (!kPlain) peer_identity_ = PeerIdentity(stream_.native_handle());
    worker_->Add(this);
  }

  ~Connection() override {
    EndRequest();
    worker_->Remove(this);
  }

  // Starts reading the first request (its head must come within header_read_timeout);
  // a connection that opens with the HTTP/2 preface goes to an HTTP/2 session.
  void Start() {
    Lowest().expires_after(server_->header_read_timeout_);
    Sniff();
  }

  // Closes the connection if no request is in progress (shutdown).
  void CloseIfIdle() override {
    if (!request_active_) Close();
  }

  // Cancels the call in progress and closes the connection (shutdown after the grace).
  void Abort() override { Close(); }

  // --- CallSink ---

  void Respond(int status, HeaderList headers, std::string body) override {
    res_ = {};
    res_.result(status);
    for (auto& [name, value] : headers) res_.insert(BV(name), BV(value));
    res_.body() = std::move(body);
    WriteResponse(false);
  }

  void StartStream(int status, HeaderList headers) override {
    sres_ = {};
    sres_.result(status);
    sres_.version(11);
    for (auto& [name, value] : headers) sres_.insert(BV(name), BV(value));
    responding_ = true;
    if (BodyIncomplete()) keep_alive_ = false;
    sres_.keep_alive(keep_alive_);
    sres_.chunked(true);
    serializer_.emplace(sres_);
    head_pending_ = true;
  }

  void Write(std::string data, bool last, std::function<void(bool)> written) override {
    if (closed_) {
      written(false);
      return;
    }
    chunk_ = std::move(data);
    Lowest().expires_after(server_->idle_timeout_);
    if (head_pending_) {
      head_pending_ = false;
      bhttp::async_write_header(
          stream_, *serializer_,
          [self = Self(), last, written = std::move(written)](
              beast::error_code ec, std::size_t) mutable {
            if (ec) {
              self->OnWriteFailed(std::move(written));
              return;
            }
            self->WriteChunk(last, std::move(written));
          });
      return;
    }
    WriteChunk(last, std::move(written));
  }

 private:
  std::shared_ptr<Connection> Self() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // HTTP/2 with prior knowledge starts with the client preface; anything else is read as
  // HTTP/1.1.
  void Sniff() {
    if constexpr (!kPlain) {
      ReadHead(/*reset_timer=*/false);  // TLS: ALPN chose HTTP/1.1
      return;
    }
    static constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const absl::string_view have(static_cast<const char*>(buffer_.data().data()),
                                 buffer_.size());
    const std::size_t n = std::min(have.size(), kPreface.size());
    if (have.substr(0, n) != kPreface.substr(0, n)) {
      ReadHead(/*reset_timer=*/false);
      return;
    }
    if (have.size() >= kPreface.size()) {
      closed_ = true;  // the socket belongs to the session now
      if constexpr (kPlain) {
        StartHttp2Session(server_, worker_, std::move(stream_), std::string(have), peer_);
      }
      return;
    }
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = Self()](beast::error_code ec, std::size_t n) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->Sniff();
                            });
  }

  // --- Reading requests ---

  void ReadHead(bool reset_timer = true) {
    parser_.emplace();
    parser_->header_limit(server_->options_.max_header_bytes);
    parser_->body_limit(server_->options_.max_body_bytes);
    if (reset_timer) Lowest().expires_after(server_->header_read_timeout_);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = Self()](beast::error_code ec, std::size_t n) { self->OnHead(ec, n); });
  }

  // Between keep-alive requests: waits up to idle_timeout for the next request's first
  // byte, then gives its head header_read_timeout.
  void WaitForNextRequest() {
    if (server_->draining_.load(std::memory_order_relaxed)) {
      Close();
      return;
    }
    if (watching_) {
      // The watch read has no timeout: end it, and come back here once it returned.
      resume_after_watch_ = true;
      beast::error_code ec;
      Lowest().socket().cancel(ec);
      return;
    }
    if (buffer_.size() > 0) {
      ReadHead();
      return;
    }
    Lowest().expires_after(server_->idle_timeout_);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = Self()](beast::error_code ec, std::size_t n) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->ReadHead();
                            });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      SendError(431, absl::ResourceExhaustedError(absl::StrCat(
                         "request headers larger than ", server_->options_.max_header_bytes,
                         " bytes")));
    } else if (ec == bhttp::error::body_limit) {
      SendError(413, absl::ResourceExhaustedError(absl::StrCat(
                         "request body larger than ", server_->options_.max_body_bytes,
                         " bytes")));
    } else if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
               ec == asio::error::eof || ec == asio::error::connection_reset ||
               ec == asio::error::operation_aborted || ec == bhttp::error::partial_message) {
      Close();
    } else {
      SendError(400,
                absl::InvalidArgumentError(absl::StrCat("malformed request: ", ec.message())));
    }
  }

  // An error found while reading: answered, then the connection is closed.
  void SendError(int status, const absl::Status& error) {
    if (server_->env_.metrics != nullptr) server_->env_.metrics->unknown()->Refused(status);
    keep_alive_ = false;
    res_ = {};
    HeaderList grpc_web;
    if (parser_.has_value() &&
        GrpcWebErrorHeaders(SV(parser_->get()[bhttp::field::content_type]), error, &grpc_web)) {
      // A gRPC-Web client reads the status from a trailers-only response.
      res_.result(200);
      for (auto& [name, value] : grpc_web) res_.insert(BV(name), BV(value));
      WriteResponse(true);
      return;
    }
    res_.result(status);
    res_.set(bhttp::field::content_type, "application/json");
    res_.body() = worker_->routes()->transcoder().ErrorBody(error);
    WriteResponse(true);
  }

  // `head_bytes`: the size of the request line and header fields.
  void OnHead(beast::error_code ec, std::size_t head_bytes) {
    BeginRequest();
    if (ec) {
      OnReadError(ec);
      return;
    }
    // Beast checks header_limit against the request line and the fields separately, so a
    // head that arrives in one read may be up to twice as large: check the whole.
    if (head_bytes > server_->options_.max_header_bytes) {
      OnReadError(bhttp::error::header_limit);
      return;
    }
    const auto& req = parser_->get();
    std::size_t fields = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++fields;
    if (fields > server_->options_.max_header_count) {
      SendError(431, absl::ResourceExhaustedError(absl::StrCat(
                         "more than ", server_->options_.max_header_count, " request headers")));
      return;
    }
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
    if (StartStreamingCall()) return;
    // The body must arrive within idle_timeout.
    Lowest().expires_after(server_->idle_timeout_);
    if (absl::EqualsIgnoreCase(SV(req[bhttp::field::expect]), "100-continue")) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = Self()](beast::error_code ec, std::size_t) {
                          if (ec) {
                            self->Close();
                            return;
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = Self()](beast::error_code ec, std::size_t) {
                        if (ec) {
                          self->OnReadError(ec);
                          return;
                        }
                        self->OnRequest();
                      });
  }

  void OnRequest() {
    Lowest().expires_never();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive() && !server_->draining_.load(std::memory_order_relaxed);
    is_head_ = req.method() == bhttp::verb::head;
    HttpRequest request = MakeRequest();
    responding_ = false;
    call_ = std::make_shared<HttpCall>(&server_->env_, worker_->routes(),
                                       worker_->ioc_.get_executor(), worker_->upstreams(),
                                       this, Self());
    call_->Start(std::move(request));
    if (!responding_) WatchForDisconnect();
  }

  // The request read by parser_ (its body moved out).
  HttpRequest MakeRequest() {
    auto& req = parser_->get();
    HttpRequest request;
    request.method = std::string(SV(req.method_string()));
    request.target = std::string(SV(req.target()));
    request.headers.reserve(8);
    for (const auto& field : req) {
      std::string name(SV(field.name_string()));
      absl::AsciiStrToLower(&name);
      request.headers.emplace_back(std::move(name), std::string(SV(field.value())));
    }
    request.body = std::move(req.body());
    request.peer = peer_;
    request.peer_identity = peer_identity_;
    return request;
  }

  // A body still to come for a client-streaming method: starts the call now, which reads
  // the body as it needs it (Read). False when the request is anything else, or when its
  // whole body is in the buffer already.
  bool StartStreamingCall() {
    const auto length = parser_->content_length();
    if (length && buffer_.size() >= *length) return false;
    auto& req = parser_->get();
    HttpRequest head = MakeRequest();
    keep_alive_ = req.keep_alive() && !server_->draining_.load(std::memory_order_relaxed);
    is_head_ = false;
    continue_pending_ = absl::EqualsIgnoreCase(SV(req[bhttp::field::expect]), "100-continue");
    responding_ = false;
    body_streaming_ = true;  // before the call starts: it may answer at once
    call_ = std::make_shared<HttpCall>(&server_->env_, worker_->routes(),
                                       worker_->ioc_.get_executor(), worker_->upstreams(),
                                       this, Self());
    if (!call_->StartStreaming(&head, this)) {
      body_streaming_ = false;
      continue_pending_ = false;
      call_.reset();
      return false;
    }
    Lowest().expires_never();
    stream_parser_.emplace(std::move(*parser_));
    stream_parser_->body_limit(server_->options_.max_body_bytes);
    return true;
  }

  // True while the body of a streamed request has not been read to its end (the
  // connection cannot be reused after its response).
  bool BodyIncomplete() const {
    return body_streaming_ && !(stream_parser_.has_value() && stream_parser_->is_done());
  }

  // --- BodyReader ---

  void Read(BodyReader::Callback done) override {
    if (closed_ || !stream_parser_.has_value()) return;  // the call was cancelled
    body_callback_ = std::move(done);
    if (continue_pending_) {
      continue_pending_ = false;
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      body_read_pending_ = true;
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = Self()](beast::error_code ec, std::size_t) {
                          self->body_read_pending_ = false;
                          if (self->closed_) return;
                          if (ec) {
                            self->Close();
                            return;
                          }
                          self->ReadBodyPiece();
                        });
      return;
    }
    ReadBodyPiece();
  }

  void ReadBodyPiece() {
    auto& body = stream_parser_->get().body();
    body.data = body_buffer_.data();
    body.size = body_buffer_.size();
    body.more = true;
    Lowest().expires_after(server_->idle_timeout_);  // the body must keep coming
    body_read_pending_ = true;
    bhttp::async_read_some(stream_, buffer_, *stream_parser_,
                           [self = Self()](beast::error_code ec, std::size_t) {
                             self->body_read_pending_ = false;
                             self->OnBodyPiece(ec);
                           });
  }

  void OnBodyPiece(beast::error_code ec) {
    if (closed_) return;
    if (ec == bhttp::error::need_buffer) ec = {};
    absl::Status error;
    if (ec == bhttp::error::body_limit) {
      error = absl::ResourceExhaustedError(absl::StrCat(
          "request body larger than ", server_->options_.max_body_bytes, " bytes"));
    } else if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
               ec == asio::error::eof || ec == asio::error::connection_reset ||
               ec == asio::error::operation_aborted || ec == bhttp::error::partial_message) {
      Close();  // the client went away: cancels the call
      return;
    } else if (ec) {
      error = absl::InvalidArgumentError(absl::StrCat("malformed request body: ", ec.message()));
    }
    Lowest().expires_never();
    BodyReader::Callback done = std::move(body_callback_);
    body_callback_ = nullptr;
    if (!done) return;
    if (!error.ok()) {
      done(std::move(error), std::string(), true);
      return;
    }
    const std::size_t n = body_buffer_.size() - stream_parser_->get().body().size;
    const bool last = stream_parser_->is_done();
    if (n == 0 && !last) {  // only framing (a chunk header) was read
      body_callback_ = std::move(done);
      ReadBodyPiece();
      return;
    }
    if (last && !responding_) WatchForDisconnect();
    done(absl::OkStatus(), std::string(body_buffer_.data(), n), last);
  }

  // While a call is in flight: a read that notices a client that goes away (Close()
  // cancels the call). Bytes that arrive are kept in buffer_ for the next request, and the
  // watch ends. WaitForNextRequest ends it too.
  void WatchForDisconnect() {
    if (watching_ || closed_ || buffer_.size() > 0) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = Self()](beast::error_code ec, std::size_t n) {
                              self->watching_ = false;
                              if (self->closed_) return;
                              if (!ec) {
                                self->buffer_.commit(n);
                              } else if (ec != asio::error::operation_aborted) {
                                self->Close();
                                return;
                              }
                              if (self->resume_after_watch_) {
                                self->resume_after_watch_ = false;
                                self->WaitForNextRequest();
                              }
                            });
  }

  // --- Writing responses ---

  void WriteChunk(bool last, std::function<void(bool)> written) {
    auto done = [self = Self(), last, written = std::move(written)](
                    beast::error_code ec, std::size_t) mutable {
      if (ec) {
        self->OnWriteFailed(std::move(written));
        return;
      }
      self->Lowest().expires_never();
      written(true);
      if (last) self->OnResponseWritten(!self->keep_alive_);
    };
    if (last) {
      if (chunk_.empty()) {
        asio::async_write(stream_, bhttp::make_chunk_last(), std::move(done));
        return;
      }
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)),
                        [self = Self(), done = std::move(done)](
                            beast::error_code ec, std::size_t n) mutable {
                          if (ec) {
                            done(ec, n);
                            return;
                          }
                          asio::async_write(self->stream_, bhttp::make_chunk_last(),
                                            std::move(done));
                        });
      return;
    }
    if (chunk_.empty()) {
      done({}, 0);
      return;
    }
    asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)), std::move(done));
  }

  void OnWriteFailed(std::function<void(bool)> written) {
    Close();
    written(false);
  }

  void WriteResponse(bool close) {
    responding_ = true;
    const bool keep = keep_alive_ && !close && !BodyIncomplete();
    res_.version(11);
    res_.keep_alive(keep);
    if (is_head_) {
      res_.content_length(res_.body().size());
      res_.body().clear();
    } else {
      res_.prepare_payload();
    }
    Lowest().expires_after(server_->idle_timeout_);
    bhttp::async_write(stream_, res_,
                       [self = Self(), keep](beast::error_code ec, std::size_t) {
                         self->Lowest().expires_never();
                         self->OnResponseWritten(ec || !keep);
                       });
  }

  void OnResponseWritten(bool close) {
    EndRequest();
    call_.reset();
    serializer_.reset();
    is_head_ = false;
    body_callback_ = nullptr;
    if (body_streaming_ && !body_read_pending_) {
      body_streaming_ = false;
      stream_parser_.reset();
    }
    if (close || closed_) {
      Close();
      return;
    }
    WaitForNextRequest();
  }

  void BeginRequest() {
    if (request_active_) return;
    request_active_ = true;
    server_->in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  void EndRequest() {
    if (!request_active_) return;
    request_active_ = false;
    server_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }

  void Close() {
    if (call_ != nullptr) {
      call_->Cancel();
      call_.reset();
    }
    EndRequest();
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close();
  }

  HttpServer::Impl* const server_;
  Worker* const worker_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::string peer_;
  std::string peer_identity_;  // the verified client certificate's (mutual TLS)
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool request_active_ = false;
  bool keep_alive_ = true;
  bool is_head_ = false;
  bool closed_ = false;
  std::shared_ptr<HttpCall> call_;
  bool responding_ = false;  // the response of the current request has begun
  bool watching_ = false;    // WatchForDisconnect's read is pending
  bool resume_after_watch_ = false;
  // A streamed request body (StartStreamingCall): parser_ moved into stream_parser_.
  bool body_streaming_ = false;
  bool body_read_pending_ = false;
  bool continue_pending_ = false;  // "Expect: 100-continue" not answered yet
  std::optional<bhttp::request_parser<bhttp::buffer_body>> stream_parser_;
  std::array<char, 16 << 10> body_buffer_;
  BodyReader::Callback body_callback_;

  bhttp::response<bhttp::string_body> res_;
  bhttp::response<bhttp::empty_body> sres_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;
  bool head_pending_ = false;
  std::string chunk_;
};

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
  auto tls = std::make_shared<TlsStream>(beast::tcp_stream(std::move(socket)), *tls_);
  asio::post(worker->ioc_, [this, worker, tls] {
    beast::get_lowest_layer(*tls).expires_after(header_read_timeout_);
    tls->async_handshake(asio::ssl::stream_base::server, [this, worker,
                                                          tls](beast::error_code ec) {
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

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const Options& options, const Snapshot<RouteTable>* routes) {
  auto impl = std::make_unique<Impl>(options, routes);
  const int threads = std::max(1, options.worker_threads);
  for (int i = 0; i < threads; ++i) impl->workers_.push_back(std::make_unique<Worker>(routes));
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
