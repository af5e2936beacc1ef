#include "gateway/upstream/http2_connection.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gateway::upstream {

namespace {
thread_local int after_read_depth = 0;
thread_local std::vector<std::function<void()>> after_read_queue;
}  // namespace

bool AfterUpstreamRead::Active() { return after_read_depth > 0; }

void AfterUpstreamRead::Defer(std::function<void()> fn) {
  after_read_queue.push_back(std::move(fn));
}

AfterUpstreamRead::Scope::Scope() { ++after_read_depth; }

AfterUpstreamRead::Scope::~Scope() {
  if (after_read_depth == 1) {
    // What runs here may defer more: taken until none is left.
    for (size_t i = 0; i < after_read_queue.size(); ++i) {
      std::function<void()> fn = std::move(after_read_queue[i]);
      fn();
    }
    after_read_queue.clear();
  }
  --after_read_depth;
}

namespace asio = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::max(d, absl::ZeroDuration()));
}

nghttp2_nv MakeNv(absl::string_view name, absl::string_view value,
                  uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = flags;
  return nv;
}

bool HasUpperCase(absl::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

absl::Status UnavailableFor(const Endpoint& e, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("upstream ", e.ToString(), ": ", what));
}

}  // namespace

bool UniquePerCall(absl::string_view name) {
  return name == "x-request-id" || name == "traceparent" || name == "tracestate" ||
         name == "grpc-timeout";
}

Endpoint Endpoint::Tcp(std::string host, uint16_t port) {
  Endpoint e;
  e.authority = absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host,
                             ":", port);
  e.host = std::move(host);
  e.port = port;
  return e;
}

Endpoint Endpoint::Unix(std::string path) {
  Endpoint e;
  e.unix_path = std::move(path);
  e.authority = "localhost";
  return e;
}

std::string Endpoint::ToString() const {
  if (!unix_path.empty()) return absl::StrCat("unix:", unix_path);
  return authority;
}

// The byte stream under the HTTP/2 session: TCP or a unix socket, plain or with TLS.
class Http2Connection::Transport {
 public:
  virtual ~Transport() = default;
  // Connects (and for TLS completes the handshake); `done` gets OK or what failed, without
  // the endpoint's name.
  virtual void Connect(std::function<void(absl::Status)> done) = 0;
  virtual void ReadSome(asio::mutable_buffer buf,
                        std::function<void(boost::system::error_code, size_t)> done) = 0;
  virtual void Write(asio::const_buffer buf,
                     std::function<void(boost::system::error_code, size_t)> done) = 0;
  // Writes what the socket takes now without waiting (0 when it takes nothing, or fails:
  // Write reports the error then); a transport that cannot (TLS) writes nothing here.
  virtual size_t WriteNow(asio::const_buffer buf) { return 0; }
  virtual void Close() = 0;
};

namespace {
// Small HTTP/2 frames (a request's HEADERS, then its DATA) must not wait for Nagle's
// algorithm: with the peer's delayed ACK that costs 40 ms per call.
void NoDelay(asio::basic_socket<asio::ip::tcp>& socket) {
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
}
void NoDelay(asio::local::stream_protocol::socket&) {}

template <typename Socket, typename EndpointT>
class BasicTransport final : public Http2Connection::Transport {
 public:
  BasicTransport(asio::io_context& io, EndpointT ep) : socket_(io), ep_(std::move(ep)) {}
  void Connect(std::function<void(absl::Status)> done) override {
    socket_.async_connect(ep_, [this, done = std::move(done)](boost::system::error_code ec) {
      if (!ec) NoDelay(socket_);
      done(ec ? absl::UnavailableError(absl::StrCat("connect failed: ", ec.message()))
              : absl::OkStatus());
    });
  }
  void ReadSome(asio::mutable_buffer buf,
                std::function<void(boost::system::error_code, size_t)> done) override {
    socket_.async_read_some(buf, std::move(done));
  }
  void Write(asio::const_buffer buf,
             std::function<void(boost::system::error_code, size_t)> done) override {
    asio::async_write(socket_, buf, std::move(done));
  }
  size_t WriteNow(asio::const_buffer buf) override { return WriteAvailable(socket_, buf); }
  void Close() override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  Socket& socket() { return socket_; }

 private:
  Socket socket_;
  EndpointT ep_;
};
// The text of OpenSSL's most recent error on this thread (cleared), or `fallback`.
std::string OpenSslError(absl::string_view fallback) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return std::string(fallback);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// The host part of an authority ("host:port", "[v6]:port", "host").
std::string AuthorityHost(absl::string_view authority) {
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close != absl::string_view::npos) return std::string(authority.substr(1, close - 1));
  }
  const size_t colon = authority.rfind(':');
  if (colon != absl::string_view::npos && authority.find(':') == colon) {
    return std::string(authority.substr(0, colon));
  }
  return std::string(authority);
}

