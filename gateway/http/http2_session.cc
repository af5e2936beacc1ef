// HTTP/2 connections of the HTTP front end (h2c with prior knowledge), on nghttp2.
//
// nghttp2 parses and produces frames in memory (nghttp2_session_mem_recv/_mem_send); this
// file moves the bytes between it and the socket and turns each request stream into an
// HttpCall. Response bodies go out through deferred data providers: a streamed message is
// handed to nghttp2 and the call is told it was written only once nghttp2 took all of it,
// which HTTP/2 flow control paces, so a slow client slows the backend.
//
// Protections: SETTINGS_MAX_CONCURRENT_STREAMS (more streams are refused by nghttp2), header
// size/count limits (431), body limit (413), nghttp2's own limits on settings, pings and
// reset floods, and a cap on streams the client resets before their response completed
// (rapid reset): past it the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed.
//
// Request bodies: flow-control windows are opened by hand (no automatic WINDOW_UPDATE). The
// connection window is given back as soon as DATA arrives; a stream's window too, except for
// a request to a client-streaming method, which starts when its headers arrive and whose
// call pulls the body (BodyReader): its window opens only as the call takes the bytes, so a
// client cannot send more than one window (1 MiB) ahead of the backend.
//
// gRPC calls (content-type application/grpc[+...]) start when their headers arrive and go
// to a GrpcRelayCall (grpc_call.h), which pulls the body the same way (bounded per message
// by limits.max_message_bytes, not by the body limit) and ends its response with HTTP/2
// trailers (nghttp2_submit_trailer from the data provider at the end of the body).
//
// WebSockets (RFC 8441): the SETTINGS advertise ENABLE_CONNECT_PROTOCOL; an extended CONNECT
// with ":protocol: websocket" becomes a WebSocketCall (websocket_call.h) whose frames travel
// in the stream's DATA both ways (http2_websocket_stream.h), its body pulled like a client
// stream's. Any other CONNECT is refused (501).

#include <nghttp2/nghttp2.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "gateway/http/call.h"
#include "gateway/http/connect_call.h"
#include "gateway/http/grpc_call.h"
#include "gateway/http/http2_websocket_stream.h"
#include "gateway/http/server_internal.h"
#include "gateway/http/tls_identity.h"
#include "gateway/http/websocket_call.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/upstream/http2_connection.h"

namespace gateway::http {
namespace {

class SessionBase;

// nghttp2's view of one response field (valid while `name` and `value` are): per-call
// values never indexed (upstream::UniquePerCall).
nghttp2_nv Nv(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(),
                    upstream::UniquePerCall(name) ? NGHTTP2_NV_FLAG_NO_INDEX
                                                  : NGHTTP2_NV_FLAG_NONE};
}

// nghttp2's view of `headers` (valid while `headers` is unchanged).
std::vector<nghttp2_nv> HeaderNvs(const HeaderList& headers) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const auto& [name, value] : headers) nva.push_back(Nv(name, value));
  return nva;
}

// A response body's bytes a stream takes without waiting (TryWrite): past them the call
// waits until nghttp2 took what is there.
constexpr std::size_t kWriteWatermark = 64 << 10;

// One request stream; the sink of its call, and the reader of its body when the call
// streams it.
class Stream final : public CallSink, public BodyReader {
 public:
  Stream(SessionBase* session, int32_t id) : session_(session), id_(id) {}

  void Respond(int status, HeaderList headers, std::string body) override;
  void StartStream(int status, HeaderList headers) override;
  void Write(std::string data, bool last, std::function<void(bool)> written) override;
  bool TryWrite(std::string& data) override;
  void Finish(HeaderList trailers) override;
  void RespondTrailersOnly(int status, HeaderList headers) override;
  void Read(Callback done) override;
  bool ReadNow(absl::Status* status, std::string* data, bool* last) override;

  // The call of this stream, whichever kind it is, cancelled.
  void CancelCall() {
    if (call != nullptr) call->Cancel();
    if (grpc_call != nullptr) grpc_call->Cancel();
    if (connect_call != nullptr) connect_call->Cancel();
    if (websocket_call != nullptr) websocket_call->Cancel();
    if (websocket != nullptr) websocket->Detach();
  }

  SessionBase* session_;
  const int32_t id_;
  HttpRequest request;
  std::size_t header_bytes = 0;
  std::size_t header_count = 0;
  int reject_status = 0;  // 431 / 413 / 400 decided while receiving
  std::string reject_message;  // for 400: what was wrong
  bool dispatched = false;
  bool is_head = false;
  bool request_active = false;
  std::shared_ptr<HttpCall> call;
  std::shared_ptr<GrpcRelayCall> grpc_call;  // a gRPC call (then `call` is null)
  std::shared_ptr<ConnectCall> connect_call;  // a Connect call (then `call` is null)
  std::string connect_protocol;  // an extended CONNECT's :protocol (RFC 8441)
  std::shared_ptr<WebSocketCall> websocket_call;  // a WebSocket (then `call` is null)
  std::shared_ptr<Http2WebSocketStream> websocket;  // its byte stream over this stream
  bool grpc = false;
  bool native_grpc = false;  // a GrpcRelayCall's stream

