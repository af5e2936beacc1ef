#include "gateway/http/http2_websocket_stream.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "gateway/http/websocket_call.h"
#include "gtest/gtest.h"

namespace gateway::http {
namespace {

// The HTTP/2 stream as the byte stream sees it: records the response, completes writes at
// once (nghttp2 took the bytes), hands out client bytes only when asked for.
class FakeStream final : public CallSink, public BodyReader {
 public:
  explicit FakeStream(boost::asio::io_context& ioc) : ioc_(ioc) {}

  void Respond(int status, HeaderList headers, std::string body) override {
    status_ = status;
    headers_ = std::move(headers);
    out_ += body;
    ended_ = true;
  }
  void StartStream(int status, HeaderList headers) override {
    status_ = status;
    headers_ = std::move(headers);
  }
  void Write(std::string data, bool last, std::function<void(bool)> written) override {
    out_ += data;
    if (last) ended_ = true;
    boost::asio::post(ioc_, [written = std::move(written)] { written(true); });
  }
  void Read(Callback done) override {
    ++reads_;
    pending_ = std::move(done);
  }

  // The client sends `bytes` (delivered to a pending Read).
  bool Send(std::string bytes, bool last = false) {
    if (!pending_) return false;
    auto done = std::move(pending_);
    pending_ = nullptr;
    boost::asio::post(ioc_, [done = std::move(done), bytes = std::move(bytes), last] {
      done(absl::OkStatus(), bytes, last);
    });
    return true;
  }

  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers_) {
      if (k == name) return v;
    }
    return "<absent>";
  }

  boost::asio::io_context& ioc_;
  int status_ = 0;
  HeaderList headers_;
  std::string out_;
  bool ended_ = false;
  int reads_ = 0;
  Callback pending_;
};

// A client frame (masked, FIN set) with a payload under 126 bytes.
std::string ClientFrame(uint8_t opcode, absl::string_view payload, bool masked = true) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  f.push_back(static_cast<char>((masked ? 0x80 : 0) | payload.size()));
  const char key[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}

class Http2WebSocketStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = std::make_shared<Http2WebSocketStream>(ioc_.get_executor(), &fake_, &fake_,
                                                     [this] { ++resets_; });
    BeastWebSocket<Http2WebSocketStream>::Options options;
    options.max_message_bytes = 64;
    transport_ = std::make_shared<BeastWebSocket<Http2WebSocketStream>>(
        *socket_, Http2WebSocketStream::UpgradeRequest("/v1/echo", "127.0.0.1:1"), options,
        socket_, [](int, HeaderList, std::string) {}, [this] { socket_->Close(); });
  }

  void Accept() {
    std::optional<bool> accepted;
    transport_->Accept({{"x-request-id", "r1"}}, [&](bool ok) { accepted = ok; });
    ioc_.run_for(std::chrono::seconds(2));
    ioc_.restart();
    ASSERT_EQ(accepted, std::optional<bool>(true));
  }

  boost::asio::io_context ioc_;
  FakeStream fake_{ioc_};
  int resets_ = 0;
  std::shared_ptr<Http2WebSocketStream> socket_;
  std::shared_ptr<BeastWebSocket<Http2WebSocketStream>> transport_;
};

TEST_F(Http2WebSocketStreamTest, HandshakeIsStatus200WithoutTheHttp1HandshakeFields) {
  Accept();
  EXPECT_EQ(fake_.status_, 200);
  EXPECT_EQ(fake_.Header("x-request-id"), "r1");
  EXPECT_EQ(fake_.Header("upgrade"), "<absent>");
  EXPECT_EQ(fake_.Header("connection"), "<absent>");
  EXPECT_EQ(fake_.Header("sec-websocket-accept"), "<absent>");
  EXPECT_EQ(fake_.out_, "");  // no byte of the HTTP/1.1 head goes into DATA
  EXPECT_FALSE(fake_.ended_);
}

