// Fuzz target: the bytes a WebSocket client sends after the handshake, read by Beast's
// server-side websocket::stream with the gateway's settings (message limit, no compression),
// each whole message then handled as WebSocketCall handles one (text or binary, the empty
// end-of-stream frame, the close reason derived from a message), plus the pure checks of
// websocket_call.h on the same bytes. Must never crash, hang or leak; the close reason must
// keep its invariants (at most 123 bytes, valid UTF-8).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/_experimental/test/stream.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "gateway/http/call.h"
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
  return 0;
}