  // The response body not yet handed to nghttp2.
  std::string out;
  std::size_t out_offset = 0;
  bool out_last = false;
  bool deferred = false;
  bool response_started = false;
  bool response_done = false;
  std::function<void(bool)> written;
  HeaderList response_headers;  // kept alive until nghttp2 copied them
  // gRPC: the trailer block sent after the body (Finish), when has_trailers.
  HeaderList trailers;
  bool has_trailers = false;

  // A body the call pulls (client streaming): bytes received and not yet taken (their
  // stream window not yet given back), END_STREAM seen, an error to report.
  bool body_streaming = false;
  bool body_ended = false;
  bool reset_sent = false;
  std::string body_pending;
  std::size_t body_received = 0;
  absl::Status body_error;
  Callback body_callback;
};

// What streams need from their session, whatever its transport.
class SessionBase : public ServerConnection {
 public:
  // A response's head; it goes out now (`flush`: a whole response) or with whatever else
  // the loop's current turn adds (a streamed response whose first bytes follow).
  virtual void Submit(Stream* stream, int status, bool has_body, bool flush) = 0;
  // More of a response's body (or its end) is ready; it goes out on this turn of the loop.
  virtual void ResumeData(Stream* stream) = 0;
  // Hands what arrived of a streamed body to the pending Read, if any.
  virtual void DeliverBody(Stream* stream) = 0;
  // Takes what arrived of a streamed body now: false when nothing did (Read waits).
  virtual bool TakeBody(Stream* stream, absl::Status* status, std::string* data,
                        bool* last) = 0;
  // The response ended; a streamed body the client is still sending is not wanted.
  virtual void OnResponseDone(Stream* stream) = 0;
  virtual asio::io_context::executor_type executor() = 0;
};

// `Socket` is beast::tcp_stream (h2c) or TlsStream (h2 chosen by ALPN).
template <typename Socket>
class Http2Session final : public SessionBase {
 public:
  Http2Session(HttpServer::Impl* server, Worker* worker, Socket socket, std::string peer)
      : server_(server),
        worker_(worker),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        peer_(std::move(peer)) {
    if constexpr (std::is_same_v<Socket, TlsStream>) {
      peer_identity_ = PeerIdentity(socket_.native_handle());
    }
    worker_->Add(this);
  }

  ~Http2Session() override {
    for (auto& [id, stream] : streams_) EndStream(stream.get());
    if (session_ != nullptr) nghttp2_session_del(session_);
    worker_->Remove(this);
  }

