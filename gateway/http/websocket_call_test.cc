#include "gateway/http/websocket_call.h"

#include <string>

#include "gtest/gtest.h"

namespace gateway::http {
namespace {

HttpRequest Upgrade() {
  HttpRequest r;
  r.method = "GET";
  r.target = "/v1/echo";
  r.headers = {{"host", "127.0.0.1:8080"},
               {"upgrade", "websocket"},
               {"connection", "keep-alive, Upgrade"},
               {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
               {"sec-websocket-version", "13"}};
  return r;
}

void SetHeader(HttpRequest* r, const std::string& name, const std::string& value) {
  for (auto& [k, v] : r->headers) {
    if (k == name) v = value;
  }
}

TEST(WebSocketUpgrade, RecognizesTheUpgradeTokenInAnyCase) {
  EXPECT_TRUE(UpgradesToWebSocket("websocket"));
  EXPECT_TRUE(UpgradesToWebSocket("WebSocket"));
  EXPECT_TRUE(UpgradesToWebSocket("h2c, websocket"));
  EXPECT_FALSE(UpgradesToWebSocket("h2c"));
  EXPECT_FALSE(UpgradesToWebSocket("websockets"));
  EXPECT_FALSE(UpgradesToWebSocket(""));
  EXPECT_TRUE(IsWebSocketUpgrade(Upgrade()));
}

TEST(WebSocketUpgrade, AcceptsAValidHandshake) {
  bool version = true;
  EXPECT_TRUE(CheckUpgradeRequest(Upgrade(), &version).ok());
  EXPECT_FALSE(version);
}

TEST(WebSocketUpgrade, RefusesAnotherMethodNamingIt) {
  HttpRequest r = Upgrade();
  r.method = "POST";
  bool version = false;
  absl::Status s = CheckUpgradeRequest(r, &version);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("GET request, not POST"), absl::string_view::npos) << s;
}

TEST(WebSocketUpgrade, RefusesAMissingConnectionUpgrade) {
  HttpRequest r = Upgrade();
  SetHeader(&r, "connection", "keep-alive");
  bool version = false;
  absl::Status s = CheckUpgradeRequest(r, &version);
  EXPECT_NE(s.message().find("Connection: Upgrade"), absl::string_view::npos) << s;
}

TEST(WebSocketUpgrade, RefusesAKeyThatIsNotSixteenBytes) {
  for (const char* key : {"", "abc", "dGhlIHNhbXBsZSBub25jZQ", "!!!!!!!!!!!!!!!!!!!!!!=="}) {
    HttpRequest r = Upgrade();
    SetHeader(&r, "sec-websocket-key", key);
    bool version = false;
    absl::Status s = CheckUpgradeRequest(r, &version);
    EXPECT_NE(s.message().find("Sec-WebSocket-Key"), absl::string_view::npos) << key << s;
    EXPECT_FALSE(version);
  }
}

TEST(WebSocketUpgrade, ReportsAnUnsupportedVersion) {
  HttpRequest r = Upgrade();
  SetHeader(&r, "sec-websocket-version", "8");
  bool version = false;
  absl::Status s = CheckUpgradeRequest(r, &version);
  EXPECT_TRUE(version);
  EXPECT_NE(s.message().find("\"8\" (supported: 13)"), absl::string_view::npos) << s;
}

TEST(WebSocketClose, OkIsNormalClosureAndErrorsAre4000PlusTheCode) {
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kOk), 1000);
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kCancelled), 4001);
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kInvalidArgument), 4003);
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kResourceExhausted), 4008);
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kUnavailable), 4014);
  EXPECT_EQ(CloseCodeForStatus(absl::StatusCode::kUnauthenticated), 4016);
}

TEST(WebSocketClose, ReasonKeepsAShortMessage) {
  EXPECT_EQ(CloseReason("backend down"), "backend down");
  EXPECT_EQ(CloseReason(""), "");
  EXPECT_EQ(CloseReason(std::string(123, 'x')), std::string(123, 'x'));
}

TEST(WebSocketClose, ReasonIsCutTo123BytesAtACharacterBoundary) {
  EXPECT_EQ(CloseReason(std::string(200, 'x')), std::string(123, 'x'));
  // 122 ASCII bytes and a two-byte character: the character does not fit whole.
  const std::string message = std::string(122, 'a') + "\xc3\xa9" + "b";
  EXPECT_EQ(CloseReason(message), std::string(122, 'a'));
  // A four-byte character at the end fits exactly.
  const std::string emoji = std::string(119, 'a') + "\xf0\x9f\x98\x80";
  EXPECT_EQ(CloseReason(emoji), emoji);
}

TEST(WebSocketClose, ReasonReplacesInvalidUtf8) {
  EXPECT_EQ(CloseReason("a\xff" "b"), "a?b");
  EXPECT_EQ(CloseReason("\xc3"), "?");               // truncated sequence
  EXPECT_EQ(CloseReason("\xc0\xaf"), "??");          // overlong form
  EXPECT_EQ(CloseReason("\xed\xa0\x80"), "???");     // a surrogate
  EXPECT_EQ(CloseReason("\xf4\x90\x80\x80"), "????");  // above U+10FFFF
  EXPECT_EQ(CloseReason("\xe2\x9c\x93"), "\xe2\x9c\x93");
}

TEST(WebSocketOrigin, SameOriginComparesHostAndPort) {
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"));
  EXPECT_TRUE(SameOrigin("http://Example.com", "example.com:80"));
  EXPECT_TRUE(SameOrigin("https://example.com:443", "example.com"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:8081", "127.0.0.1:8080"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "example.com"));
  EXPECT_FALSE(SameOrigin("null", "example.com"));
  EXPECT_FALSE(SameOrigin("http://example.com", ""));
}

}  // namespace
}  // namespace gateway::http
