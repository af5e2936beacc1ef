// Fuzz target: the bytes a WebSocket client sends after the handshake, read by Beast's
// server-side websocket::stream with the gateway's settings (message limit, no compression),
// each whole message then handled as WebSocketCall handles one (text or binary, the empty
// end-of-stream frame, the close reason derived from a message), plus the pure checks of
// websocket_call.h on the same bytes. The same bytes are then read again as the DATA of an
// HTTP/2 stream (RFC 8441) through Http2WebSocketStream, split into DATA chunks at
// input-chosen sizes: the handshake must come out as a 200 response head and never as DATA.
// Must never crash, hang or leak; the close reason must keep its invariants (at most 123
// bytes, valid UTF-8).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/_experimental/test/stream.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "gateway/http/call.h"
#include "gateway/http/http2_websocket_stream.h"
#include "gateway/http/websocket_call.h"

namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using gateway::http::CloseReason;

// A whole UTF-8 check independent of CloseReason's own.
bool ValidUtf8(absl::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < n; ++k) {
      const unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// The HTTP/2 stream under Http2WebSocketStream: serves `input` in chunks, records the
// response.
class FuzzStream final : public gateway::http::CallSink, public gateway::http::BodyReader {
 public:
  FuzzStream(boost::asio::io_context& ioc, absl::string_view input)
      : ioc_(ioc), input_(input) {}
  void Respond(int, gateway::http::HeaderList, std::string) override { std::abort(); }
  void StartStream(int status, gateway::http::HeaderList headers) override {
    if (status != 200 || started_) std::abort();
    for (const auto& [name, value] : headers) {
      if (name == "upgrade" || name == "connection" || name == "sec-websocket-accept") {
        std::abort();  // HTTP/1.1 handshake fields must not reach HTTP/2
      }
    }
    started_ = true;
  }
  void Write(std::string data, bool last, std::function<void(bool)> written) override {
    if (!started_ || ended_) std::abort();  // DATA only inside the response
    if (absl::string_view(data).substr(0, 5) == "HTTP/") std::abort();
    ended_ = last;
    boost::asio::post(ioc_, [written = std::move(written)] { written(true); });
  }
  void Read(Callback done) override {
    if (busy_) std::abort();  // one Read at a time
    busy_ = true;
    // A chunk size from the input itself: 1 to 64 bytes.
    const std::size_t n = input_.empty() ? 0 : 1 + static_cast<unsigned char>(input_[0]) % 64;
    std::string chunk(input_.substr(0, n));
    input_.remove_prefix(std::min(n, input_.size()));
    boost::asio::post(ioc_, [this, done = std::move(done), chunk = std::move(chunk)] {
      busy_ = false;
      done(absl::OkStatus(), chunk, input_.empty());
    });
  }

 private:
  boost::asio::io_context& ioc_;
  absl::string_view input_;
  bool started_ = false;
  bool ended_ = false;
  bool busy_ = false;
};

void ReadOverHttp2(absl::string_view input) {
  boost::asio::io_context ioc;
  FuzzStream h2(ioc, input);
  auto socket = std::make_shared<gateway::http::Http2WebSocketStream>(ioc.get_executor(), &h2,
                                                                      &h2, [] {});
  websocket::stream<gateway::http::Http2WebSocketStream&> ws(*socket);
  ws.read_message_max(64 << 10);
  ws.auto_fragment(false);
  beast::flat_buffer buffer;
  int messages = 0;
  std::function<void(beast::error_code, std::size_t)> on_read =
      [&](beast::error_code ec, std::size_t) {
        if (ec) return;
        const std::string payload = beast::buffers_to_string(buffer.data());
        buffer.consume(buffer.size());
        if (payload.size() > (64u << 10)) std::abort();
        if (ws.got_text() && !ValidUtf8(payload)) std::abort();
        if (++messages < 10000) ws.async_read(buffer, on_read);
      };
  ws.async_accept(gateway::http::Http2WebSocketStream::UpgradeRequest("/ws", "localhost"),
                  [&](beast::error_code ec) {
                    if (ec) std::abort();  // a valid handshake must pass
                    ws.async_read(buffer, on_read);
                  });
  ioc.run();
}

void CheckReason(absl::string_view message) {
  const std::string reason = CloseReason(message);
  if (reason.size() > 123 || !ValidUtf8(reason)) std::abort();
  // Valid UTF-8 that fits is kept as it is.
  if (message.size() <= 123 && ValidUtf8(message) && reason != message) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckReason(input);
  gateway::http::HttpRequest request;
  request.method = "GET";
  request.headers = {{"upgrade", std::string(input.substr(0, 64))},
                     {"connection", "Upgrade"},
                     {"sec-websocket-key", std::string(input.substr(0, 24))},
                     {"sec-websocket-version", "13"}};
  bool version_mismatch = false;
  (void)gateway::http::IsWebSocketUpgrade(request);
  (void)gateway::http::CheckUpgradeRequest(request, &version_mismatch);
  (void)gateway::http::SameOrigin(input, "localhost:8080");

  boost::asio::io_context ioc;
  beast::test::stream server(ioc);
  beast::test::stream client = beast::test::connect(server);
  websocket::stream<beast::test::stream&> ws(server);
  ws.read_message_max(64 << 10);
  ws.auto_fragment(false);
  beast::http::request<beast::http::string_body> upgrade(beast::http::verb::get, "/ws", 11);
  upgrade.set(beast::http::field::host, "localhost");
  upgrade.set(beast::http::field::upgrade, "websocket");
  upgrade.set(beast::http::field::connection, "Upgrade");
  upgrade.set(beast::http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  upgrade.set(beast::http::field::sec_websocket_version, "13");
  beast::error_code ec;
  ws.accept(upgrade, ec);
  if (ec) std::abort();  // a valid handshake must pass
  server.append(beast::string_view(input.data(), input.size()));
  client.close();  // the client's bytes end here: reads then fail instead of waiting
  beast::flat_buffer buffer;
  for (int messages = 0; messages < 10000; ++messages) {
    ws.read(buffer, ec);
    if (ec) break;
    const std::string payload = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (payload.size() > (64u << 10)) std::abort();  // over the limit yet delivered
    if (ws.got_text()) {
      if (!ValidUtf8(payload)) std::abort();  // Beast validates text frames
      CheckReason(payload);
    }
  }
  ReadOverHttp2(input);
  return 0;
}