  bool Init(std::string preface) {
    nghttp2_session_callbacks* callbacks;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
    nghttp2_session_callbacks_set_on_invalid_header_callback(callbacks, OnInvalidHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, OnFrameSend);
    nghttp2_option* option;
    nghttp2_option_new(&option);
    nghttp2_option_set_max_settings(option, 32);
    nghttp2_option_set_max_outbound_ack(option, 1000);
    nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
    nghttp2_option_set_max_send_header_block_length(option, 64 << 10);
    nghttp2_option_set_no_auto_window_update(option, 1);
    const int rv = nghttp2_session_server_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) return false;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_->options_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, server_->options_.max_header_bytes},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        // RFC 8441: WebSockets over HTTP/2 (extended CONNECT with :protocol).
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                            sizeof(settings) / sizeof(settings[0]));
    boost::system::error_code ec;
    boost::beast::get_lowest_layer(socket_).socket().set_option(tcp::no_delay(true), ec);
    // The connection's own timeouts are timer_'s from now on: the deadline the HTTP/1.1
    // sniffer set on an h2c stream would otherwise end the connection header_read_timeout
    // after it opened, whatever its streams do.
    boost::beast::get_lowest_layer(socket_).expires_never();
    if (!Receive(preface)) return false;
    return true;
  }

  void Start() {
    Flush();
    Read();
  }

  void CloseIfIdle() override {
    draining_ = true;
    if (streams_.empty()) {
      Close();
      return;
    }
    nghttp2_submit_shutdown_notice(session_);
    Flush();
  }

  void Abort() override {
    for (auto& [id, stream] : streams_) stream->CancelCall();
    Close();
  }

  // Called by streams.
  void Submit(Stream* stream, int status, bool has_body, bool flush) override;
  void ResumeData(Stream* stream) override {
    if (stream->deferred) {
      stream->deferred = false;
      nghttp2_session_resume_data(session_, stream->id_);
    }
    FlushSoon();
  }
  asio::io_context::executor_type executor() override { return worker_->ioc_.get_executor(); }

  void OnResponseDone(Stream* s) override {
    if (!s->body_streaming || s->body_ended) return;
    if (!s->body_pending.empty()) {
      nghttp2_session_consume_stream(session_, s->id_, s->body_pending.size());
      s->body_pending.clear();
    }
    s->body_callback = nullptr;
    // The rest of the body is read and dropped (OnDataChunk), so that the client can finish
    // sending and read the response: some clients (curl) drop a response whose stream is
    // reset while they upload, although RFC 9113 (8.1) allows it.
  }

  void DeliverBody(Stream* s) override {
    if (!s->body_callback) return;
    auto done = std::move(s->body_callback);
    s->body_callback = nullptr;
    absl::Status status;
    std::string data;
    bool last = false;
    if (!TakeBody(s, &status, &data, &last)) {
      s->body_callback = std::move(done);  // nothing yet: the Read waits
      return;
    }
    asio::post(executor(), [done = std::move(done), status = std::move(status),
                            data = std::move(data), last]() mutable {
      done(std::move(status), std::move(data), last);
    });
  }

  bool TakeBody(Stream* s, absl::Status* status, std::string* data, bool* last) override {
    if (s->body_callback) return false;  // a Read is pending: it gets the bytes
    if (!s->body_error.ok()) {
      *status = s->body_error;
      data->clear();
      *last = true;
      return true;
    }
    if (s->body_pending.empty() && !s->body_ended) return false;
    *status = absl::OkStatus();
    *data = std::move(s->body_pending);
    s->body_pending.clear();
    *last = s->body_ended;
    if (!data->empty()) {
      nghttp2_session_consume_stream(session_, s->id_, data->size());
      FlushSoon();  // the WINDOW_UPDATE
    }
    return true;
  }

 private:
  std::shared_ptr<Http2Session> Self() {
    return std::static_pointer_cast<Http2Session>(shared_from_this());
  }

  static Http2Session* Of(void* user_data) { return static_cast<Http2Session*>(user_data); }

  Stream* Find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  bool Receive(absl::string_view bytes) {
    // Until it returns nothing is sent: its caller flushes after.
    receiving_ = true;
    parsing_ = true;
    const ssize_t n = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    parsing_ = false;
    // gRPC calls whose headers came in these bytes start now, with whatever of their
    // bodies came too: a unary call's request goes to the backend with its headers.
    while (!starting_.empty()) {
      std::vector<int32_t> ids = std::move(starting_);
      starting_.clear();
      for (int32_t id : ids) {
        Stream* s = Find(id);  // gone: reset in the same bytes, never started
        if (s != nullptr && s->grpc_call != nullptr) {
          std::shared_ptr<GrpcRelayCall> call = s->grpc_call;
          call->Start(std::move(s->request));
        }
      }
    }
    receiving_ = false;
    return n >= 0;
  }

  // Sends what nghttp2 has queued once the handlers of this turn of the loop are done, so
  // that a response's head, messages and trailers produced together leave in one write.
  // Inside an upstream read handler (a backend's response delivered) the flush runs at its
  // end instead (upstream::AfterUpstreamRead): no handler of its own.
  void FlushSoon() {
    if (receiving_ || flush_posted_ || closed_) return;  // Read() flushes after receiving
    flush_posted_ = true;
    auto flush = [self = Self()] {
      self->flush_posted_ = false;
      self->Flush();
    };
    if (upstream::AfterUpstreamRead::Active()) {
      upstream::AfterUpstreamRead::Defer(std::move(flush));
      return;
    }
    asio::post(executor(), std::move(flush));
  }

  void Read() {
    if (closed_) return;
    ArmTimer();
    auto on_read = [self = Self()](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        self->Close();
        return;
      }
      if (!self->Receive(absl::string_view(self->read_buffer_.data(), n))) {
        self->Close();
        return;
      }
      self->Flush();
      self->Read();
    };
    if constexpr (std::is_same_v<Socket, TlsStream>) {
      socket_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
    } else {
      // h2c reads the socket itself: Beast's stream would only wrap the read in its
      // timeout machinery, which the session does not use (its own timer_ does that).
      boost::beast::get_lowest_layer(socket_).socket().async_read_some(
          asio::buffer(read_buffer_), std::move(on_read));
    }
  }

  // Without open streams the connection may stay idle for idle_timeout; the first frames
  // (the preface) must come within header_read_timeout. The timer is not moved on each
  // call (a cancelled wait still costs a handler): it fires at the deadline it was set
  // to, and waits on when the connection was busy since (idle_deadline_ moved on).
  void ArmTimer() {
    if (!streams_.empty()) return;  // OnIdleTimer finds them and waits for the last to end
    idle_deadline_ = std::chrono::steady_clock::now() +
                     (got_request_ ? server_->idle_timeout_ : server_->header_read_timeout_);
    if (timer_armed_ && timer_.expiry() <= idle_deadline_) return;
    timer_armed_ = true;
    timer_.expires_at(idle_deadline_);
    timer_.async_wait(
        [self = Self()](boost::system::error_code ec) { self->OnIdleTimer(ec); });
  }

  void OnIdleTimer(boost::system::error_code ec) {
    if (ec) return;  // re-armed earlier (a newer wait is pending), or closed
    timer_armed_ = false;
    if (closed_ || !streams_.empty()) return;  // ArmTimer runs when the last stream ends
    if (std::chrono::steady_clock::now() < idle_deadline_) {
      timer_armed_ = true;
      timer_.expires_at(idle_deadline_);
      timer_.async_wait(
          [self = Self()](boost::system::error_code ec) { self->OnIdleTimer(ec); });
      return;
    }
    Close();
  }

  // Sends what nghttp2 has queued. Never from inside nghttp2_session_mem_recv (its
  // callbacks may queue frames; they go out once it returns).
  void Flush() {
    if (closed_ || writing_ || receiving_) return;
    std::size_t written = 0;
    while (true) {
      out_.clear();
      while (out_.size() < (64 << 10)) {
        const uint8_t* data;
        const ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          Close();
          return;
        }
        if (n == 0) break;
        out_.append(reinterpret_cast<const char*>(data), n);
      }
      if (out_.empty()) {
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
          Close();
        } else if (draining_ && streams_.empty()) {
          Close();
        }
        return;
      }
      // What the socket takes at once needs no trip through the event loop; the rest (or
      // an error, reported by the asynchronous write) waits for it.
      written = WriteNow();
      if (written < out_.size()) break;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_) + written,
                      [self = Self()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        self->out_.clear();
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->Flush();
                      });
  }

  // Writes what the socket takes of out_ now, without waiting (h2c only: TLS records go
  // through the asynchronous write).
  std::size_t WriteNow() {
    if constexpr (std::is_same_v<Socket, TlsStream>) {
      return 0;
    } else {
      return upstream::WriteAvailable(boost::beast::get_lowest_layer(socket_).socket(),
                                      asio::buffer(out_));
    }
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    for (auto& [id, stream] : streams_) {
      stream->CancelCall();
      stream->call.reset();
      stream->grpc_call.reset();
      stream->connect_call.reset();
      stream->websocket_call.reset();
      EndStream(stream.get());
    }
    boost::system::error_code ec;
    timer_.cancel();
    boost::beast::get_lowest_layer(socket_).socket().shutdown(tcp::socket::shutdown_both, ec);
    boost::beast::get_lowest_layer(socket_).close();
  }

  void BeginStream(Stream* s) {
    if (s->request_active) return;
    s->request_active = true;
    server_->in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  void EndStream(Stream* s) {
    if (!s->request_active) return;
    s->request_active = false;
    server_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }

  void Dispatch(Stream* s) {
    if (s->dispatched) return;
    s->dispatched = true;
    got_request_ = true;
    if (s->reject_status != 0) {
      const absl::Status error =
          s->reject_status == 400 ? absl::InvalidArgumentError(s->reject_message)
          : s->reject_status == 431
              ? absl::ResourceExhaustedError(absl::StrCat(
                    "request headers larger than ", server_->options_.max_header_bytes,
                    " bytes or more than ", server_->options_.max_header_count,
                    " fields (limits.max_header_bytes, limits.max_header_count)"))
              : absl::ResourceExhaustedError(absl::StrCat(
                    "request body larger than ", server_->options_.max_body_bytes, " bytes"));
      if (IsGrpcContentType(s->request.Header("content-type"))) {
        s->RespondTrailersOnly(200, {{"content-type", "application/grpc"},
                                     {"grpc-status", absl::StrCat(error.raw_code())},
                                     {"grpc-message", grpc_web::PercentEncodeMessage(error.message())}});
        return;
      }
      HeaderList grpc_web;
      if (GrpcWebErrorHeaders(s->request.Header("content-type"), error, &grpc_web)) {
        s->Respond(200, std::move(grpc_web), "");
        return;
      }
      s->Respond(s->reject_status, {{"content-type", "application/json"}},
                 worker_->routes()->transcoder().ErrorBody(error));
      return;
    }
    if (s->request.method == "CONNECT") {
      StartConnect(s, /*ended=*/true);
      return;
    }
    if (s->request.method.empty() || s->request.target.empty()) {
      s->Respond(400, {{"content-type", "application/json"}},
                 worker_->routes()->transcoder().ErrorBody(
                     absl::InvalidArgumentError("request without :method or :path")));
      return;
    }
    if (IsGrpcContentType(s->request.Header("content-type"))) {
      s->body_ended = true;  // headers with END_STREAM: a call without request messages
      StartGrpcCall(s);
      return;
    }
    s->request.peer = peer_;
    s->request.peer_identity = peer_identity_;
    s->request.protocol = "HTTP/2";
    if (IsConnectRequest(*worker_->routes(), s->request)) {
      s->connect_call = std::make_shared<ConnectCall>(&server_->env_, worker_->routes(),
                                                      executor(), worker_->upstreams(), s,
                                                      nullptr, shared_from_this());
      std::shared_ptr<ConnectCall> call = s->connect_call;
      call->Start(std::move(s->request));
      return;
    }
    s->is_head = s->request.method == "HEAD";
    s->call = std::make_shared<HttpCall>(&server_->env_, worker_->routes(), executor(),
                                         worker_->upstreams(), s, shared_from_this());
    s->call->Start(std::move(s->request));
  }

  // A gRPC call starts when its headers arrived and pulls its body (see the file comment).
  void StartGrpcCall(Stream* s) {
    s->dispatched = true;
    got_request_ = true;
    s->request.peer = peer_;
    s->request.peer_identity = peer_identity_;
    s->request.protocol = "HTTP/2";
    s->grpc = true;
    s->native_grpc = true;
    s->body_streaming = true;
    s->grpc_call = std::make_shared<GrpcRelayCall>(&server_->env_, worker_->routes(),
                                                   executor(), worker_->upstreams(), s, s,
                                                   shared_from_this());
    if (parsing_) {
      starting_.push_back(s->id_);  // Receive() starts it
      return;
    }
    std::shared_ptr<GrpcRelayCall> call = s->grpc_call;
    call->Start(std::move(s->request));
  }

  // Request headers without END_STREAM: a gRPC or client-streaming call starts now and
  // pulls its body (see the file comment); any other request waits for its whole body.
  void StartStreamingCall(Stream* s) {
    if (s->dispatched || s->reject_status != 0) return;
    if (s->request.method == "CONNECT") {
      StartConnect(s, /*ended=*/false);
      return;
    }
    if (s->request.method.empty() || s->request.target.empty()) return;
    if (IsGrpcContentType(s->request.Header("content-type"))) {
      StartGrpcCall(s);
      return;
    }
    if (IsConnectStreaming(s->request.Header("content-type"))) {
      s->dispatched = true;
      got_request_ = true;
      s->request.peer = peer_;
      s->request.peer_identity = peer_identity_;
      s->request.protocol = "HTTP/2";
      s->grpc = true;  // the body is bounded per message, not as a whole
      s->body_streaming = true;
      s->connect_call = std::make_shared<ConnectCall>(&server_->env_, worker_->routes(),
                                                      executor(), worker_->upstreams(), s, s,
                                                      shared_from_this());
      std::shared_ptr<ConnectCall> call = s->connect_call;
      call->Start(std::move(s->request));
      return;
    }
    s->request.peer = peer_;
    s->request.peer_identity = peer_identity_;
    s->request.protocol = "HTTP/2";
    s->body_streaming = true;
    s->call = std::make_shared<HttpCall>(&server_->env_, worker_->routes(), executor(),
                                         worker_->upstreams(), s, shared_from_this());
    std::shared_ptr<HttpCall> call = s->call;
    if (call->StartStreaming(&s->request, s)) {
      s->dispatched = true;
      got_request_ = true;
      return;
    }
    s->body_streaming = false;
    s->call.reset();
  }

  // A CONNECT. An extended CONNECT (RFC 8441) with ":protocol: websocket" is a WebSocket
  // call (websocket_call.h) over this stream (http2_websocket_stream.h); a plain CONNECT
  // (a tunnel) or another protocol is refused with 501, a WebSocket CONNECT whose HEADERS
  // end the stream (`ended`) with 400.
  void StartConnect(Stream* s, bool ended) {
    s->dispatched = true;
    got_request_ = true;
    s->request.peer = peer_;
    s->request.peer_identity = peer_identity_;
    s->request.protocol = "HTTP/2";
    absl::Status refused;
    if (s->connect_protocol.empty()) {
      refused = absl::UnimplementedError(
          "CONNECT tunnels are not served; a WebSocket over HTTP/2 is an extended CONNECT "
          "with :protocol websocket (RFC 8441) to a streaming method's REST path");
    } else if (s->connect_protocol != "websocket") {
      refused = absl::UnimplementedError(absl::StrCat(
          "extended CONNECT protocol \"", s->connect_protocol,
          "\" is not served (only websocket)"));
    } else if (ended) {
      refused = absl::InvalidArgumentError(
          "a WebSocket CONNECT must leave its stream open (its HEADERS carried END_STREAM)");
    }
    if (!refused.ok()) {
      s->Respond(transcoder::HttpStatusFromCode(refused.code()),
                 {{"content-type", "application/json"}},
                 worker_->routes()->transcoder().ErrorBody(refused));
      return;
    }
    s->grpc = true;  // the body is bounded per message (by the WebSocket layer), not as a whole
    s->body_streaming = true;
    const int32_t id = s->id_;
    // The byte stream keeps this session alive until it is detached (CancelCall).
    auto socket = std::make_shared<Http2WebSocketStream>(
        executor(), s, s, [this, id, keep = shared_from_this()] { ResetStream(id); });
    typename BeastWebSocket<Http2WebSocketStream>::Options options;
    options.max_message_bytes = server_->options_.max_body_bytes;
    options.handshake_timeout = server_->header_read_timeout_;
    options.idle_timeout = server_->idle_timeout_;
    std::weak_ptr<Http2WebSocketStream> weak = socket;
    auto transport = std::make_shared<BeastWebSocket<Http2WebSocketStream>>(
        *socket,
        Http2WebSocketStream::UpgradeRequest(s->request.target, s->request.Header("host")),
        options, socket,
        [weak](int status, HeaderList headers, std::string body) {
          if (auto socket = weak.lock()) {
            socket->Refuse(status, std::move(headers), std::move(body));
          }
        },
        [weak] {
          if (auto socket = weak.lock()) socket->Close();
        });
    s->websocket = std::move(socket);
    s->websocket_call = std::make_shared<WebSocketCall>(&server_->env_, worker_->routes(),
                                                        executor(), worker_->upstreams(),
                                                        std::move(transport));
    std::shared_ptr<WebSocketCall> call = s->websocket_call;
    call->Start(std::move(s->request));
  }

  // Resets stream `id` (a WebSocket that failed or timed out).
  void ResetStream(int32_t id) {
    if (closed_ || Find(id) == nullptr) return;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    Flush();
  }

  // --- nghttp2 callbacks ---

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2Session* self = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    auto stream = std::make_unique<Stream>(self, frame->hd.stream_id);
    // A gRPC client sends about 8 fields besides the pseudo-headers; one allocation.
    stream->request.headers.reserve(12);
    self->BeginStream(stream.get());
    self->streams_.emplace(frame->hd.stream_id, std::move(stream));
    return 0;
  }

  // A field nghttp2 finds invalid (RFC 9113: a name that is not a lower-case token, a
  // value with control bytes or surrounding whitespace). An invalid name is dropped, as
  // the metadata policy drops names gRPC does not allow; an invalid value of a valid
  // name refuses the request (400, or INVALID_ARGUMENT for gRPC) naming the header.
  // Invalid pseudo-headers reset the stream.
  static int OnInvalidHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                             size_t namelen, const uint8_t*, size_t valuelen, uint8_t,
                             void* user_data) {
    Http2Session* self = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = self->Find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
    if (!n.empty() && n[0] == ':') return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->header_bytes += namelen + valuelen + 32;
    ++s->header_count;
    if (s->header_bytes > self->server_->options_.max_header_bytes ||
        s->header_count > self->server_->options_.max_header_count) {
      s->reject_status = 431;
      return 0;
    }
    if (s->reject_status == 0 && metadata::IsValidKey(n)) {
      s->reject_status = 400;
      s->reject_message = absl::StrCat(
          "header ", n,
          ": value has bytes HTTP/2 does not allow (control bytes, or whitespace at either "
          "end)");
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    Http2Session* self = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = self->Find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->header_bytes += namelen + valuelen + 32;
    ++s->header_count;
    if (s->header_bytes > self->server_->options_.max_header_bytes ||
        s->header_count > self->server_->options_.max_header_count) {
      s->reject_status = 431;
      return 0;
    }
    const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
    const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") {
        s->request.method = std::string(v);
      } else if (n == ":path") {
        s->request.target = std::string(v);
      } else if (n == ":authority") {
        s->request.headers.emplace_back("host", v);
      } else if (n == ":protocol") {
        s->connect_protocol = std::string(v);
      }
      return 0;
    }
    // nghttp2 has checked that names are lower case and values hold no CR, LF or NUL.
    s->request.headers.emplace_back(n, v);
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user_data) {
    Http2Session* self = Of(user_data);
    Stream* s = self->Find(stream_id);
    if (s == nullptr || !s->body_streaming) {
      nghttp2_session_consume(self->session_, stream_id, len);
    } else {
      nghttp2_session_consume_connection(self->session_, len);
    }
    if (s == nullptr) return 0;
    if (s->body_streaming) {
      s->body_received += len;
      if (s->response_done || !s->body_error.ok()) {  // nobody reads it any more
        nghttp2_session_consume_stream(self->session_, stream_id, len);
        // Dropped bytes are bounded too: past twice the limit the stream is reset.
        if (s->response_done && !s->reset_sent &&
            s->body_received > 2 * std::size_t{self->server_->options_.max_body_bytes}) {
          s->reset_sent = true;
          nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, stream_id,
                                    NGHTTP2_NO_ERROR);
        }
        return 0;
      }
      // A gRPC call's body is bounded per message (GrpcMessageReader), not as a whole.
      if (!s->grpc && s->body_received > self->server_->options_.max_body_bytes) {
        nghttp2_session_consume_stream(self->session_, stream_id, len + s->body_pending.size());
        s->body_pending.clear();
        s->body_error = absl::ResourceExhaustedError(absl::StrCat(
            "request body larger than ", self->server_->options_.max_body_bytes, " bytes"));
      } else {
        s->body_pending.append(reinterpret_cast<const char*>(data), len);
      }
      self->DeliverBody(s);
      return 0;
    }
    if (s->reject_status != 0) return 0;
    if (s->request.body.size() + len > self->server_->options_.max_body_bytes) {
      s->reject_status = 413;
      s->request.body.clear();
      self->Dispatch(s);
      return 0;
    }
    s->request.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2Session* self = Of(user_data);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      if (frame->hd.type == NGHTTP2_HEADERS) {
        // Headers too large are answered at once, without waiting for the body.
        Stream* s = self->Find(frame->hd.stream_id);
        if (s != nullptr && (s->reject_status == 431 || s->reject_status == 400)) {
          self->Dispatch(s);
        }
        if (s != nullptr && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          self->StartStreamingCall(s);
        }
      }
      return 0;
    }
    Stream* s = self->Find(frame->hd.stream_id);
    if (s != nullptr && s->body_streaming) {
      s->body_ended = true;
      self->DeliverBody(s);
      return 0;
    }
    if (s != nullptr) self->Dispatch(s);
    return 0;
  }

  // A native gRPC call answered (END_STREAM sent) while the client still has its side open (a
  // request stream it has not finished, a stalled one): RST_STREAM NO_ERROR tells it to stop
  // sending (RFC 9113, 8.1), as gRPC servers do, and the stream no longer holds the
  // connection open. Not for other requests: curl (7.88) reports an early answer followed by
  // it (a 413 to a body still being sent) as a stream error; nor for WebSockets, whose client
  // still answers the close frame that went with END_STREAM.
  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame,
                         void* user_data) {
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0 ||
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) != 0) {
      return 0;
    }
    Stream* s = Of(user_data)->Find(frame->hd.stream_id);
    if (s == nullptr || !s->native_grpc) return 0;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_NO_ERROR);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    Http2Session* self = Of(user_data);
    auto it = self->streams_.find(stream_id);
    if (it == self->streams_.end()) return 0;
    Stream* s = it->second.get();
    if (!s->response_done && error_code != NGHTTP2_NO_ERROR) self->OnClientReset();
    s->CancelCall();
    s->body_callback = nullptr;
    if (s->written) {
      auto written = std::move(s->written);
      asio::post(self->executor(), [written = std::move(written)] { written(false); });
    }
    self->EndStream(s);
    self->streams_.erase(it);
    if (self->streams_.empty() && !self->closed_) self->ArmTimer();
    return 0;
  }

  // Rapid reset: a client that cancels streams faster than it could use them.
  void OnClientReset() {
    const absl::Time now = absl::Now();
    if (now - reset_window_start_ > absl::Seconds(1)) {
      reset_window_start_ = now;
      resets_in_window_ = 0;
    }
    const int limit = 2 * static_cast<int>(server_->options_.max_concurrent_streams) + 100;
    if (++resets_in_window_ > limit && !goaway_sent_) {
      goaway_sent_ = true;
      nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                          size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void*) {
    Stream* s = static_cast<Stream*>(source->ptr);
    const std::size_t left = s->out.size() - s->out_offset;
    const std::size_t n = std::min(length, left);
    std::memcpy(buf, s->out.data() + s->out_offset, n);
    s->out_offset += n;
    if (s->out_offset == s->out.size()) {
      if (s->out_last) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->has_trailers) {
          // nghttp2 sends the trailer block (which it copies) after this last DATA frame.
          *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<nghttp2_nv> nva = HeaderNvs(s->trailers);
          if (nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size()) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
          }
          s->trailers.clear();
          s->has_trailers = false;
        }
        s->response_done = true;
        s->session_->OnResponseDone(s);
      } else if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
      s->out.clear();
      s->out_offset = 0;
      if (s->written) {
        // The whole message is with nghttp2: the call may read the next one.
        auto written = std::move(s->written);
        asio::post(s->session_->executor(), [written = std::move(written)] { written(true); });
      }
    }
    return static_cast<ssize_t>(n);
  }

  HttpServer::Impl* const server_;
  Worker* const worker_;
  Socket socket_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point idle_deadline_;
  const std::string peer_;
  std::string peer_identity_;  // the verified client certificate's (mutual TLS)
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::array<char, 16 << 10> read_buffer_;
  std::string out_;
  bool writing_ = false;
  bool flush_posted_ = false;
  std::vector<int32_t> starting_;  // gRPC calls to start once the received bytes are read
  bool receiving_ = false;  // in Receive()
  bool parsing_ = false;    // in nghttp2_session_mem_recv
  bool closed_ = false;
  bool draining_ = false;
  bool got_request_ = false;
  bool goaway_sent_ = false;
  absl::Time reset_window_start_ = absl::InfinitePast();
  int resets_in_window_ = 0;
};

