// WebSocket calls of streaming REST routes (RFC 6455 over HTTP/1.1, RFC 8441 over HTTP/2).
//
// A GET request with `Upgrade: websocket` (HTTP/1.1), or an extended CONNECT with
// `:protocol: websocket` (HTTP/2; see http2_websocket_stream.h), to the REST route of a
// client-, server- or bidi-streaming method (the route's own verb may be GET or POST)
// becomes one gRPC call:
//
//   client -> gateway   each text frame is one JSON request message; the path and query
//                       fields of the upgrade request fill every message (as for client
//                       streams over plain HTTP). An empty text frame ends the request
//                       stream (half-close). A server-streaming method takes one message,
//                       and the request stream ends after it.
//   gateway -> client   each response message is one text frame (its JSON); at the end the
//                       gRPC status: for an error, a last text frame with the JSON error body
//                       ({code, message, details}, as REST errors), then a close frame:
//                       1000 for OK, 4000 + the gRPC code for an error (4003
//                       INVALID_ARGUMENT, 4014 UNAVAILABLE, ...), the gRPC message as the
//                       reason (cut to 123 bytes at a UTF-8 character boundary).
//
// The upgrade request is checked like any REST request before the 101 (HTTP/2: 200) answer: target,
// route (unary methods: 400), Origin (the CORS policy: an origin it does not allow gets 403;
// without a policy only a same-origin Origin is accepted), deadline headers, metadata, and
// the interceptor chain (authentication, quotas: run once per WebSocket call). A refusal is
// an ordinary HTTP error response with the JSON error body.
//
// Back-pressure both ways: the next frame is read only once the backend took the previous
// message (BackendCall's on_writable), and the next response message is asked for
// (RequestNext) only once its frame was written. A message over the listener's
// max_body_bytes is refused by the WebSocket layer with close code 1009; a binary frame, a
// message that is not the method's JSON, or more than one message to a server-streaming
// method ends the call with INVALID_ARGUMENT (4003).
//
// Thread-safety: a call and its transport run on their connection's event loop; not
// thread-safe.
//
// Example (the HTTP/1.1 connection, see http1_connection.h):
//   auto transport = std::make_shared<BeastWebSocket<Stream>>(stream, request, options, ...);
//   auto call = std::make_shared<WebSocketCall>(env, table, executor, upstreams, transport);
//   call->Start(std::move(http_request));  // answers the upgrade or refuses it

#ifndef GATEWAY_HTTP_WEBSOCKET_CALL_H_
#define GATEWAY_HTTP_WEBSOCKET_CALL_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/buffer.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"
#include "gateway/http/call.h"
#include "gateway/interceptor.h"
#include "gateway/route_table.h"
#include "gateway/upstream/backend_call.h"
#include "gateway/upstream/worker_upstreams.h"
#include "transcoder/transcoder.h"

namespace gateway::http {

// --- Pure pieces (no I/O) ---

// True when an Upgrade header's value lists "websocket" (case-insensitive).
bool UpgradesToWebSocket(absl::string_view upgrade_header);

// True when `request` asks for a WebSocket upgrade (an "Upgrade: websocket" header).
bool IsWebSocketUpgrade(const HttpRequest& request);

// Checks the handshake fields of an upgrade request (RFC 6455 4.2.1): method GET,
// "Connection" listing "upgrade", "Sec-WebSocket-Key" the base64 of 16 bytes,
// "Sec-WebSocket-Version: 13". Returns OK or INVALID_ARGUMENT naming the field that is wrong;
// *version_mismatch is set when only the version is wrong (answered 426 with
// Sec-WebSocket-Version: 13).
absl::Status CheckUpgradeRequest(const HttpRequest& request, bool* version_mismatch);

// Checks the handshake fields of an extended CONNECT (RFC 8441 4, 5): method CONNECT over
// HTTP/2 (the session has checked ":protocol: websocket"), "sec-websocket-version: 13"; no
// key (HTTP/2 has none). Returns OK or INVALID_ARGUMENT naming what is wrong;
// *version_mismatch as for CheckUpgradeRequest.
absl::Status CheckExtendedConnect(const HttpRequest& request, bool* version_mismatch);

// The close frame code for a call that ended with `code`: 1000 for OK, 4000 + the code for
// every other gRPC code (4001 CANCELLED ... 4016 UNAUTHENTICATED).
uint16_t CloseCodeForStatus(absl::StatusCode code);

// The close frame reason for a gRPC status message: at most 123 bytes (the room a close
// frame leaves), cut at a UTF-8 character boundary, invalid UTF-8 bytes replaced by '?'.
std::string CloseReason(absl::string_view message);

// True when `origin` (an Origin header, "scheme://host[:port]") names the same host and port
// as the request's `host` header (case-insensitive): the check used without a CORS policy.
bool SameOrigin(absl::string_view origin, absl::string_view host);

// --- The WebSocket as the call sees it ---

// One upgraded (or about to be upgraded) client connection. At most one Read and one Write
// at a time, concurrently; Close after the last Write completed. Callbacks run on the
// connection's event loop, never inside the method that was given them.
class WebSocketTransport {
 public:
  using ReadCallback = std::function<void(absl::Status, bool text, std::string payload)>;

