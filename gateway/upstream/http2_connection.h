// An HTTP/2 client connection to one gRPC backend endpoint, and the gRPC calls on it.
//
// Thread model: a connection, and every stream on it, belong to the one thread that runs
// the `asio::io_context` they were created with. Every method must be called on that thread
// and every callback runs on it; nothing here takes a lock or posts to another thread.
// Neither class is thread-safe.
//
// Ownership: callers hold `std::shared_ptr`s. A connection keeps each of its open streams
// alive until the stream ends (its `on_done` ran); a stream keeps its connection alive.
// Dropping every handle of an open stream does not cancel it: call `Cancel()`.
//
//   auto conn = Http2Connection::Create(io, Endpoint::Tcp("127.0.0.1", port), {});
//   conn->Connect([](absl::Status s) { ... });          // optional: streams may start now
//   GrpcStream::Callbacks cb;
//   cb.on_message = [&](std::string m) { Use(m); stream->RequestNext(); };
//   cb.on_done = [&](const CallResult& r) { ... };
//   auto stream = conn->StartStream({"/pkg.Svc/Method", deadline, metadata}, std::move(cb));
//   stream.value()->Write(request_bytes);
//   stream.value()->WritesDone();
//
// Flow control: the connection runs nghttp2 with NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE. A
// stream hands one message to `on_message` and the next only after the consumer called
// `RequestNext()`; received bytes are given back to the HTTP/2 windows only while the
// consumer is waiting for a message, so a slow consumer stops the backend after at most
// one stream window (`ConnectionOptions::stream_window`) of buffered data.
#ifndef GATEWAY_UPSTREAM_HTTP2_CONNECTION_H_
#define GATEWAY_UPSTREAM_HTTP2_CONNECTION_H_

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/upstream/grpc_framing.h"

namespace gateway::upstream {

// A header field whose value differs from call to call (x-request-id, traceparent,
// tracestate, grpc-timeout). HTTP/2 sessions send it as a literal that their HPACK encoder
// does not add to its dynamic table (NGHTTP2_NV_FLAG_NO_INDEX), where it would only push
// out the entries that do repeat (path, authority, content-type, ...) and make them go out
// as literals again.
bool UniquePerCall(absl::string_view name);

// Writes what the plaintext `socket` takes of `buffers` (a const buffer sequence) now,
// without waiting: the bytes written, 0 when it takes nothing or fails (the asynchronous
// write of the rest then reports the error). Both HTTP/2 sessions (this upstream one and
// the front end's) and the HTTP/1.1 connection's whole responses are written this way
// first, so that a write the kernel takes at once costs no handler.
template <typename Socket, typename ConstBuffers>
size_t WriteAvailable(Socket& socket, const ConstBuffers& buffers) {
  boost::system::error_code ec;
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (ec) return 0;
  const size_t n = socket.write_some(buffers, ec);
  return ec ? 0 : n;
}

// Work left by the consumers of an upstream read for the end of its handler. The front
// end's HTTP/2 sessions flush there what the delivered messages and trailers made: in the
// same turn of the loop as a posted flush would, without a handler of its own. At most as
// many writes as posting makes, since each client session writes once either way.
class AfterUpstreamRead {
 public:
  // True inside an upstream read handler on this thread.
  static bool Active();
  // Runs `fn` at the end of that handler (only while Active()).
  static void Defer(std::function<void()> fn);

  // Marks an upstream read handler; the deferred work runs when it ends.
  class Scope {
   public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };
};

// Where a connection goes: a TCP host (IP literal) and port, or a unix socket path.
struct Endpoint {
  std::string host;       // IPv4/IPv6 literal (no resolution here)
  uint16_t port = 0;
  std::string unix_path;  // when set, host/port are ignored
  // The :authority of calls on this endpoint (default "host:port", or "localhost").
  std::string authority;