// TLS over TCP: verifies the backend's certificate against `server_name` (a DNS name, or an
// IP address checked against the certificate's IP subjectAltNames), offers only ALPN "h2"
// and refuses a backend that does not select it.
class TlsTransport final : public Http2Connection::Transport {
 public:
  // Builds the TLS context: INVALID_ARGUMENT naming the option that holds bad PEM.
  static absl::StatusOr<std::unique_ptr<TlsTransport>> Create(asio::io_context& io,
                                                              asio::ip::tcp::endpoint ep,
                                                              const ClientTlsOptions& options,
                                                              std::string server_name) {
    if (server_name.empty()) {
      // OpenSSL would check no name at all: any certificate of the CA would do.
      return absl::InvalidArgumentError(
          "no name to check the backend's certificate against (tls.server_name and the "
          "endpoint's authority are empty)");
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (!options.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(options.ca_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tls.ca_pem holds no valid PEM certificate: ", OpenSslError(ec.message())));
      }
    } else {
      ctx.set_default_verify_paths(ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the system's default CA certificates cannot be loaded: ", ec.message()));
      }
    }
    if (options.cert_chain_pem.empty() != options.private_key_pem.empty()) {
      return absl::InvalidArgumentError(
          "tls.cert_chain_pem and tls.private_key_pem must be given together");
    }
    if (!options.cert_chain_pem.empty()) {
      ctx.use_certificate_chain(asio::buffer(options.cert_chain_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tls.cert_chain_pem is not a valid PEM certificate chain: ",
            OpenSslError(ec.message())));
      }
      ctx.use_private_key(asio::buffer(options.private_key_pem), asio::ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tls.private_key_pem is not a valid PEM private key (or does not match the "
            "certificate): ",
            OpenSslError(ec.message())));
      }
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return std::unique_ptr<TlsTransport>(
        new TlsTransport(io, std::move(ctx), std::move(ep), std::move(server_name)));
  }

  void Connect(std::function<void(absl::Status)> done) override {
    SSL* ssl = stream_.native_handle();
    boost::system::error_code ec;
    asio::ip::make_address(server_name_, ec);
    if (!ec) {
      // An IP address: no SNI (RFC 6066), checked against the IP subjectAltNames.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name_.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, server_name_.c_str());
      SSL_set1_host(ssl, server_name_.c_str());
    }
    static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn));
    stream_.lowest_layer().async_connect(
        ep_, [this, done = std::move(done)](boost::system::error_code ec) mutable {
          if (ec) {
            done(absl::UnavailableError(absl::StrCat("connect failed: ", ec.message())));
            return;
          }
          NoDelay(stream_.lowest_layer());
          stream_.async_handshake(
              asio::ssl::stream_base::client,
              [this, done = std::move(done)](boost::system::error_code ec) {
                done(HandshakeResult(ec));
              });
        });
  }
  void ReadSome(asio::mutable_buffer buf,
                std::function<void(boost::system::error_code, size_t)> done) override {
    stream_.async_read_some(buf, std::move(done));
  }
  void Write(asio::const_buffer buf,
             std::function<void(boost::system::error_code, size_t)> done) override {
    asio::async_write(stream_, buf, std::move(done));
  }
  void Close() override {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

 private:
  TlsTransport(asio::io_context& io, asio::ssl::context ctx, asio::ip::tcp::endpoint ep,
               std::string server_name)
      : ctx_(std::move(ctx)), stream_(io, ctx_), ep_(std::move(ep)),
        server_name_(std::move(server_name)) {}

  absl::Status HandshakeResult(boost::system::error_code ec) {
    SSL* ssl = stream_.native_handle();
    if (ec) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        return absl::UnavailableError(absl::StrCat(
            "TLS handshake failed: the backend's certificate was not accepted for '",
            server_name_, "': ", X509_verify_cert_error_string(verify)));
      }
      return absl::UnavailableError(
          absl::StrCat("TLS handshake failed: ", OpenSslError(ec.message())));
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    const absl::string_view selected(reinterpret_cast<const char*>(alpn), alpn_len);
    if (selected != "h2") {
      return absl::UnavailableError(absl::StrCat(
          "the backend did not negotiate HTTP/2 over TLS (ALPN offered \"h2\", ",
          selected.empty() ? std::string("none selected")
                           : absl::StrCat("selected \"", absl::CHexEscape(selected), "\""),
          ")"));
    }
    return absl::OkStatus();
  }

  asio::ssl::context ctx_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  asio::ip::tcp::endpoint ep_;
  std::string server_name_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Http2Connection

std::shared_ptr<Http2Connection> Http2Connection::Create(asio::io_context& io, Endpoint endpoint,
                                                         ConnectionOptions options) {
  return std::shared_ptr<Http2Connection>(
      new Http2Connection(io, std::move(endpoint), std::move(options)));
}