  virtual ~WebSocketTransport() = default;

  // Refuses the upgrade: an HTTP response with `status`, then the connection closes.
  virtual void Refuse(int status, HeaderList headers, std::string body) = 0;
  // Answers 101 Switching Protocols (with `headers` added); `done(true)` once written,
  // `done(false)` when the handshake failed (the connection closes).
  virtual void Accept(HeaderList headers, std::function<void(bool)> done) = 0;
  // Reads the next whole message: (OK, text?, payload), or an error when the client closed
  // the WebSocket (UNAVAILABLE "closed by the client ...") or broke the protocol or a limit
  // (UNAVAILABLE naming it; the transport answered with its close frame).
  virtual void Read(ReadCallback done) = 0;
  // Writes one text message; done(false) when the connection is gone.
  virtual void Write(std::string text, std::function<void(bool)> done) = 0;
  // Sends a close frame with `code` and `reason` (at most 123 bytes), waits (bounded) for
  // the client's, and closes the connection.
  virtual void Close(uint16_t code, std::string reason) = 0;
};

// The WebSocketTransport of an HTTP/1.1 connection, on Beast's websocket::stream over the
// connection's own stream (`Stream`: beast::tcp_stream or ssl_stream of one; for HTTP/2,
// the Http2WebSocketStream of the CONNECT stream, with the upgrade request it synthesizes),
// which must outlive it: the transport holds `owner` (the connection) until it is
// destroyed. `refuse` and `closed` run once the transport is done with the stream
// (`refuse`: answer this HTTP error and close; `closed`: close).
template <typename Stream>
class BeastWebSocket final : public WebSocketTransport,
                             public std::enable_shared_from_this<BeastWebSocket<Stream>> {
 public:
  struct Options {
    std::size_t max_message_bytes = 4 << 20;
    std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(30);
    // No frame at all (pings included) for this long closes the WebSocket; a ping is sent
    // after half of it.
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(60);
  };

  BeastWebSocket(Stream& stream,
                 boost::beast::http::request<boost::beast::http::string_body> request,
                 Options options, std::shared_ptr<void> owner,
                 std::function<void(int, HeaderList, std::string)> refuse,
                 std::function<void()> closed)
      : owner_(std::move(owner)),
        ws_(stream),
        request_(std::move(request)),
        options_(options),
        refuse_(std::move(refuse)),
        closed_(std::move(closed)) {}

  void Refuse(int status, HeaderList headers, std::string body) override {
    auto refuse = std::move(refuse_);
    closed_ = nullptr;
    if (refuse) refuse(status, std::move(headers), std::move(body));
  }

  void Accept(HeaderList headers, std::function<void(bool)> done) override {
    namespace websocket = boost::beast::websocket;
    refuse_ = nullptr;
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = options_.handshake_timeout;
    timeout.idle_timeout = options_.idle_timeout;
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.set_option(websocket::stream_base::decorator(
        [headers = std::move(headers)](websocket::response_type& response) {
          response.set(boost::beast::http::field::server, "gatewayd");
          for (const auto& [name, value] : headers) {
            response.set(boost::beast::string_view(name.data(), name.size()),
                         boost::beast::string_view(value.data(), value.size()));
          }
        }));
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.async_accept(request_, [self = this->shared_from_this(),
                                done = std::move(done)](boost::beast::error_code ec) {
      if (ec) self->Closed();
      done(!ec);
    });
  }

  void Read(ReadCallback done) override {
    ws_.async_read(buffer_, [self = this->shared_from_this(), done = std::move(done)](
                                boost::beast::error_code ec, std::size_t) {
      if (ec) {
        done(ReadError(self->ws_, ec), false, std::string());
        // The WebSocket is over (closed by the client, or failed); during Close() the
        // close operation ends it.
        if (!self->closing_) self->Closed();
        return;
      }
      std::string payload = boost::beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      done(absl::OkStatus(), self->ws_.got_text(), std::move(payload));
    });
  }

  void Write(std::string text, std::function<void(bool)> done) override {
    out_ = std::move(text);
    ws_.text(true);
    ws_.async_write(boost::asio::buffer(out_),
                    [self = this->shared_from_this(), done = std::move(done)](
                        boost::beast::error_code ec, std::size_t) {
                      done(!ec);
                      if (ec && !self->closing_) self->Closed();
                    });
  }

  void Close(uint16_t code, std::string reason) override {
    closing_ = true;
    // (static_string's assign(const char*, size) leaves it empty in Boost 1.74: construct.)
    const boost::beast::websocket::close_reason why(
        static_cast<boost::beast::websocket::close_code>(code),
        boost::beast::string_view(reason.data(), std::min<std::size_t>(reason.size(), 123)));
    ws_.async_close(why, [self = this->shared_from_this()](boost::beast::error_code) {
      self->Closed();
    });
  }

 private:
  static absl::Status ReadError(
      const boost::beast::websocket::stream<Stream&>& ws, boost::beast::error_code ec) {
    namespace websocket = boost::beast::websocket;
    if (ec == websocket::error::closed) {
      return absl::UnavailableError(absl::StrCat("closed by the client (code ",
                                                 ws.reason().code, ")"));
    }
    if (ec == websocket::error::message_too_big) {
      return absl::ResourceExhaustedError("WebSocket message larger than the limit");
    }
    return absl::UnavailableError(absl::StrCat("WebSocket read failed: ", ec.message()));
  }

  void Closed() {
    auto closed = std::move(closed_);
    closed_ = nullptr;
    if (closed) closed();
  }

  const std::shared_ptr<void> owner_;  // declared first: destroyed after ws_
  boost::beast::websocket::stream<Stream&> ws_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  const Options options_;
  std::function<void(int, HeaderList, std::string)> refuse_;
  std::function<void()> closed_;
  boost::beast::flat_buffer buffer_;
  std::string out_;
  bool closing_ = false;  // Close() was called
};

// --- The call ---

// One WebSocket call: checks the upgrade request, runs the interceptors, answers the
// upgrade, relays the messages both ways through an upstream::BackendCall, ends with the
// status. Holds itself (through its backend call and transport callbacks) until the end.
class WebSocketCall : public std::enable_shared_from_this<WebSocketCall> {
 public:
  WebSocketCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
                boost::asio::io_context::executor_type executor,
                upstream::WorkerUpstreams* upstreams,
                std::shared_ptr<WebSocketTransport> transport);
  ~WebSocketCall();