  static Endpoint Tcp(std::string host, uint16_t port);
  static Endpoint Unix(std::string path);
  std::string ToString() const;
};

// TLS to the endpoint, with ALPN "h2". Certificates are PEM text (the caller reads files).
struct ClientTlsOptions {
  bool enabled = false;
  std::string ca_pem;           // empty: the system's default roots
  std::string cert_chain_pem;   // client certificate for mutual TLS (with private_key_pem)
  std::string private_key_pem;
  // The name sent as SNI and checked against the certificate; empty: the endpoint's
  // authority host.
  std::string server_name;
};

struct ConnectionOptions {
  // TLS (off: h2c with prior knowledge).
  ClientTlsOptions tls;
  // The user-agent header of every call (empty: none).
  std::string user_agent = "gatewayd";
  // TCP connect plus the SETTINGS exchange must finish within this.
  absl::Duration connect_timeout = absl::Seconds(5);
  // A PING every `keepalive_interval` (zero: off); no ACK within `keepalive_timeout`
  // fails the connection and its streams with UNAVAILABLE.
  absl::Duration keepalive_interval = absl::ZeroDuration();
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Our SETTINGS_INITIAL_WINDOW_SIZE (per stream) and the connection-level window.
  // 1 MiB, as the front end grants its clients: a large message crosses in few window
  // round trips, and a call never holds more than this of its response unread.
  int32_t stream_window = 1 << 20;
  int32_t connection_window = 16 << 20;
  // Largest response message accepted; larger ones end the call with RESOURCE_EXHAUSTED.
  size_t max_message_size = 4 << 20;
  // Largest response header block (headers or trailers) accepted, counted as RFC 9113
  // does (name + value + 32 per field) and advertised as SETTINGS_MAX_HEADER_LIST_SIZE.
  // A larger one ends that call with RESOURCE_EXHAUSTED (RST_STREAM CANCEL); the
  // connection stays up. (nghttp2 itself only refuses a single field over 64 KiB, and that
  // fails the whole connection.)
  size_t max_header_list_bytes = 64 << 10;
  // Clock for deadlines (grpc-timeout); tests may inject one.
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// How a gRPC call ended.
struct CallResult {
  // The gRPC status (absl and gRPC codes are numerically the same); the message is
  // grpc-message percent-decoded, or a description of a local or transport failure.
  absl::Status status;
  // The raw bytes of grpc-status-details-bin (base64-decoded), empty if absent.
  std::string details_bin;
  // True when the backend certainly did not process the call (connect failure, refused
  // stream, stream above a GOAWAY's last_stream_id): safe to retry anywhere.
  bool unprocessed = false;
  // Trailing metadata (or the headers of a trailers-only response), as received.
  std::vector<std::pair<std::string, std::string>> trailers;
};

class GrpcStream;

// Parameters of one call.
struct CallSpec {
  std::string path;  // "/package.Service/Method"
  absl::Time deadline = absl::InfiniteFuture();
  // Sent as given after the reserved headers. Invalid names/values (per RFC 9113) make
  // StartStream fail with INVALID_ARGUMENT.
  std::vector<std::pair<std::string, std::string>> metadata;
  // Request and response bytes are gRPC frames as on the wire (5-byte prefixes included,
  // compressed ones (flag 1) too), in pieces of any size: Write() sends its bytes as given,
  // and on_message hands up the response bytes as they arrived (whole frames, parts of one,
  // several), only their prefixes checked (flag, limits.max_message_bytes). For a relay
  // that passes frames through untouched and never holds a whole message.
  bool framed = false;
  // Sent as grpc-encoding and grpc-accept-encoding when not empty (framed calls relaying a
  // client's compressed messages).
  std::string encoding;
  std::string accept_encoding;
};

// What a stream tells its consumer. All optional except on_done.
struct GrpcStreamCallbacks {
  // The response headers, handed over (not called for a trailers-only response).
  std::function<void(std::vector<std::pair<std::string, std::string>>)> on_headers;
  // One response message (prefix removed), or for CallSpec::framed the response bytes
  // received since the last call. The next comes after RequestNext().
  std::function<void(std::string)> on_message;
  // After NotifyWhenDrained(): every queued request byte was taken by HTTP/2 flow control
  // (posted, never called inside a stream method).
  std::function<void()> on_drained;
  // The end of the call, exactly once, after the last on_message. The stream is inert
  // afterwards.
  std::function<void(const CallResult&)> on_done;
};

class Http2Connection : public std::enable_shared_from_this<Http2Connection> {
 public:
  enum class State { kIdle, kConnecting, kReady, kDraining, kClosed };