template <typename Socket>
void Http2Session<Socket>::Submit(Stream* s, int status, bool has_body, bool flush) {
  std::string status_text = std::to_string(status);
  std::vector<nghttp2_nv> nva;
  nva.reserve(s->response_headers.size() + 1);
  nva.push_back(Nv(":status", status_text));
  for (const auto& [name, value] : s->response_headers) nva.push_back(Nv(name, value));
  nghttp2_data_provider provider;
  provider.source.ptr = s;
  provider.read_callback = ReadBody;
  s->response_started = true;
  // nghttp2 copies the header block here.
  nghttp2_submit_response(session_, s->id_, nva.data(), nva.size(),
                          has_body ? &provider : nullptr);
  if (!has_body) {
    s->response_done = true;
    OnResponseDone(s);
  }
  s->response_headers.clear();
  if (flush) {
    Flush();
  } else {
    FlushSoon();
  }
}

void Stream::Respond(int status, HeaderList headers, std::string body) {
  response_headers = std::move(headers);
  response_headers.emplace_back("content-length", std::to_string(body.size()));
  out = is_head ? std::string() : std::move(body);
  out_offset = 0;
  out_last = true;
  session_->Submit(this, status, !out.empty(), /*flush=*/true);
}

void Stream::Finish(HeaderList trailer_block) {
  trailers = std::move(trailer_block);
  has_trailers = true;
  if (out_offset == out.size()) {
    out.clear();
    out_offset = 0;
  }
  out_last = true;
  session_->ResumeData(this);
}

