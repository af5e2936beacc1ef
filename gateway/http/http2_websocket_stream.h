// A byte stream over one HTTP/2 stream opened by an extended CONNECT (RFC 8441), for Beast's
// websocket::stream: WebSocket over HTTP/2 runs through the same BeastWebSocket transport and
// WebSocketCall (websocket_call.h) as over HTTP/1.1.
//
//   read   the DATA the client sent on the stream, pulled through its BodyReader: the next
//          Read is asked for only once the bytes of the previous one were consumed by the
//          WebSocket layer, so the stream's flow-control window opens only as the call takes
//          the client's frames.
//   write  DATA frames through the stream's CallSink; a write completes once nghttp2 took
//          all of its bytes (flow control paces it).
//
// The handshake: Beast answers the (synthesized, see Http2WebSocketStream::UpgradeRequest)
// HTTP/1.1 upgrade request with a "101 Switching Protocols" head. Its first writes are that
// head; the stream turns it into the HTTP/2 response HEADERS, ":status 200" with the head's
// fields except the HTTP/1.1 handshake ones (upgrade, connection, sec-websocket-accept).
// Beast's teardown (after the close handshake) ends the stream with END_STREAM; its
// close_socket (a timeout, a failed write) resets the stream (RST_STREAM CANCEL) through
// `reset`.
//
// Thread-safety: not thread-safe; every operation and completion runs on `executor` (the
// connection's event loop), completions never inside the call that started them.
//
// Example (the HTTP/2 session, http2_session.cc):
//   auto socket = std::make_shared<Http2WebSocketStream>(executor, stream, stream, reset);
//   auto transport = std::make_shared<BeastWebSocket<Http2WebSocketStream>>(
//       *socket, Http2WebSocketStream::UpgradeRequest(request), options, socket, ...);

#ifndef GATEWAY_HTTP_HTTP2_WEBSOCKET_STREAM_H_
#define GATEWAY_HTTP_HTTP2_WEBSOCKET_STREAM_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "boost/asio/async_result.hpp"
#include "boost/asio/buffer.hpp"
#include "boost/asio/error.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core/bind_handler.hpp"
#include "boost/beast/core/role.hpp"
#include "boost/beast/http.hpp"
#include "gateway/http/call.h"

namespace gateway::http {

class Http2WebSocketStream : public std::enable_shared_from_this<Http2WebSocketStream> {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  // `sink` and `reader` (the HTTP/2 stream) must stay valid until Detach(); `reset` resets
  // the HTTP/2 stream (called at most once, never after Detach()).
  Http2WebSocketStream(executor_type executor, CallSink* sink, BodyReader* reader,
                       std::function<void()> reset)
      : executor_(executor), sink_(sink), reader_(reader), reset_(std::move(reset)) {}

  Http2WebSocketStream(const Http2WebSocketStream&) = delete;
  Http2WebSocketStream& operator=(const Http2WebSocketStream&) = delete;

  // The HTTP/1.1 upgrade request Beast's server handshake expects, for an extended CONNECT
  // to `target` at `authority`. It carries no secret: RFC 8441 has no Sec-WebSocket-Key,
  // and the Sec-WebSocket-Accept computed from this one is not sent.
  static boost::beast::http::request<boost::beast::http::string_body> UpgradeRequest(
      absl::string_view target, absl::string_view authority) {
    namespace bhttp = boost::beast::http;
    bhttp::request<bhttp::string_body> request(
        bhttp::verb::get, boost::beast::string_view(target.data(), target.size()), 11);
    request.set(bhttp::field::host, boost::beast::string_view(authority.data(), authority.size()));
    request.set(bhttp::field::upgrade, "websocket");
    request.set(bhttp::field::connection, "Upgrade");
    request.set(bhttp::field::sec_websocket_key, "AAAAAAAAAAAAAAAAAAAAAA==");
    request.set(bhttp::field::sec_websocket_version, "13");
    return request;
  }

  executor_type get_executor() noexcept { return executor_; }

  // Refuses the extended CONNECT with an HTTP response (before any write).
  void Refuse(int status, HeaderList headers, std::string body) {
    if (sink_ == nullptr || head_sent_) return;
    head_sent_ = true;
    ended_ = true;
    sink_->Respond(status, std::move(headers), std::move(body));
  }

  // The WebSocket is over: a stream whose response has not ended is reset.
  void Close() {
    if (sink_ == nullptr || ended_) return;
    Abort();
  }