  static std::shared_ptr<Http2Connection> Create(boost::asio::io_context& io, Endpoint endpoint,
                                                 ConnectionOptions options);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Starts connecting (if idle). `done` (optional) runs once: OK after the peer's SETTINGS
  // arrived, or UNAVAILABLE naming the endpoint and what failed (refused, timed out, the
  // peer does not speak HTTP/2). Streams may be started before it completes.
  void Connect(std::function<void(absl::Status)> done = nullptr);

  // Starts a gRPC call. Returns the stream, or INVALID_ARGUMENT for bad metadata, or
  // UNAVAILABLE when the connection takes no new streams (draining or closed; check
  // CanTakeStream() first). A deadline already past ends the call (on_done posted) with
  // DEADLINE_EXCEEDED. Callbacks run later, never inside StartStream.
  absl::StatusOr<std::shared_ptr<GrpcStream>> StartStream(CallSpec spec,
                                                          GrpcStreamCallbacks callbacks);

  // Whether a new stream may start now without exceeding the peer's
  // SETTINGS_MAX_CONCURRENT_STREAMS (100 assumed until the peer's SETTINGS arrive).
  bool CanTakeStream() const;
  State state() const { return state_; }
  size_t active_streams() const { return streams_.size(); }
  uint32_t peer_max_concurrent_streams() const;
  const Endpoint& endpoint() const { return endpoint_; }
  // Why the connection closed (OK while it has not).
  const absl::Status& close_reason() const { return close_reason_; }

  // The byte stream under the session (defined in the .cc file).
  class Transport;

  // Sends GOAWAY, fails open streams with CANCELLED and closes the socket.
  void Close();

 private:
  friend class GrpcStream;
  Http2Connection(boost::asio::io_context& io, Endpoint endpoint, ConnectionOptions options);

  void InitSession();
  void OnConnected();
  void Fail(absl::Status status);
  // Sends what the session has queued (one write at a time).
  void Flush();
  // Flushes once the handlers already queued on the event loop ran: the frames of every
  // stream started or written meanwhile (a request's HEADERS and DATA; other calls') go
  // out in one write.
  void FlushSoon();
  void DoRead();
  // The streams' deadlines: one timer waits for the earliest and is moved only to an
  // earlier one (a stream that ends leaves it be; when it fires, the streams whose deadline
  // passed end with DEADLINE_EXCEEDED and it waits for the next).
  void WatchDeadline(absl::Time deadline);
  void OnDeadlineTimer();
  // Runs the Pump of the streams that got something while the received bytes were read.
  void PumpReady();
  void ArmKeepalive();
  void FinishConnect(absl::Status status);

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int OnHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int OnStreamClose(nghttp2_session*, int32_t, uint32_t, void*);

