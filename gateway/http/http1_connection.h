// The HTTP/1.1 side of the HTTP front end: one client connection (plaintext, or TLS with
// ALPN http/1.1), its requests read one at a time and handed to HttpCall, its responses
// written. Internal to gateway/http (http_server.cc accepts and creates connections; the
// HTTP/2 side is http2_session.cc).

#ifndef GATEWAY_HTTP_HTTP1_CONNECTION_H_
#define GATEWAY_HTTP_HTTP1_CONNECTION_H_

#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "gateway/http/call.h"
#include "gateway/http/connect_call.h"
#include "gateway/http/request_checks.h"
#include "gateway/http/server_internal.h"
#include "gateway/http/tls_identity.h"
#include "gateway/http/websocket_call.h"
#include "gateway/upstream/http2_connection.h"

namespace gateway::http {

namespace http1_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

inline absl::string_view SV(beast::string_view s) { return absl::string_view(s.data(), s.size()); }
inline beast::string_view BV(absl::string_view s) { return beast::string_view(s.data(), s.size()); }

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
      : server_(server),
        worker_(worker),
        stream_(std::move(stream)),
        idle_timer_(beast::get_lowest_layer(stream_).get_executor()) {
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
    WriteResponse(status, headers, std::move(body), false);
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

  // A Write while an earlier one is on the socket (a call that ends while its last
  // message is still being sent) waits for it: the bytes go out in order.
  void Write(std::string data, bool last, std::function<void(bool)> written) override {
    if (closed_) {
      written(false);
      return;
    }
    if (chunk_writing_ || !queued_chunks_.empty()) {
      queued_chunks_.push_back({std::move(data), last, std::move(written)});
      return;
    }
    StartChunk(std::move(data), last, std::move(written));
  }

 private:
  void StartChunk(std::string data, bool last, std::function<void(bool)> written) {
    chunk_writing_ = true;
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
    head_bytes_ = 0;
    ParseHead();
  }

  // Parses the head from buffer_, reading more only when it is incomplete: a head that
  // arrived whole (the usual case) is handled at once, without a trip through the event
  // loop. The parser refuses a head over header_limit while it waits for more.
  void ParseHead() {
    const beast::error_code ec =
        FeedParser([this] { return parser_->is_header_done(); }, &head_bytes_);
    if (ec || parser_->is_header_done()) {
      OnHead(ec, head_bytes_);
      return;
    }
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = Self()](beast::error_code ec, std::size_t n) {
                              if (ec) {
                                if (ec == asio::error::eof) {
                                  ec = self->parser_->got_some()
                                           ? beast::error_code(bhttp::error::partial_message)
                                           : beast::error_code(bhttp::error::end_of_stream);
                                }
                                self->OnHead(ec, self->head_bytes_);
                                return;
                              }
                              self->buffer_.commit(n);
                              self->ParseHead();
                            });
  }

  // Hands the bytes in buffer_ to parser_ until `done()` holds, the parser wants more bytes
  // than there are, or it fails; adds the bytes it took to *taken. Returns the parser's
  // error, or none when it stopped for one of the other reasons.
  template <typename Done>
  beast::error_code FeedParser(Done done, std::size_t* taken) {
    while (buffer_.size() > 0 && !done()) {
      beast::error_code ec;
      const std::size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      *taken += n;
      if (ec == bhttp::error::need_more) return {};
      if (ec) return ec;
      if (n == 0) return {};
    }
    return {};
  }

  // Between keep-alive requests: waits up to idle_timeout for the next request's first
  // byte, then gives its head header_read_timeout.
  void WaitForNextRequest() {
    if (server_->draining_.load(std::memory_order_relaxed)) {
      Close();
      return;
    }
    if (watching_) {
      // The watch read goes on as the wait for the next request (cancelling it would cost
      // a handler, and a new read a recv that finds nothing); idle_timeout is kept by
      // idle_timer_, as Beast's timer does not apply to a read already started.
      resume_after_watch_ = true;
      WatchIdle();
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
    HeaderList grpc_web;
    if (parser_.has_value() &&
        GrpcWebErrorHeaders(SV(parser_->get()[bhttp::field::content_type]), error, &grpc_web)) {
      // A gRPC-Web client reads the status from a trailers-only response.
      WriteResponse(200, grpc_web, {}, true);
      return;
    }
    WriteResponse(status, {{"content-type", "application/json"}},
                  worker_->routes()->transcoder().ErrorBody(error), true);
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
    if (UpgradesToWebSocket(SV(req[bhttp::field::upgrade]))) {
      StartWebSocket();
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
    // The body bytes that came with the head are parsed now; Beast's read takes the rest.
    parser_->eager(true);
    std::size_t taken = 0;
    if (const beast::error_code ec = FeedParser([this] { return parser_->is_done(); }, &taken)) {
      OnReadError(ec);
      return;
    }
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
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
    if (IsConnectRequest(*worker_->routes(), request)) {
      connect_ = std::make_shared<ConnectCall>(&server_->env_, worker_->routes(),
                                               worker_->ioc_.get_executor(),
                                               worker_->upstreams(), this, nullptr, Self());
      connect_->Start(std::move(request));
      if (!responding_) WatchForDisconnect();
      return;
    }
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
    if (IsConnectStreaming(head.Header("content-type"))) {
      connect_ = std::make_shared<ConnectCall>(&server_->env_, worker_->routes(),
                                               worker_->ioc_.get_executor(),
                                               worker_->upstreams(), this, this, Self());
      Lowest().expires_never();
      stream_parser_.emplace(std::move(*parser_));
      stream_parser_->body_limit(server_->options_.max_body_bytes);
      connect_->Start(std::move(head));
      return true;
    }
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

  // An "Upgrade: websocket" request: a WebSocketCall (websocket_call.h) refuses it with an
  // HTTP error or answers 101, after which the socket is the WebSocket's until it closes.
  void StartWebSocket() {
    if (!parser_->is_done() || buffer_.size() > 0) {
      SendError(400, absl::InvalidArgumentError(
                         "a WebSocket upgrade request has no body, and nothing may follow it "
                         "before the 101 answer"));
      return;
    }
    Lowest().expires_never();  // the WebSocket keeps its own timeouts
    keep_alive_ = false;
    responding_ = false;
    HttpRequest request = MakeRequest();
    typename BeastWebSocket<Stream>::Options options;
    options.max_message_bytes = server_->options_.max_body_bytes;
    options.handshake_timeout = server_->header_read_timeout_;
    options.idle_timeout = server_->idle_timeout_;
    auto transport = std::make_shared<BeastWebSocket<Stream>>(
        stream_, parser_->release(), options, Self(),
        [self = Self()](int status, HeaderList headers, std::string body) {
          self->WriteResponse(status, headers, std::move(body), /*close=*/true);
        },
        [self = Self()] { self->Close(); });
    websocket_ = std::make_shared<WebSocketCall>(&server_->env_, worker_->routes(),
                                                 worker_->ioc_.get_executor(),
                                                 worker_->upstreams(), std::move(transport));
    websocket_->Start(std::move(request));
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

  // Closes the connection if the watch read still waits for the next request
  // idle_timeout from now. The timer is not moved per request (a cancelled wait still
  // costs a handler): it fires at the deadline it was set to, and waits on when the
  // connection was busy since.
  void WatchIdle() {
    idle_deadline_ = std::chrono::steady_clock::now() + server_->idle_timeout_;
    if (!idle_timer_armed_) ArmIdleTimer();
  }
  void ArmIdleTimer() {
    idle_timer_armed_ = true;
    idle_timer_.expires_at(idle_deadline_);
    idle_timer_.async_wait([weak = weak_from_this()](boost::system::error_code) {
      if (auto base = weak.lock()) static_cast<Connection*>(base.get())->OnIdleTimer();
    });
  }
  void OnIdleTimer() {
    idle_timer_armed_ = false;
    if (closed_ || !watching_ || !resume_after_watch_) return;  // busy, or gone
    if (std::chrono::steady_clock::now() >= idle_deadline_) {
      Close();
      return;
    }
    ArmIdleTimer();
  }

  // --- Writing responses ---

  void WriteChunk(bool last, std::function<void(bool)> written) {
    auto done = [self = Self(), last, written = std::move(written)](
                    beast::error_code ec, std::size_t) mutable {
      self->chunk_writing_ = false;
      if (ec) {
        self->OnWriteFailed(std::move(written));
        return;
      }
      self->Lowest().expires_never();
      if (!last && !self->queued_chunks_.empty()) {
        // The next queued chunk goes out before the call hears of this one, so that a
        // Write from its callback queues behind it.
        QueuedChunk next = std::move(self->queued_chunks_.front());
        self->queued_chunks_.pop_front();
        self->StartChunk(std::move(next.data), next.last, std::move(next.written));
      }
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
    std::deque<QueuedChunk> queued = std::move(queued_chunks_);
    queued_chunks_.clear();
    for (QueuedChunk& chunk : queued) chunk.written(false);
  }

  // A whole response (Content-Length known), formatted into one buffer and written with one
  // write: Beast's serializer costs about a fifth of a small call's CPU for the same bytes.
  // Header names and values come from the gateway (checked where they were received).
  void WriteResponse(int status, const HeaderList& headers, std::string body, bool close) {
    responding_ = true;
    const bool keep = keep_alive_ && !close && !BodyIncomplete();
    out_.clear();
    const beast::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
    absl::StrAppend(&out_, "HTTP/1.1 ", status, " ", SV(reason), "\r\n");
    for (const auto& [name, value] : headers) absl::StrAppend(&out_, name, ": ", value, "\r\n");
    if (!keep) out_.append("Connection: close\r\n");
    // 1xx, 204 and 304 responses have neither a body nor a Content-Length (RFC 9110 8.6).
    const bool bodiless = status < 200 || status == 204 || status == 304;
    if (!bodiless) absl::StrAppend(&out_, "Content-Length: ", body.size(), "\r\n");
    out_.append("\r\n");
    out_body_.clear();
    if (!bodiless && !is_head_) out_body_ = std::move(body);
    std::array<asio::const_buffer, 2> buffers = {asio::buffer(out_), asio::buffer(out_body_)};
    if constexpr (kPlain) {
      // What the socket takes at once needs no write handler and no timer. The rest of
      // the work is posted: it ends the call, whose Respond may be running now.
      const std::size_t n = upstream::WriteAvailable(Lowest().socket(), buffers);
      if (n == out_.size() + out_body_.size()) {
        asio::post(Lowest().get_executor(),
                   [self = Self(), keep] { self->OnResponseWritten(!keep); });
        return;
      }
      buffers[0] += n;
      buffers[1] += n > out_.size() ? n - out_.size() : 0;
    }
    Lowest().expires_after(server_->idle_timeout_);
    asio::async_write(stream_, buffers,
                      [self = Self(), keep](beast::error_code ec, std::size_t) {
                        self->Lowest().expires_never();
                        self->OnResponseWritten(ec || !keep);
                      });
  }

  void OnResponseWritten(bool close) {
    EndRequest();
    call_.reset();
    connect_.reset();
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
    if (connect_ != nullptr) {
      connect_->Cancel();
      connect_.reset();
    }
    if (websocket_ != nullptr) {
      websocket_->Cancel();
      websocket_.reset();
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
  // idle_timeout between requests while the watch read waits (WatchIdle).
  asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point idle_deadline_;
  bool idle_timer_armed_ = false;
  beast::flat_buffer buffer_;
  std::string peer_;
  std::string peer_identity_;  // the verified client certificate's (mutual TLS)
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::size_t head_bytes_ = 0;  // of the head being parsed (ParseHead)
  bool request_active_ = false;
  bool keep_alive_ = true;
  bool is_head_ = false;
  bool closed_ = false;
  std::shared_ptr<HttpCall> call_;
  std::shared_ptr<ConnectCall> connect_;  // a Connect call (then call_ is null)
  std::shared_ptr<WebSocketCall> websocket_;  // an upgraded (or upgrading) request
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

  std::string out_;       // the head of a whole response being written (WriteResponse)
  std::string out_body_;  // and its body
  bhttp::response<bhttp::empty_body> sres_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;
  bool head_pending_ = false;
  std::string chunk_;
  bool chunk_writing_ = false;  // a Write's bytes are on the socket
  struct QueuedChunk {
    std::string data;
    bool last;
    std::function<void(bool)> written;
  };
  std::deque<QueuedChunk> queued_chunks_;
};

}  // namespace http1_internal

using http1_internal::Connection;

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_HTTP1_CONNECTION_H_