Http2Connection::Http2Connection(asio::io_context& io, Endpoint endpoint,
                                 ConnectionOptions options)
    : io_(io),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      connect_timer_(io),
      keepalive_timer_(io),
      deadline_timer_(io),
      read_buffer_(16 << 10) {}

Http2Connection::~Http2Connection() {
  if (transport_) transport_->Close();
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void Http2Connection::InitSession() {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_peer_max_concurrent_streams(option, 100);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(options_.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(std::min<size_t>(options_.max_header_list_bytes, UINT32_MAX))},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        options_.connection_window);
}

void Http2Connection::Connect(std::function<void(absl::Status)> done) {
  if (done) {
    if (state_ == State::kReady || state_ == State::kDraining) {
      asio::post(io_, [done = std::move(done)] { done(absl::OkStatus()); });
      return;
    }
    if (state_ == State::kClosed) {
      asio::post(io_, [done = std::move(done), s = close_reason_] { done(s); });
      return;
    }
    connect_waiters_.push_back(std::move(done));
  }
  if (state_ != State::kIdle) return;
  state_ = State::kConnecting;
  InitSession();
  if (!endpoint_.unix_path.empty() && options_.tls.enabled) {
    Fail(UnavailableFor(endpoint_, "TLS over a unix socket is not supported"));
    return;
  }
  if (!endpoint_.unix_path.empty()) {
    transport_ = std::make_unique<BasicTransport<asio::local::stream_protocol::socket,
                                                 asio::local::stream_protocol::endpoint>>(
        io_, asio::local::stream_protocol::endpoint(endpoint_.unix_path));
  } else {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(endpoint_.host, ec);
    if (ec) {
      Fail(UnavailableFor(endpoint_, absl::StrCat("'", endpoint_.host,
                                                  "' is not an IP address")));
      return;
    }
    const asio::ip::tcp::endpoint tcp_ep(addr, endpoint_.port);
    if (options_.tls.enabled) {
      auto tls = TlsTransport::Create(
          io_, tcp_ep, options_.tls,
          options_.tls.server_name.empty() ? AuthorityHost(endpoint_.authority)
                                           : options_.tls.server_name);
      if (!tls.ok()) {
        Fail(UnavailableFor(endpoint_, absl::StrCat("TLS setup: ", tls.status().message())));
        return;
      }
      transport_ = *std::move(tls);
    } else {
      transport_ =
          std::make_unique<BasicTransport<asio::ip::tcp::socket, asio::ip::tcp::endpoint>>(
              io_, tcp_ep);
    }
  }
  connect_timer_.expires_after(ToChrono(options_.connect_timeout));
  connect_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->state_ != State::kConnecting) return;
    self->Fail(UnavailableFor(self->endpoint_,
                              absl::StrCat("connect timed out after ",
                                           absl::FormatDuration(self->options_.connect_timeout))));
  });
  transport_->Connect([self = shared_from_this()](absl::Status status) {
    if (self->state_ != State::kConnecting) return;
    if (!status.ok()) {
      self->Fail(UnavailableFor(self->endpoint_, status.message()));
      return;
    }
    self->OnConnected();
  });
}

void Http2Connection::OnConnected() {
  socket_connected_ = true;
  DoRead();
  Flush();
}

void Http2Connection::FinishConnect(absl::Status status) {
  connect_timer_.cancel();
  auto waiters = std::move(connect_waiters_);
  connect_waiters_.clear();
  for (auto& w : waiters) w(status);
}

bool Http2Connection::CanTakeStream() const {
  if (state_ == State::kDraining || state_ == State::kClosed) return false;
  return streams_.size() < peer_max_concurrent_streams();
}