  boost::asio::io_context& io_;
  const Endpoint endpoint_;
  const ConnectionOptions options_;
  State state_ = State::kIdle;
  std::unique_ptr<Transport> transport_;
  nghttp2_session* session_ = nullptr;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer keepalive_timer_;
  boost::asio::steady_timer deadline_timer_;
  std::optional<absl::Time> deadline_armed_;  // what deadline_timer_ waits for
  bool ping_outstanding_ = false;
  bool writing_ = false;
  bool flush_posted_ = false;  // FlushSoon's handler is queued
  bool in_recv_ = false;  // inside nghttp2_session_mem_recv
  bool peer_settings_seen_ = false;
  bool socket_connected_ = false;
  std::string write_buffer_;
  std::vector<uint8_t> read_buffer_;
  std::vector<std::function<void(absl::Status)>> connect_waiters_;
  absl::flat_hash_map<int32_t, std::shared_ptr<GrpcStream>> streams_;
  // Streams that got response bytes or their end inside nghttp2_session_mem_recv: pumped
  // when it returns, before the read loop goes on (no trip through the event loop).
  std::vector<std::shared_ptr<GrpcStream>> ready_;
  absl::Status close_reason_;
};

// One gRPC call on an Http2Connection. See the file comment for threading and ownership.
class GrpcStream : public std::enable_shared_from_this<GrpcStream> {
 public:
  ~GrpcStream();
  GrpcStream(const GrpcStream&) = delete;
  GrpcStream& operator=(const GrpcStream&) = delete;

  // Queues one request message (the 5-byte prefix is added here, unless the call is
  // CallSpec::framed: then `message` is the next bytes of the frames). Returns
  // FAILED_PRECONDITION after WritesDone() or once the call ended.
  absl::Status Write(absl::string_view message);
  // Half-closes the request side (END_STREAM after the queued messages).
  void WritesDone();
  // The consumer is ready for the next response message.
  void RequestNext();
  // Runs on_drained once when pending_write_bytes() is (or becomes) zero.
  void NotifyWhenDrained();
  // Ends the call with CANCELLED (RST_STREAM CANCEL to the backend while its stream is
  // open). Messages not yet handed to on_message are dropped, also when the backend had
  // already finished the call. No-op once ended (on_done ran).
  void Cancel();

  int32_t stream_id() const { return stream_id_; }
  bool done() const { return done_; }
  // Request bytes queued but not yet taken by HTTP/2 flow control.
  size_t pending_write_bytes() const { return out_.size() - out_offset_; }

 private:
  friend class Http2Connection;
  GrpcStream(std::shared_ptr<Http2Connection> conn, CallSpec spec, GrpcStreamCallbacks cb);

  static ssize_t ReadRequestData(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                                 nghttp2_data_source*, void*);
  void OnHeader(absl::string_view name, absl::string_view value);
  void OnHeadersEnd(bool end_stream);
  void OnData(const uint8_t* data, size_t len);
  void OnClose(uint32_t error_code);
  void EndLocally(absl::Status status, bool unprocessed, uint32_t rst_code);
  void ReturnWindow();
  void SchedulePump();
  void Pump();

  std::shared_ptr<Http2Connection> conn_;
  CallSpec spec_;
  std::string timeout_;  // the grpc-timeout header sent (nghttp2 refers to it)
  GrpcStreamCallbacks cb_;
  int32_t stream_id_ = -1;
  // Request side.
  std::string out_;
  size_t out_offset_ = 0;
  bool writes_done_ = false;
  bool data_deferred_ = false;
  bool notify_drained_ = false;
  // Response side.
  bool headers_seen_ = false;
  int http_status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<std::pair<std::string, std::string>> trailers_;
  size_t header_block_bytes_ = 0;  // of the header block being received
  // Response bytes: whole messages (deframer_), or for CallSpec::framed the stream's bytes
  // as they arrive, prefixes checked by scanner_, held in passthrough_ until taken.
  absl::Status FeedInput(absl::string_view bytes);
  bool HasInput() const;
  std::string NextInput();  // precondition: HasInput()
  void DropInput();
  GrpcDeframer deframer_;
  GrpcFrameScanner scanner_;
  std::string passthrough_;
  size_t unconsumed_ = 0;
  bool wants_message_ = true;
  bool pump_scheduled_ = false;
  bool in_pump_ = false;      // RequestNext() from on_message: Pump() goes on
  bool closed_ = false;       // the HTTP/2 stream ended
  bool done_ = false;         // on_done ran
  bool unprocessed_ = false;  // marked by GOAWAY
  std::optional<CallResult> result_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_HTTP2_CONNECTION_H_