  // Serves the upgrade request `request` (its body empty).
  void Start(HttpRequest request);

  // The connection went away (or the server aborts it): cancels the backend call; the
  // transport is not used any more.
  void Cancel();

 private:
  void Refuse(int http_status, const absl::Status& status, HeaderList headers = {});
  void OnIntercepted(absl::Status status);
  void Accept();
  void StartBackend();
  void ReadNext();
  void OnFrame(absl::Status status, bool text, std::string payload);
  void OnBackendMessage(std::string message);
  void OnBackendDone(const upstream::CallResult& result);
  // Ends the call with `status` (the client's fault or the gateway's), in place of what the
  // backend would have said: cancels the backend call.
  void Fail(absl::Status status);
  void MaybeClose();
  void Finish();
  void LogAccess(int status, absl::Time now);

  const CallEnv* const env_;
  const std::shared_ptr<const RouteTable> table_;
  const boost::asio::io_context::executor_type executor_;
  upstream::WorkerUpstreams* const upstreams_;
  std::shared_ptr<WebSocketTransport> transport_;

  HttpRequest request_;
  absl::Time arrival_;
  const Route* route_ = nullptr;
  transcoder::RouteMatch match_;
  std::string stream_common_;  // the path and query fields, appended to every message
  absl::Time client_deadline_ = absl::InfiniteFuture();
  absl::Time deadline_ = absl::InfiniteFuture();
  HeaderList metadata_;
  std::string request_id_;
  bool request_id_generated_ = false;
  std::unique_ptr<CallContext> call_ctx_;

  std::shared_ptr<upstream::BackendCall> backend_;
  bool extended_connect_ = false;  // RFC 8441 (HTTP/2), not an HTTP/1.1 upgrade
  bool accepted_ = false;
  bool cancelled_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool writes_done_ = false;   // the request stream ended (WritesDone sent)
  bool backend_done_ = false;
  bool closing_ = false;
  bool client_gone_ = false;
  bool finished_ = false;
  std::size_t messages_in_ = 0;
  absl::Status failure_;  // OK: none
  absl::Status status_;   // the call's end
  std::string status_details_;
  int http_status_ = 0;   // 101 (HTTP/2: 200) once upgraded; the refusal's status otherwise
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  std::string upstream_;  // the backend endpoint of the last attempt
  uint32_t attempts_ = 0;
  absl::Time first_byte_ = absl::InfinitePast();
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_WEBSOCKET_CALL_H_