uint32_t Http2Connection::peer_max_concurrent_streams() const {
  if (session_ == nullptr) return 100;
  return nghttp2_session_get_remote_settings(session_,
                                             NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

void Http2Connection::Fail(absl::Status status) {
  if (state_ == State::kClosed) return;
  const bool connecting = state_ == State::kConnecting || state_ == State::kIdle;
  const bool before_settings = !peer_settings_seen_;
  state_ = State::kClosed;
  close_reason_ = status;
  connect_timer_.cancel();
  keepalive_timer_.cancel();
  deadline_timer_.cancel();
  deadline_armed_.reset();
  if (transport_) transport_->Close();
  if (connecting) FinishConnect(status);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) {
    // Nothing reached a backend that never completed the HTTP/2 handshake.
    stream->EndLocally(status, before_settings || stream->unprocessed_, 0);
  }
}

void Http2Connection::Close() {
  if (state_ == State::kClosed) return;
  if (session_ != nullptr && state_ != State::kIdle) {
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    // Best effort: the GOAWAY goes out if the socket takes it now.
    Flush();
  }
  Fail(absl::CancelledError(absl::StrCat("upstream ", endpoint_.ToString(),
                                         ": connection closed by the gateway")));
}

void Http2Connection::DoRead() {
  transport_->ReadSome(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        const AfterUpstreamRead::Scope after_read;
        if (self->state_ == State::kClosed) return;
        if (ec) {
          self->Fail(UnavailableFor(self->endpoint_,
                                    ec == asio::error::eof
                                        ? std::string("the backend closed the connection")
                                        : absl::StrCat("read failed: ", ec.message())));
          return;
        }
        self->in_recv_ = true;
        const ssize_t rv = nghttp2_session_mem_recv(self->session_, self->read_buffer_.data(), n);
        self->in_recv_ = false;
        self->PumpReady();
        if (self->state_ == State::kClosed) return;
        // The first frame of an HTTP/2 server is SETTINGS; anything else is not HTTP/2.
        auto not_http2 = [&] {
          return UnavailableFor(
              self->endpoint_,
              absl::StrCat("the backend does not speak HTTP/2 (it answered '",
                           absl::CHexEscape(absl::string_view(
                               reinterpret_cast<const char*>(self->read_buffer_.data()),
                               std::min<size_t>(n, 24))),
                           "' instead of a SETTINGS frame)"));
        };
        if (rv < 0 && !self->peer_settings_seen_) {
          self->Fail(not_http2());
          return;
        }
        if (rv < 0) {
          self->Fail(UnavailableFor(self->endpoint_,
                                    absl::StrCat("HTTP/2 protocol error from the backend: ",
                                                 nghttp2_strerror(static_cast<int>(rv)))));
          return;
        }
        self->Flush();
        if (self->state_ == State::kClosed) return;
        if (!nghttp2_session_want_read(self->session_) &&
            !nghttp2_session_want_write(self->session_)) {
          self->Fail(self->peer_settings_seen_
                         ? UnavailableFor(self->endpoint_, "the HTTP/2 session ended")
                         : not_http2());
          return;
        }
        self->DoRead();
      });
}

void Http2Connection::PumpReady() {
  while (!ready_.empty()) {
    std::vector<std::shared_ptr<GrpcStream>> ready = std::move(ready_);
    ready_.clear();
    for (const std::shared_ptr<GrpcStream>& stream : ready) {
      stream->pump_scheduled_ = false;
      stream->Pump();
    }
  }
}

void Http2Connection::FlushSoon() {
  // Inside nghttp2_session_mem_recv, DoRead flushes when it returns.
  if (flush_posted_ || in_recv_) return;
  flush_posted_ = true;
  boost::asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->Flush();
  });
}

void Http2Connection::Flush() {
  // Inside nghttp2_session_mem_recv (its callbacks) nothing is sent: DoRead flushes after.
  if (writing_ || in_recv_ || session_ == nullptr || transport_ == nullptr) return;
  if (state_ == State::kClosed || state_ == State::kIdle) return;
  // Before the socket is connected nothing can be written; OnConnected flushes.
  if (state_ == State::kConnecting && !socket_connected_) return;
  size_t written = 0;
  while (true) {
    write_buffer_.clear();
    while (write_buffer_.size() < (64 << 10)) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Fail(UnavailableFor(endpoint_, absl::StrCat("HTTP/2 send failed: ",
                                                    nghttp2_strerror(static_cast<int>(n)))));
        return;
      }
      if (n == 0) break;
      write_buffer_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (write_buffer_.empty()) return;
    // What the socket takes at once needs no trip through the event loop; the rest (or
    // an error, reported by the asynchronous write) waits for it.
    written = transport_->WriteNow(asio::buffer(write_buffer_));
    if (written < write_buffer_.size()) break;
  }
  writing_ = true;
  transport_->Write(asio::buffer(write_buffer_) + written,
                    [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      self->writing_ = false;
                      if (self->state_ == State::kClosed) return;
                      if (ec) {
                        self->Fail(UnavailableFor(self->endpoint_,
                                                  absl::StrCat("write failed: ", ec.message())));
                        return;
                      }
                      self->Flush();
                    });
}

void Http2Connection::ArmKeepalive() {
  if (options_.keepalive_interval <= absl::ZeroDuration()) return;
  keepalive_timer_.expires_after(ToChrono(ping_outstanding_ ? options_.keepalive_timeout
                                                            : options_.keepalive_interval));
  keepalive_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->state_ == State::kClosed) return;
    if (self->ping_outstanding_) {
      self->Fail(UnavailableFor(
          self->endpoint_, absl::StrCat("keepalive PING not answered within ",
                                        absl::FormatDuration(self->options_.keepalive_timeout))));
      return;
    }
    self->ping_outstanding_ = true;
    nghttp2_submit_ping(self->session_, NGHTTP2_FLAG_NONE, nullptr);
    self->Flush();
    self->ArmKeepalive();
  });
}