  // The HTTP/2 stream is gone (closed, reset, or its connection ended): pending and later
  // operations fail; `sink`, `reader` and `reset` are not used any more.
  void Detach() {
    sink_ = nullptr;
    reader_ = nullptr;
    reset_ = nullptr;
    FailPending(boost::asio::error::connection_reset);
  }

  template <typename MutableBufferSequence, typename ReadHandler>
  BOOST_ASIO_INITFN_RESULT_TYPE(ReadHandler, void(boost::system::error_code, std::size_t))
  async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return boost::asio::async_initiate<ReadHandler,
                                       void(boost::system::error_code, std::size_t)>(
        [this](auto h, const MutableBufferSequence& b) {
          read_.handler = Erase(std::move(h));
          read_.fill = [b](absl::string_view data) {
            return boost::asio::buffer_copy(b, boost::asio::buffer(data.data(), data.size()));
          };
          read_.empty = boost::asio::buffer_size(b) == 0;
          ServeRead();
        },
        handler, buffers);
  }

  template <typename ConstBufferSequence, typename WriteHandler>
  BOOST_ASIO_INITFN_RESULT_TYPE(WriteHandler, void(boost::system::error_code, std::size_t))
  async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return boost::asio::async_initiate<WriteHandler,
                                       void(boost::system::error_code, std::size_t)>(
        [this](auto h, const ConstBufferSequence& b) {
          std::string data(boost::asio::buffer_size(b), '\0');
          boost::asio::buffer_copy(boost::asio::buffer(data), b);
          StartWrite(Erase(std::move(h)), std::move(data));
        },
        handler, buffers);
  }

  // Beast's teardown after the close handshake: END_STREAM.
  template <typename TeardownHandler>
  friend void async_teardown(boost::beast::role_type, Http2WebSocketStream& stream,
                             TeardownHandler&& handler) {
    boost::system::error_code ec;
    if (stream.sink_ != nullptr && stream.head_sent_ && !stream.ended_) {
      stream.ended_ = true;
      stream.sink_->Write(std::string(), /*last=*/true, [](bool) {});
    } else if (stream.sink_ == nullptr) {
      ec = boost::asio::error::connection_reset;
    }
    boost::asio::post(stream.executor_,
                      boost::beast::bind_front_handler(std::forward<TeardownHandler>(handler), ec));
  }

  // Beast's close_socket (a timeout or a failure): the stream is reset.
  friend void beast_close_socket(Http2WebSocketStream& stream) { stream.Abort(); }

 private:
  // A move-only completion handler of signature void(error_code, size_t).
  class Handler {
   public:
    Handler() = default;
    template <typename H>
    explicit Handler(H h) : impl_(std::make_unique<Impl<H>>(std::move(h))) {}
    explicit operator bool() const { return impl_ != nullptr; }
    // Posts the completion to `executor` (never runs it inline).
    void Post(executor_type executor, boost::system::error_code ec, std::size_t n) {
      std::unique_ptr<Base> impl = std::move(impl_);
      impl->Post(executor, ec, n);
    }

   private:
    struct Base {
      virtual ~Base() = default;
      virtual void Post(executor_type executor, boost::system::error_code ec,
                        std::size_t n) = 0;
    };
    template <typename H>
    struct Impl final : Base {
      explicit Impl(H h) : handler(std::move(h)) {}
      void Post(executor_type executor, boost::system::error_code ec,
                std::size_t n) override {
        boost::asio::post(executor,
                          boost::beast::bind_front_handler(std::move(handler), ec, n));
      }
      H handler;
    };
    std::unique_ptr<Base> impl_;
  };

  template <typename H>
  static Handler Erase(H h) {
    return Handler(std::move(h));
  }

  struct PendingRead {
    Handler handler;
    std::function<std::size_t(absl::string_view)> fill;
    bool empty = false;
  };

  void ServeRead() {
    if (!read_.handler) return;
    if (in_offset_ < in_.size() || read_.empty) {
      const std::size_t n =
          read_.fill(absl::string_view(in_).substr(in_offset_));
      in_offset_ += n;
      if (in_offset_ == in_.size()) {
        in_.clear();
        in_offset_ = 0;
      }
      Complete(&read_.handler, {}, n);
      return;
    }
    if (in_error_) {
      Complete(&read_.handler, in_error_, 0);
      return;
    }
    if (in_eof_) {
      Complete(&read_.handler, boost::asio::error::eof, 0);
      return;
    }
    if (reader_ == nullptr) {
      Complete(&read_.handler, boost::asio::error::connection_reset, 0);
      return;
    }
    if (reader_busy_) return;
    // Only now (what arrived before was consumed) is more of the client's DATA taken.
    reader_busy_ = true;
    reader_->Read([weak = weak_from_this()](absl::Status status, std::string data, bool last) {
      auto self = weak.lock();
      if (self == nullptr) return;
      self->reader_busy_ = false;
      if (!status.ok()) {
        self->in_error_ = boost::asio::error::connection_reset;
      } else {
        self->in_ = std::move(data);
        self->in_offset_ = 0;
        self->in_eof_ = last;
      }
      self->ServeRead();
    });
  }

  void StartWrite(Handler handler, std::string data) {
    if (sink_ == nullptr || ended_) {
      handler.Post(executor_, boost::asio::error::broken_pipe, 0);
      return;
    }
    const std::size_t n = data.size();
    if (!head_sent_) {
      head_.append(data);
      const std::size_t end = head_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (head_.size() > (16 << 10)) {
          Abort();
          handler.Post(executor_, boost::asio::error::message_size, 0);
          return;
        }
        handler.Post(executor_, {}, n);
        return;
      }
      std::string rest = head_.substr(end + 4);
      head_.resize(end);
      SendHead();
      if (!rest.empty() && !ended_) SendData(std::move(rest), Handler());
      handler.Post(executor_, {}, n);
      return;
    }
    SendData(std::move(data), std::move(handler));
  }

  // The HTTP/1.1 response head Beast wrote, as the HTTP/2 response.
  void SendHead() {
    head_sent_ = true;
    int status = 0;
    HeaderList headers;
    bool first = true;
    for (absl::string_view line : absl::StrSplit(head_, "\r\n")) {
      if (first) {
        first = false;
        // "HTTP/1.1 101 Switching Protocols"
        std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
        if (parts.size() < 2 || !absl::SimpleAtoi(parts[1], &status)) status = 500;
        continue;
      }
      const std::size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      std::string name = absl::AsciiStrToLower(line.substr(0, colon));
      if (name == "upgrade" || name == "connection" || name == "sec-websocket-accept" ||
          name == "content-length") {
        continue;
      }
      headers.emplace_back(std::move(name),
                           std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
    head_.clear();
    if (status == 101) {
      sink_->StartStream(200, std::move(headers));
      return;
    }
    // Beast refused its own handshake: that status, and the stream ends.
    ended_ = true;
    sink_->Respond(status, std::move(headers), std::string());
  }

  void SendData(std::string data, Handler handler) {
    const std::size_t n = data.size();
    auto done = std::make_shared<Handler>(std::move(handler));
    sink_->Write(std::move(data), /*last=*/false,
                 [weak = weak_from_this(), done, n](bool ok) {
                   auto self = weak.lock();
                   if (self == nullptr || !*done) return;
                   self->write_ = nullptr;
                   done->Post(self->executor_,
                              ok ? boost::system::error_code()
                                 : boost::system::error_code(boost::asio::error::broken_pipe),
                              ok ? n : 0);
                 });
    if (*done) write_ = done;
  }

  void Complete(Handler* handler, boost::system::error_code ec, std::size_t n) {
    Handler h = std::move(*handler);
    h.Post(executor_, ec, n);
  }

  void Abort() {
    if (aborted_) return;
    aborted_ = true;
    ended_ = true;
    in_error_ = boost::asio::error::operation_aborted;
    auto reset = std::move(reset_);
    reset_ = nullptr;
    if (reset) reset();
    FailPending(boost::asio::error::operation_aborted);
  }

  void FailPending(boost::system::error_code ec) {
    if (!in_error_) in_error_ = ec;
    ended_ = true;
    if (read_.handler) Complete(&read_.handler, ec, 0);
    if (write_ != nullptr && *write_) {
      std::shared_ptr<Handler> write = std::move(write_);
      write_ = nullptr;
      write->Post(executor_, ec, 0);
    }
  }

  const executor_type executor_;
  CallSink* sink_;
  BodyReader* reader_;
  std::function<void()> reset_;

  // Read side: bytes taken from the reader and not yet handed to Beast.
  PendingRead read_;
  std::string in_;
  std::size_t in_offset_ = 0;
  bool in_eof_ = false;
  boost::system::error_code in_error_;
  bool reader_busy_ = false;

  // Write side.
  std::string head_;  // the handshake response head, until it is whole
  bool head_sent_ = false;
  bool ended_ = false;  // END_STREAM sent, or the stream reset/refused
  bool aborted_ = false;
  std::shared_ptr<Handler> write_;  // the pending write's completion
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_HTTP2_WEBSOCKET_STREAM_H_