TEST_F(Http2WebSocketStreamTest, CarriesMessagesBothWays) {
  Accept();
  std::optional<std::string> got;
  transport_->Read([&](absl::Status status, bool text, std::string payload) {
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_TRUE(text);
    got = payload;
  });
  ioc_.poll();
  ioc_.restart();
  ASSERT_TRUE(fake_.Send(ClientFrame(0x1, "{\"a\":1}")));
  ioc_.poll();
  ioc_.restart();
  EXPECT_EQ(got, std::optional<std::string>("{\"a\":1}"));

  std::optional<bool> written;
  transport_->Write("yo", [&](bool ok) { written = ok; });
  ioc_.poll();
  ioc_.restart();
  EXPECT_EQ(written, std::optional<bool>(true));
  EXPECT_EQ(fake_.out_, std::string("\x81\x02yo", 4));  // unmasked server text frame
}

TEST_F(Http2WebSocketStreamTest, TakesClientBytesOnlyOnceTheLastWereConsumed) {
  Accept();
  EXPECT_EQ(fake_.reads_, 0);  // nothing asked for before the call reads
  int messages = 0;
  transport_->Read([&](absl::Status, bool, std::string) { ++messages; });
  ioc_.poll();
  ioc_.restart();
  EXPECT_EQ(fake_.reads_, 1);
  // Two frames in one DATA: the second is served from what was taken, no new Read.
  ASSERT_TRUE(fake_.Send(ClientFrame(0x1, "1") + ClientFrame(0x1, "2")));
  ioc_.poll();
  ioc_.restart();
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(fake_.reads_, 1);
  transport_->Read([&](absl::Status, bool, std::string) { ++messages; });
  ioc_.poll();
  ioc_.restart();
  EXPECT_EQ(messages, 2);
  EXPECT_EQ(fake_.reads_, 1);
}

TEST_F(Http2WebSocketStreamTest, UnmaskedClientFrameIsClosedWith1002AndEndStream) {
  Accept();
  std::optional<absl::Status> result;
  transport_->Read([&](absl::Status status, bool, std::string) { result = status; });
  ioc_.poll();
  ioc_.restart();
  ASSERT_TRUE(fake_.Send(ClientFrame(0x1, "x", /*masked=*/false)));
  ioc_.run_for(std::chrono::milliseconds(200));
  ioc_.restart();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code(), absl::StatusCode::kUnavailable) << *result;
  // The server's close frame: code 1002 (protocol error).
  ASSERT_GE(fake_.out_.size(), 4u);
  EXPECT_EQ(fake_.out_.substr(0, 4), std::string("\x88\x02\x03\xea", 4)) << fake_.out_.size();
  // The client answers with its close frame and ends its side: the stream ends cleanly.
  fake_.Send(ClientFrame(0x8, std::string("\x03\xea", 2)), /*last=*/true);
  ioc_.run_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(fake_.ended_);
}

TEST_F(Http2WebSocketStreamTest, DetachFailsAPendingRead) {
  Accept();
  std::optional<absl::Status> result;
  transport_->Read([&](absl::Status status, bool, std::string) { result = status; });
  ioc_.poll();
  ioc_.restart();
  socket_->Detach();  // the client reset the stream
  ioc_.run_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->ok());
  EXPECT_EQ(resets_, 0);  // a detached stream is not reset again
}

TEST_F(Http2WebSocketStreamTest, RefuseAnswersWithTheHttpError) {
  socket_->Refuse(403, {{"content-type", "application/json"}}, "{}");
  EXPECT_EQ(fake_.status_, 403);
  EXPECT_EQ(fake_.out_, "{}");
  EXPECT_TRUE(fake_.ended_);
}

TEST(Http2WebSocketUpgrade, ExtendedConnectNeedsHttp2AndVersion13) {
  HttpRequest r;
  r.method = "CONNECT";
  r.protocol = "HTTP/2";
  r.headers = {{"sec-websocket-version", "13"}};
  bool version = true;
  EXPECT_TRUE(CheckExtendedConnect(r, &version).ok());
  EXPECT_FALSE(version);
  r.headers = {{"sec-websocket-version", "8"}};
  absl::Status s = CheckExtendedConnect(r, &version);
  EXPECT_TRUE(version);
  EXPECT_NE(s.message().find("\"8\" (supported: 13)"), absl::string_view::npos) << s;
  r.protocol = "HTTP/1.1";
  r.headers = {{"sec-websocket-version", "13"}};
  s = CheckExtendedConnect(r, &version);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("extended CONNECT"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace gateway::http