absl::StatusOr<std::shared_ptr<GrpcStream>> Http2Connection::StartStream(
    CallSpec spec, GrpcStreamCallbacks callbacks) {
  if (state_ == State::kDraining || state_ == State::kClosed) {
    return UnavailableFor(endpoint_, state_ == State::kDraining
                                         ? "the connection is draining (GOAWAY received)"
                                         : "the connection is closed");
  }
  for (const auto& [name, value] : spec.metadata) {
    if (name.empty() || name[0] == ':' ||
        !nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(name.data()),
                                   name.size()) ||
        HasUpperCase(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata name '", absl::CHexEscape(name), "' is not a valid header name"));
    }
    if (!nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(value.data()),
                                    value.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata '", name, "' has a value that is not a valid header value"));
    }
  }
  if (spec.path.empty() || spec.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("call path '", absl::CHexEscape(spec.path), "' does not start with '/'"));
  }
  if (state_ == State::kIdle) Connect();
  if (state_ == State::kClosed) return close_reason_;

  auto stream = std::shared_ptr<GrpcStream>(
      new GrpcStream(shared_from_this(), std::move(spec), std::move(callbacks)));
  GrpcStream& s = *stream;

  if (s.spec_.deadline != absl::InfiniteFuture()) {
    auto t = EncodeGrpcTimeout(s.spec_.deadline - options_.now());
    if (!t.ok()) {
      s.EndLocally(t.status(), /*unprocessed=*/false, 0);
      return stream;
    }
    s.timeout_ = *std::move(t);
  }
  // nghttp2 encodes the header block when the frame goes out (Flush), not here. Every name
  // and value below outlives that: literals, the connection's own members, and the
  // stream's (which the connection holds until the stream closes); so nothing is copied.
  constexpr uint8_t kNoCopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  std::vector<nghttp2_nv> nva;
  nva.reserve(8 + s.spec_.metadata.size());
  nva.push_back(MakeNv(":method", "POST", kNoCopy));
  nva.push_back(MakeNv(":scheme", options_.tls.enabled ? "https" : "http", kNoCopy));
  nva.push_back(MakeNv(":path", s.spec_.path, kNoCopy));
  nva.push_back(MakeNv(":authority", endpoint_.authority, kNoCopy));
  nva.push_back(MakeNv("content-type", "application/grpc", kNoCopy));
  nva.push_back(MakeNv("te", "trailers", kNoCopy));
  if (!options_.user_agent.empty()) {
    nva.push_back(MakeNv("user-agent", options_.user_agent, kNoCopy));
  }
  if (!s.timeout_.empty()) {
    nva.push_back(MakeNv("grpc-timeout", s.timeout_, kNoCopy | NGHTTP2_NV_FLAG_NO_INDEX));
  }
  if (!s.spec_.encoding.empty()) {
    nva.push_back(MakeNv("grpc-encoding", s.spec_.encoding, kNoCopy));
  }
  if (!s.spec_.accept_encoding.empty()) {
    nva.push_back(MakeNv("grpc-accept-encoding", s.spec_.accept_encoding, kNoCopy));
  }
  for (const auto& [name, value] : s.spec_.metadata) {
    nva.push_back(MakeNv(name, value,
                         kNoCopy | (UniquePerCall(name) ? NGHTTP2_NV_FLAG_NO_INDEX : 0)));
  }

  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = &GrpcStream::ReadRequestData;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &provider, &s);
  if (id < 0) {
    return UnavailableFor(endpoint_, absl::StrCat("cannot start a stream: ",
                                                  nghttp2_strerror(id)));
  }
  s.stream_id_ = id;
  streams_[id] = stream;
  WatchDeadline(s.spec_.deadline);
  FlushSoon();
  return stream;
}

void Http2Connection::WatchDeadline(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture() || state_ == State::kClosed) return;
  if (deadline_armed_.has_value() && *deadline_armed_ <= deadline) return;
  deadline_armed_ = deadline;
  deadline_timer_.expires_after(ToChrono(deadline - options_.now()));
  deadline_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;  // moved to an earlier deadline, or closed
    self->OnDeadlineTimer();
  });
}

void Http2Connection::OnDeadlineTimer() {
  deadline_armed_.reset();
  if (state_ == State::kClosed) return;
  const absl::Time now = options_.now();
  absl::Time next = absl::InfiniteFuture();
  std::vector<std::shared_ptr<GrpcStream>> expired;
  for (const auto& [id, stream] : streams_) {
    if (stream->done_ || stream->closed_ || stream->result_.has_value()) continue;
    if (stream->spec_.deadline <= now) {
      expired.push_back(stream);
    } else {
      next = std::min(next, stream->spec_.deadline);
    }
  }
  for (const std::shared_ptr<GrpcStream>& stream : expired) {
    stream->EndLocally(absl::DeadlineExceededError("the call's deadline passed"), false,
                       NGHTTP2_CANCEL);
  }
  WatchDeadline(next);
}