void Stream::RespondTrailersOnly(int status, HeaderList headers) {
  response_headers = std::move(headers);
  out.clear();
  out_offset = 0;
  out_last = true;
  session_->Submit(this, status, /*has_body=*/false, /*flush=*/true);
}

void Stream::Read(Callback done) {
  body_callback = std::move(done);
  session_->DeliverBody(this);
}

bool Stream::ReadNow(absl::Status* status, std::string* data, bool* last) {
  return session_->TakeBody(this, status, data, last);
}

bool Stream::TryWrite(std::string& data) {
  if (!response_started || out_last || written ||
      out.size() - out_offset + data.size() > kWriteWatermark) {
    return false;
  }
  if (out_offset == out.size()) {
    out = std::move(data);
    out_offset = 0;
  } else {
    out.append(data);
  }
  session_->ResumeData(this);
  return true;
}

void Stream::StartStream(int status, HeaderList headers) {
  response_headers = std::move(headers);
  out.clear();
  out_offset = 0;
  out_last = false;
  session_->Submit(this, status, /*has_body=*/true, /*flush=*/false);
}

void Stream::Write(std::string data, bool last, std::function<void(bool)> written_cb) {
  if (out_offset == out.size()) {
    out = std::move(data);
    out_offset = 0;
  } else {
    out.append(data);
  }
  out_last = last;
  written = std::move(written_cb);
  session_->ResumeData(this);
}

template <typename Socket>
void StartSession(HttpServer::Impl* server, Worker* worker, Socket socket, std::string preface,
                  std::string peer) {
  auto session = std::make_shared<Http2Session<Socket>>(server, worker, std::move(socket),
                                                        std::move(peer));
  if (!session->Init(std::move(preface))) return;
  session->Start();
}

}  // namespace

void StartHttp2Session(HttpServer::Impl* server, Worker* worker, boost::beast::tcp_stream stream,
                       std::string preface, std::string peer) {
  StartSession(server, worker, std::move(stream), std::move(preface), std::move(peer));
}

void StartHttp2Session(HttpServer::Impl* server, Worker* worker, TlsStream stream,
                       std::string preface, std::string peer) {
  StartSession(server, worker, std::move(stream), std::move(preface), std::move(peer));
}

}  // namespace gateway::http