// nghttp2 callbacks ---------------------------------------------------------------------

int Http2Connection::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                 void* user_data) {
  auto* self = static_cast<Http2Connection*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 && !self->peer_settings_seen_) {
        self->peer_settings_seen_ = true;
        if (self->state_ == State::kConnecting) {
          self->state_ = State::kReady;
          self->FinishConnect(absl::OkStatus());
          self->ArmKeepalive();
        }
      }
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
        self->ping_outstanding_ = false;
        self->ArmKeepalive();
      }
      break;
    case NGHTTP2_GOAWAY: {
      if (self->state_ != State::kClosed) self->state_ = State::kDraining;
      const int32_t last = frame->goaway.last_stream_id;
      for (auto& [id, stream] : self->streams_) {
        if (id > last) stream->unprocessed_ = true;
      }
      break;
    }
    case NGHTTP2_HEADERS: {
      auto* stream = static_cast<GrpcStream*>(
          nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (stream != nullptr) {
        stream->OnHeadersEnd((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

int Http2Connection::OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                              const uint8_t* name, size_t namelen, const uint8_t* value,
                              size_t valuelen, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* stream = static_cast<GrpcStream*>(
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (stream != nullptr) {
    stream->OnHeader(absl::string_view(reinterpret_cast<const char*>(name), namelen),
                     absl::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int Http2Connection::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                 const uint8_t* data, size_t len, void* user_data) {
  auto* stream =
      static_cast<GrpcStream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (stream == nullptr) {
    // A stream we gave up on: give the bytes back to the connection window.
    nghttp2_session_consume_connection(session, len);
    return 0;
  }
  stream->OnData(data, len);
  return 0;
}

int Http2Connection::OnStreamClose(nghttp2_session* session, int32_t stream_id,
                                   uint32_t error_code, void* user_data) {
  auto* self = static_cast<Http2Connection*>(user_data);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  std::shared_ptr<GrpcStream> stream = std::move(it->second);
  self->streams_.erase(it);
  nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
  stream->OnClose(error_code);
  return 0;
}

// ---------------------------------------------------------------------------------------
// GrpcStream

GrpcStream::GrpcStream(std::shared_ptr<Http2Connection> conn, CallSpec spec,
                       GrpcStreamCallbacks cb)
    : conn_(std::move(conn)),
      spec_(std::move(spec)),
      cb_(std::move(cb)),
      deframer_(conn_->options_.max_message_size),
      scanner_(conn_->options_.max_message_size) {}

GrpcStream::~GrpcStream() = default;

absl::Status GrpcStream::Write(absl::string_view message) {
  if (writes_done_) return absl::FailedPreconditionError("Write() after WritesDone()");
  if (closed_ || done_) return absl::FailedPreconditionError("Write() after the call ended");
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  }
  if (spec_.framed) {
    out_.append(message.data(), message.size());
  } else {
    AppendGrpcFrame(message, &out_);
  }
  if (data_deferred_ && stream_id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(conn_->session_, stream_id_);
  }
  conn_->FlushSoon();
  return absl::OkStatus();
}

void GrpcStream::WritesDone() {
  if (writes_done_ || closed_ || done_) return;
  writes_done_ = true;
  if (data_deferred_ && stream_id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(conn_->session_, stream_id_);
  }
  conn_->FlushSoon();
}

void GrpcStream::NotifyWhenDrained() {
  if (done_) return;
  if (pending_write_bytes() > 0) {
    notify_drained_ = true;
    return;
  }
  boost::asio::post(conn_->io_, [weak = weak_from_this()] {
    auto st = weak.lock();
    if (st && !st->done_ && st->cb_.on_drained) st->cb_.on_drained();
  });
}

ssize_t GrpcStream::ReadRequestData(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                    uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<GrpcStream*>(source->ptr);
  const size_t n = std::min(length, s->out_.size() - s->out_offset_);
  std::memcpy(buf, s->out_.data() + s->out_offset_, n);
  s->out_offset_ += n;
  if (s->out_offset_ == s->out_.size()) {
    s->out_.clear();
    s->out_offset_ = 0;
    if (s->notify_drained_ && n > 0) {
      s->notify_drained_ = false;
      boost::asio::post(s->conn_->io_, [weak = s->weak_from_this()] {
        auto st = weak.lock();
        if (st && !st->done_ && st->cb_.on_drained) st->cb_.on_drained();
      });
    }
    if (s->writes_done_) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->data_deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

void GrpcStream::OnHeader(absl::string_view name, absl::string_view value) {
  if (result_.has_value()) return;  // ended locally: the rest of the block is ignored
  header_block_bytes_ += name.size() + value.size() + 32;
  const size_t limit = conn_->options_.max_header_list_bytes;
  if (header_block_bytes_ > limit) {
    EndLocally(absl::ResourceExhaustedError(absl::StrCat(
                   "upstream ", conn_->endpoint_.ToString(), ": the response ",
                   headers_seen_ ? "trailers" : "headers", " exceed ", limit,
                   " bytes (max_header_list_bytes) at header '",
                   absl::CHexEscape(name.substr(0, 64)), "'")),
               false, NGHTTP2_CANCEL);
    headers_.clear();
    trailers_.clear();
    return;
  }
  auto& list = headers_seen_ ? trailers_ : headers_;
  if (!headers_seen_ && name == ":status") {
    int code = 0;
    if (absl::SimpleAtoi(value, &code)) http_status_ = code;
    return;
  }
  // A gRPC backend sends a handful of fields in each block: one allocation.
  if (list.empty()) list.reserve(8);
  list.emplace_back(name, value);
}

void GrpcStream::OnHeadersEnd(bool end_stream) {
  header_block_bytes_ = 0;
  if (result_.has_value()) return;
  if (headers_seen_) return;  // trailers: handled at close
  if (http_status_ >= 100 && http_status_ < 200) {
    headers_.clear();  // an informational response; the real one follows
    return;
  }
  headers_seen_ = true;
  if (end_stream) {
    // Trailers-only: the one header block is the trailers.
    trailers_ = std::move(headers_);
    headers_.clear();
    return;
  }
  if (http_status_ == 200 && cb_.on_headers && !done_) cb_.on_headers(std::move(headers_));
}

void GrpcStream::OnData(const uint8_t* data, size_t len) {
  if (done_ || result_.has_value()) {
    // The call already ended locally (the RST_STREAM may not be out yet): nobody reads.
    nghttp2_session_consume(conn_->session_, stream_id_, len);
    return;
  }
  unconsumed_ += len;
  absl::Status s = FeedInput(absl::string_view(reinterpret_cast<const char*>(data), len));
  if (!s.ok()) {
    EndLocally(std::move(s), false, NGHTTP2_CANCEL);
    return;
  }
  ReturnWindow();
  if (HasInput()) SchedulePump();
}

absl::Status GrpcStream::FeedInput(absl::string_view bytes) {
  if (!spec_.framed) return deframer_.Feed(bytes);
  if (absl::Status s = scanner_.Scan(bytes); !s.ok()) return s;
  passthrough_.append(bytes.data(), bytes.size());
  return absl::OkStatus();
}

bool GrpcStream::HasInput() const {
  return spec_.framed ? !passthrough_.empty() : deframer_.HasMessage();
}

std::string GrpcStream::NextInput() {
  if (!spec_.framed) return *deframer_.Next();
  std::string bytes = std::move(passthrough_);
  passthrough_ = std::string();
  return bytes;
}

void GrpcStream::DropInput() {
  passthrough_.clear();
  while (deframer_.Next()) {
  }
}

void GrpcStream::ReturnWindow() {
  // Bytes go back to the windows only while the consumer waits and nothing complete is
  // queued: a consumer that holds a message stops the backend after one window.
  if (unconsumed_ == 0 || closed_ || stream_id_ <= 0) return;
  if (!wants_message_ || HasInput()) return;
  nghttp2_session_consume(conn_->session_, stream_id_, unconsumed_);
  unconsumed_ = 0;
  conn_->FlushSoon();
}

void GrpcStream::RequestNext() {
  if (done_) return;
  wants_message_ = true;
  if (!in_pump_) SchedulePump();  // else the running Pump() delivers the next
}

void GrpcStream::Cancel() {
  if (done_) return;
  if (result_.has_value()) {
    // The call ended (at the backend or locally) but its consumer has not taken every
    // message: those are dropped and the consumer learns that it cancelled.
    if (result_->status.ok()) {
      result_->status = absl::CancelledError("the call was cancelled by the gateway");
    }
    DropInput();
    SchedulePump();
    return;
  }
  EndLocally(absl::CancelledError("the call was cancelled by the gateway"), false,
             NGHTTP2_CANCEL);
}

void GrpcStream::OnClose(uint32_t error_code) {
  closed_ = true;
  // Bytes received but not yet given back stay buffered for the consumer, but the HTTP/2
  // stream is gone: they go back to the connection window now, or every stream that ends
  // with unread data would shrink it for good and finally stall the connection.
  if (unconsumed_ > 0) {
    nghttp2_session_consume_connection(conn_->session_, unconsumed_);
    unconsumed_ = 0;
  }
  if (result_.has_value()) {
    SchedulePump();
    return;
  }
  CallResult r;
  r.unprocessed = unprocessed_;
  if (error_code != NGHTTP2_NO_ERROR) {
    if (error_code == NGHTTP2_REFUSED_STREAM || unprocessed_) {
      r.unprocessed = true;
      r.status = absl::UnavailableError(absl::StrCat(
          "upstream ", conn_->endpoint_.ToString(), ": the backend did not process the call (",
          nghttp2_http2_strerror(error_code), ")"));
    } else if (error_code == NGHTTP2_CANCEL) {
      r.status = absl::CancelledError(
          absl::StrCat("upstream ", conn_->endpoint_.ToString(), ": the backend cancelled the call"));
    } else {
      r.status = absl::InternalError(absl::StrCat("upstream ", conn_->endpoint_.ToString(),
                                                  ": the backend reset the stream (",
                                                  nghttp2_http2_strerror(error_code), ")"));
    }
    result_ = std::move(r);
    SchedulePump();
    return;
  }
  const std::string* grpc_status = nullptr;
  const std::string* grpc_message = nullptr;
  const std::string* details = nullptr;
  for (const auto& [k, v] : trailers_) {
    if (k == "grpc-status") grpc_status = &v;
    if (k == "grpc-message") grpc_message = &v;
    if (k == "grpc-status-details-bin") details = &v;
  }
  int code = -1;
  if (http_status_ != 200 && grpc_status == nullptr) {
    r.status = absl::Status(GrpcCodeForHttpStatus(http_status_),
                            absl::StrCat("upstream ", conn_->endpoint_.ToString(),
                                         ": the backend answered HTTP status ", http_status_));
  } else if (grpc_status == nullptr) {
    r.status = absl::InternalError(absl::StrCat(
        "upstream ", conn_->endpoint_.ToString(), ": the response ended without grpc-status"));
  } else if (!absl::SimpleAtoi(*grpc_status, &code) || code < 0 || code > 16) {
    r.status = absl::InternalError(absl::StrCat("upstream ", conn_->endpoint_.ToString(),
                                                ": invalid grpc-status '",
                                                absl::CHexEscape(*grpc_status), "'"));
  } else {
    absl::Status framing =
        spec_.framed ? scanner_.CheckComplete() : deframer_.CheckComplete();
    if (!framing.ok()) {
      r.status = absl::InternalError(absl::StrCat("upstream ", conn_->endpoint_.ToString(),
                                                  ": ", framing.message()));
    } else {
      r.status = absl::Status(static_cast<absl::StatusCode>(code),
                              grpc_message ? PercentDecodeGrpcMessage(*grpc_message) : "");
      if (details != nullptr) {
        std::string raw;
        if (absl::Base64Unescape(*details, &raw)) r.details_bin = std::move(raw);
      }
    }
  }
  r.trailers = std::move(trailers_);
  result_ = std::move(r);
  SchedulePump();
}

void GrpcStream::EndLocally(absl::Status status, bool unprocessed, uint32_t rst_code) {
  if (result_.has_value() || done_) return;
  CallResult r;
  r.status = std::move(status);
  r.unprocessed = unprocessed;
  result_ = std::move(r);
  if (!closed_ && stream_id_ > 0 && conn_->session_ != nullptr &&
      conn_->state_ != Http2Connection::State::kClosed) {
    // Undelivered bytes go back to the connection window; the stream's no longer matters.
    if (unconsumed_ > 0) nghttp2_session_consume_connection(conn_->session_, unconsumed_);
    unconsumed_ = 0;
    if (rst_code != 0) {
      nghttp2_submit_rst_stream(conn_->session_, NGHTTP2_FLAG_NONE, stream_id_, rst_code);
    }
    conn_->Flush();
  }
  // Messages not yet delivered are dropped: the call has failed.
  DropInput();
  SchedulePump();
}

void GrpcStream::SchedulePump() {
  if (pump_scheduled_ || done_) return;
  pump_scheduled_ = true;
  if (conn_->in_recv_) {
    conn_->ready_.push_back(shared_from_this());
    return;
  }
  asio::post(conn_->io_, [self = shared_from_this()] {
    self->pump_scheduled_ = false;
    self->Pump();
  });
}

void GrpcStream::Pump() {
  if (done_ || in_pump_) return;
  // A consumer that asks for the next message from on_message gets it in this loop, and
  // the call's end after its last message: no trip through the event loop per message.
  in_pump_ = true;
  bool delivered = false;
  while (wants_message_ && HasInput() && !done_) {
    wants_message_ = false;
    delivered = true;
    std::string m = NextInput();
    if (cb_.on_message) {
      cb_.on_message(std::move(m));
    } else {
      wants_message_ = true;  // nobody reads: keep draining
    }
  }
  in_pump_ = false;
  if (done_) return;
  ReturnWindow();
  // The end follows a message in the same run only for a consumer that asked for more:
  // one that is still sending the message on gets it after its RequestNext().
  if (delivered && !wants_message_) return;
  if (result_.has_value() && !HasInput()) {
    done_ = true;
    CallResult r = std::move(*result_);
    auto on_done = std::move(cb_.on_done);
    cb_ = GrpcStreamCallbacks();
    if (on_done) on_done(r);
  }
}

}  // namespace gateway::upstream
