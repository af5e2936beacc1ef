// Http2Connection against misbehaving backends: a raw TCP server on 127.0.0.1 (one thread,
// blocking sockets with a receive timeout) that writes hand-made HTTP/2 frames.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/upstream/grpc_framing.h"
#include "gateway/upstream/http2_connection.h"
#include "gtest/gtest.h"
#include "gateway/upstream/test_loop.h"

namespace gateway::upstream {
namespace {

enum FrameType : uint8_t {
  kData = 0,
  kHeaders = 1,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};
constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kAck = 0x1;
constexpr uint8_t kEndHeaders = 0x4;

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string EncodeFrame(uint8_t type, uint8_t flags, uint32_t stream_id,
                        const std::string& payload) {
  const uint32_t n = payload.size();
  std::string out = {static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                     static_cast<char>(n), static_cast<char>(type), static_cast<char>(flags)};
  out += Be32(stream_id & 0x7fffffff);
  return out + payload;
}

// HPACK integer with an n-bit prefix (RFC 7541 5.1), first byte's high bits from `first`.
void HpackInt(uint32_t v, int prefix_bits, uint8_t first, std::string* out) {
  const uint32_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out->push_back(static_cast<char>(first | v));
    return;
  }
  out->push_back(static_cast<char>(first | max));
  v -= max;
  while (v >= 128) {
    out->push_back(static_cast<char>((v % 128) + 128));
    v /= 128;
  }
  out->push_back(static_cast<char>(v));
}

// A header block of literal fields without indexing, no Huffman coding.
std::string HeaderBlock(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    out.push_back(0);
    HpackInt(name.size(), 7, 0, &out);
    out += name;
    HpackInt(value.size(), 7, 0, &out);
    out += value;
  }
  return out;
}

// The server side of one accepted connection.
class Peer {
 public:
  explicit Peer(int fd) : fd_(fd) {}
  ~Peer() { close(fd_); }

  // Reads exactly n bytes; false on EOF, error or the 5 s receive timeout.
  bool ReadExactly(size_t n, std::string* out) {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = recv(fd_, out->data() + got, n - got, 0);
      if (r <= 0) return false;
      got += r;
    }
    return true;
  }
  bool ReadPreface() {
    std::string p;
    return ReadExactly(24, &p) && p == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  }
  std::optional<Frame> ReadFrame() {
    std::string h;
    if (!ReadExactly(9, &h)) return std::nullopt;
    Frame f;
    const uint32_t len = (uint8_t(h[0]) << 16) | (uint8_t(h[1]) << 8) | uint8_t(h[2]);
    f.type = h[3];
    f.flags = h[4];
    f.stream_id = ((uint8_t(h[5]) & 0x7f) << 24) | (uint8_t(h[6]) << 16) |
                  (uint8_t(h[7]) << 8) | uint8_t(h[8]);
    if (!ReadExactly(len, &f.payload)) return std::nullopt;
    return f;
  }
  // Reads frames until one of `type` (on any stream, or `stream_id` if non-zero). SETTINGS
  // of the client are acknowledged; PINGs are answered when `answer_pings`.
  std::optional<Frame> ReadUntil(uint8_t type, uint32_t stream_id = 0) {
    while (true) {
      auto f = ReadFrame();
      if (!f) return std::nullopt;
      if (f->type == kSettings && (f->flags & kAck) == 0) {
        client_settings = f->payload;
        Write(EncodeFrame(kSettings, kAck, 0, ""));
      }
      if (f->type == kPing && (f->flags & kAck) == 0 && answer_pings) {
        Write(EncodeFrame(kPing, kAck, 0, f->payload));
      }
      if (f->type == type && (stream_id == 0 || f->stream_id == stream_id)) return f;
    }
  }
  void Write(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t w = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return;
      off += w;
    }
  }
  void WriteSettings() { Write(EncodeFrame(kSettings, 0, 0, "")); }
  // A header block, split into HEADERS + CONTINUATION frames of at most 16 KiB.
  void WriteHeaders(uint32_t stream_id, const std::string& block, bool end_stream) {
    constexpr size_t kMax = 16384;
    size_t off = 0;
    bool first = true;
    do {
      const std::string part = block.substr(off, kMax);
      off += part.size();
      const bool last = off >= block.size();
      uint8_t flags = last ? kEndHeaders : 0;
      if (first && end_stream) flags |= kEndStream;
      Write(EncodeFrame(first ? kHeaders : kContinuation, flags, stream_id, part));
      first = false;
    } while (off < block.size());
  }
  void WriteResponseHeaders(uint32_t stream_id) {
    WriteHeaders(stream_id, HeaderBlock({{":status", "200"}, {"content-type", "application/grpc"}}),
                 false);
  }
  void WriteMessage(uint32_t stream_id, const std::string& message) {
    std::string framed;
    AppendGrpcFrame(message, &framed);
    Write(EncodeFrame(kData, 0, stream_id, framed));
  }
  void WriteTrailers(uint32_t stream_id, const std::string& grpc_status = "0") {
    WriteHeaders(stream_id, HeaderBlock({{"grpc-status", grpc_status}}), true);
  }

  int fd() const { return fd_; }

  bool answer_pings = true;
  std::string client_settings;

 private:
  int fd_;
};

// Accepts one connection on 127.0.0.1 and runs `script` on it on its own thread.
class RawServer {
 public:
  explicit RawServer(std::function<void(Peer&)> script) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 4);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      conn_fd_ = fd;
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      Peer peer(fd);
      script(peer);
      // Hold the connection until the test ends (the client must act on its own).
      std::string ignored;
      while (!stop_ && peer.ReadExactly(1, &ignored)) {
      }
      finished_ = true;
    });
  }
  ~RawServer() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    if (conn_fd_ >= 0) shutdown(conn_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  uint16_t port_ = 0;
  std::thread thread_;
};

class HostileTest : public ::testing::Test {
 protected:
  template <typename F>
  bool RunUntil(F done, absl::Duration limit = absl::Seconds(5)) {
    return RunLoopUntil(io_, done, limit);
  }
  void RunFor(absl::Duration d) { RunLoopFor(io_, d); }

  std::shared_ptr<Http2Connection> Connect(const RawServer& server,
                                           ConnectionOptions options = {}) {
    return Http2Connection::Create(io_, Endpoint::Tcp("127.0.0.1", server.port()),
                                   std::move(options));
  }

  struct Call {
    std::shared_ptr<GrpcStream> stream;
    std::vector<std::string> messages;
    std::optional<CallResult> result;
  };
  // Starts a call that reads every message; `call` must outlive the run.
  void Start(Http2Connection& conn, Call* call, absl::Time deadline = absl::InfiniteFuture()) {
    GrpcStreamCallbacks cb;
    cb.on_message = [call](std::string m) {
      call->messages.push_back(std::move(m));
      call->stream->RequestNext();
    };
    cb.on_done = [call](const CallResult& r) { call->result = r; };
    auto s = conn.StartStream({"/pkg.Svc/Method", deadline}, std::move(cb));
    ASSERT_TRUE(s.ok()) << s.status();
    call->stream = *s;
    ASSERT_TRUE(call->stream->Write("request").ok());
    call->stream->WritesDone();
  }

  boost::asio::io_context io_;
};

TEST_F(HostileTest, GarbageInsteadOfSettingsFailsTheConnection) {
  RawServer server([](Peer& peer) {
    peer.ReadPreface();
    peer.Write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  });
  auto conn = Connect(server);
  std::optional<absl::Status> connected;
  conn->Connect([&](absl::Status s) { connected = s; });
  Call call;
  Start(*conn, &call);
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value() && connected.has_value(); }));
  EXPECT_EQ(connected->code(), absl::StatusCode::kUnavailable) << *connected;
  EXPECT_TRUE(absl::StrContains(connected->message(), "does not speak HTTP/2")) << *connected;
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kUnavailable) << call.result->status;
  EXPECT_TRUE(call.result->unprocessed);
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
}

TEST_F(HostileTest, HeaderBlockOverTheLimitFailsOnlyThatCall) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1)) return;
    std::vector<std::pair<std::string, std::string>> big = {{":status", "200"},
                                                            {"content-type", "application/grpc"}};
    for (int i = 0; i < 8; ++i) big.emplace_back(absl::StrCat("x-big-", i), std::string(1000, 'h'));
    peer.WriteHeaders(1, HeaderBlock(big), false);
    // The same connection then answers a second call normally.
    if (!peer.ReadUntil(kHeaders, 3)) return;
    peer.WriteResponseHeaders(3);
    peer.WriteMessage(3, "fine");
    peer.WriteTrailers(3);
  });
  ConnectionOptions options;
  options.max_header_list_bytes = 4096;
  auto conn = Connect(server, options);
  Call first;
  Start(*conn, &first);
  ASSERT_TRUE(RunUntil([&] { return first.result.has_value(); }));
  EXPECT_EQ(first.result->status.code(), absl::StatusCode::kResourceExhausted)
      << first.result->status;
  EXPECT_TRUE(absl::StrContains(first.result->status.message(), "max_header_list_bytes"))
      << first.result->status;
  Call second;
  Start(*conn, &second);
  ASSERT_TRUE(RunUntil([&] { return second.result.has_value(); }));
  EXPECT_TRUE(second.result->status.ok()) << second.result->status;
  ASSERT_EQ(second.messages.size(), 1u);
  EXPECT_EQ(second.messages[0], "fine");
}

TEST_F(HostileTest, DefaultHeaderLimitIsAdvertisedAndEnforcedAcrossContinuations) {
  std::string client_settings;
  RawServer server([&](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1)) return;
    client_settings = peer.client_settings;
    std::vector<std::pair<std::string, std::string>> big = {{":status", "200"}};
    // 80 fields of 1 KiB: 80 KiB in HEADERS + 4 CONTINUATION frames.
    for (int i = 0; i < 80; ++i) big.emplace_back(absl::StrCat("x-big-", i), std::string(1024, 'h'));
    peer.WriteHeaders(1, HeaderBlock(big), false);
  });
  auto conn = Connect(server);
  Call call;
  Start(*conn, &call);
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value(); }));
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kResourceExhausted)
      << call.result->status;
  EXPECT_TRUE(absl::StrContains(call.result->status.message(), "65536")) << call.result->status;
  // SETTINGS_MAX_HEADER_LIST_SIZE (0x6) = 65536 among the client's settings.
  bool advertised = false;
  for (size_t i = 0; i + 6 <= client_settings.size(); i += 6) {
    const uint16_t id = (uint8_t(client_settings[i]) << 8) | uint8_t(client_settings[i + 1]);
    const std::string value = client_settings.substr(i + 2, 4);
    advertised |= id == 6 && value == Be32(65536);
  }
  EXPECT_TRUE(advertised);
  EXPECT_NE(conn->state(), Http2Connection::State::kClosed) << conn->close_reason();
}

TEST_F(HostileTest, MessageShorterThanItsPrefixIsTruncated) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1)) return;
    peer.WriteResponseHeaders(1);
    // The prefix announces 100 bytes; 10 follow, then trailers with status OK.
    peer.Write(EncodeFrame(kData, 0, 1, std::string("\0", 1) + Be32(100) + "0123456789"));
    peer.WriteTrailers(1);
  });
  auto conn = Connect(server);
  Call call;
  Start(*conn, &call);
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value(); }));
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kInternal) << call.result->status;
  EXPECT_TRUE(absl::StrContains(call.result->status.message(), "truncated"))
      << call.result->status;
  EXPECT_TRUE(call.messages.empty());
}

TEST_F(HostileTest, SilentServerTimesOutTheConnect) {
  RawServer server([](Peer& peer) { peer.ReadPreface(); });  // never sends SETTINGS
  ConnectionOptions options;
  options.connect_timeout = absl::Milliseconds(300);
  auto conn = Connect(server, options);
  std::optional<absl::Status> connected;
  conn->Connect([&](absl::Status s) { connected = s; });
  Call call;
  Start(*conn, &call);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value() && connected.has_value(); }));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(connected->code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(connected->message(), "connect timed out")) << *connected;
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(call.result->unprocessed);
}

TEST_F(HostileTest, ServerThatNeverAnswersACallHitsTheDeadline) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    peer.ReadUntil(kHeaders, 1);
  });
  auto conn = Connect(server);
  Call call;
  const absl::Time start = absl::Now();
  Start(*conn, &call, absl::Now() + absl::Milliseconds(300));
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value(); }));
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kDeadlineExceeded)
      << call.result->status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(conn->state(), Http2Connection::State::kReady);
}

// The connection's one deadline timer waits for the earliest deadline of its streams: a
// stream with an earlier deadline than those before it moves the timer, the later ones
// still end at theirs, and a stream that ended leaves no stale expiry behind.
TEST_F(HostileTest, EachStreamEndsAtItsOwnDeadline) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    peer.ReadUntil(kHeaders, 3);
  });
  auto conn = Connect(server);
  Call late, early, middle;
  const absl::Time start = absl::Now();
  Start(*conn, &late, start + absl::Milliseconds(3000));
  Start(*conn, &early, start + absl::Milliseconds(200));
  Start(*conn, &middle, start + absl::Milliseconds(1500));
  ASSERT_TRUE(RunUntil([&] { return early.result.has_value(); }));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1200));
  EXPECT_EQ(early.result->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(middle.result.has_value());
  EXPECT_FALSE(late.result.has_value());
  ASSERT_TRUE(RunUntil([&] { return middle.result.has_value(); }));
  const absl::Duration middle_at = absl::Now() - start;
  EXPECT_GE(middle_at, absl::Milliseconds(1490));
  EXPECT_LT(middle_at, absl::Milliseconds(2700));
  EXPECT_EQ(middle.result->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(late.result.has_value());
  ASSERT_TRUE(RunUntil([&] { return late.result.has_value(); }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(2990));
  EXPECT_EQ(late.result->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(conn->state(), Http2Connection::State::kReady);
}

TEST_F(HostileTest, GoawayBelowAnOpenStreamMarksItUnprocessed) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1)) return;
    if (!peer.ReadUntil(kHeaders, 3)) return;
    peer.Write(EncodeFrame(kGoaway, 0, 0, Be32(1) + Be32(0)));
    peer.WriteResponseHeaders(1);
    peer.WriteMessage(1, "one");
    peer.WriteTrailers(1);
  });
  auto conn = Connect(server);
  Call low, high;
  Start(*conn, &low);
  Start(*conn, &high);
  ASSERT_TRUE(RunUntil([&] { return low.result.has_value() && high.result.has_value(); }));
  EXPECT_TRUE(low.result->status.ok()) << low.result->status;
  ASSERT_EQ(low.messages.size(), 1u);
  EXPECT_EQ(low.messages[0], "one");
  EXPECT_FALSE(low.result->unprocessed);
  EXPECT_EQ(high.result->status.code(), absl::StatusCode::kUnavailable) << high.result->status;
  EXPECT_TRUE(high.result->unprocessed);
  EXPECT_FALSE(conn->CanTakeStream());
  EXPECT_EQ(conn->StartStream({"/pkg.Svc/Method"}, {}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(HostileTest, AnsweredKeepalivesKeepTheConnection) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    for (int i = 0; i < 30; ++i) peer.ReadUntil(kPing);
  });
  ConnectionOptions options;
  options.keepalive_interval = absl::Milliseconds(100);
  options.keepalive_timeout = absl::Milliseconds(200);
  auto conn = Connect(server, options);
  conn->Connect();
  RunFor(absl::Milliseconds(800));
  EXPECT_EQ(conn->state(), Http2Connection::State::kReady) << conn->close_reason();
}

TEST_F(HostileTest, UnansweredKeepaliveFailsTheConnectionAndItsCalls) {
  RawServer server([](Peer& peer) {
    peer.answer_pings = false;
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    peer.ReadUntil(kPing);
  });
  ConnectionOptions options;
  options.keepalive_interval = absl::Milliseconds(200);
  options.keepalive_timeout = absl::Milliseconds(200);
  auto conn = Connect(server, options);
  Call call;
  const absl::Time start = absl::Now();
  Start(*conn, &call);
  ASSERT_TRUE(RunUntil([&] { return call.result.has_value(); }));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(380));
  EXPECT_LT(took, absl::Milliseconds(1500));
  EXPECT_EQ(call.result->status.code(), absl::StatusCode::kUnavailable) << call.result->status;
  EXPECT_TRUE(absl::StrContains(call.result->status.message(), "keepalive"))
      << call.result->status;
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
}

TEST_F(HostileTest, PeerClosingTheSocketFailsEveryCall) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1) || !peer.ReadUntil(kHeaders, 3)) return;
    peer.WriteResponseHeaders(1);
    peer.WriteMessage(1, "partial");
    shutdown(peer.fd(), SHUT_RDWR);
  });
  auto conn = Connect(server);
  Call a, b;
  Start(*conn, &a);
  Start(*conn, &b);
  ASSERT_TRUE(RunUntil([&] { return a.result.has_value() && b.result.has_value(); }));
  for (const Call* c : {&a, &b}) {
    EXPECT_EQ(c->result->status.code(), absl::StatusCode::kUnavailable) << c->result->status;
    EXPECT_TRUE(absl::StrContains(c->result->status.message(), "closed the connection"))
        << c->result->status;
    EXPECT_FALSE(c->result->unprocessed);  // the backend had seen both
  }
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
  EXPECT_EQ(conn->active_streams(), 0u);
  EXPECT_EQ(conn->close_reason().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(conn->StartStream({"/pkg.Svc/Method"}, {}).status().code(),
            absl::StatusCode::kUnavailable);
}

// Close() from on_headers runs inside nghttp2's processing of a read that still holds frames
// for that call and another one.
TEST_F(HostileTest, CloseInsideOnHeadersWithFramesStillBuffered) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1) || !peer.ReadUntil(kHeaders, 3)) return;
    std::string framed;
    AppendGrpcFrame("one", &framed);
    std::string all =
        EncodeFrame(kHeaders, kEndHeaders, 1,
                    HeaderBlock({{":status", "200"}, {"content-type", "application/grpc"}})) +
        EncodeFrame(kData, 0, 1, framed) +
        EncodeFrame(kHeaders, kEndHeaders | kEndStream, 1, HeaderBlock({{"grpc-status", "0"}})) +
        EncodeFrame(kHeaders, kEndHeaders, 3,
                    HeaderBlock({{":status", "200"}, {"content-type", "application/grpc"}})) +
        EncodeFrame(kData, 0, 3, framed);
    peer.Write(all);  // one write: the client reads it at once
  });
  auto conn = Connect(server);
  Call a, b;
  GrpcStreamCallbacks cb;
  int headers_seen = 0;
  cb.on_headers = [&](const auto&) {
    ++headers_seen;
    conn->Close();
    conn->Close();  // twice is harmless
  };
  cb.on_message = [&](std::string m) { a.messages.push_back(std::move(m)); };
  cb.on_done = [&](const CallResult& r) { a.result = r; };
  a.stream = *conn->StartStream({"/pkg.Svc/Method"}, std::move(cb));
  a.stream->WritesDone();
  Start(*conn, &b);
  ASSERT_TRUE(RunUntil([&] { return a.result.has_value() && b.result.has_value(); }));
  EXPECT_EQ(headers_seen, 1);
  EXPECT_EQ(a.result->status.code(), absl::StatusCode::kCancelled) << a.result->status;
  EXPECT_TRUE(a.messages.empty());
  EXPECT_EQ(b.result->status.code(), absl::StatusCode::kCancelled) << b.result->status;
  EXPECT_TRUE(b.messages.empty());
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
  RunFor(absl::Milliseconds(50));  // nothing else runs for the ended calls
}

// Close() and dropping the last handle of the connection from on_done of one call while
// another is open.
TEST_F(HostileTest, CloseAndReleaseInsideOnDone) {
  RawServer server([](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1) || !peer.ReadUntil(kHeaders, 3)) return;
    peer.WriteResponseHeaders(1);
    peer.WriteMessage(1, "one");
    peer.WriteTrailers(1);
  });
  auto conn = Connect(server);
  std::weak_ptr<Http2Connection> weak = conn;
  Call b;
  std::optional<CallResult> a_result;
  GrpcStreamCallbacks cb;
  cb.on_done = [&](const CallResult& r) {
    a_result = r;
    conn->Close();
    conn.reset();
  };
  auto a = *conn->StartStream({"/pkg.Svc/Method"}, std::move(cb));
  a->WritesDone();
  Start(*conn, &b);
  ASSERT_TRUE(RunUntil([&] { return a_result.has_value() && b.result.has_value(); }));
  EXPECT_TRUE(a_result->status.ok()) << a_result->status;
  EXPECT_EQ(b.result->status.code(), absl::StatusCode::kCancelled) << b.result->status;
  a.reset();
  b.stream.reset();
  RunFor(absl::Milliseconds(50));
  EXPECT_TRUE(weak.expired()) << "the connection outlived every handle";
}

// A backend resets a stream while the consumer holds unread messages: those bytes go back to
// the connection window (the WINDOW_UPDATE on stream 0 covers every byte sent).
TEST_F(HostileTest, ResetStreamGivesItsUnreadBytesBackToTheConnection) {
  std::atomic<uint32_t> returned{0};
  std::atomic<bool> reset_sent{false};
  constexpr uint32_t kSent = 4 * (5 + 12000);
  RawServer server([&](Peer& peer) {
    if (!peer.ReadPreface()) return;
    peer.WriteSettings();
    if (!peer.ReadUntil(kHeaders, 1)) return;
    peer.WriteResponseHeaders(1);
    for (int i = 0; i < 4; ++i) peer.WriteMessage(1, std::string(12000, 'a' + i));
    // Let the client read the data before the reset.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    peer.Write(EncodeFrame(kRstStream, 0, 1, Be32(8 /* CANCEL */)));
    reset_sent = true;
    while (returned < kSent) {
      auto f = peer.ReadUntil(kWindowUpdate);
      if (!f) return;
      if (f->stream_id != 0 || f->payload.size() != 4) continue;
      returned += ((uint8_t(f->payload[0]) & 0x7f) << 24) | (uint8_t(f->payload[1]) << 16) |
                  (uint8_t(f->payload[2]) << 8) | uint8_t(f->payload[3]);
    }
  });
  ConnectionOptions options;
  options.connection_window = 65535;
  auto conn = Connect(server, options);
  std::optional<CallResult> result;
  int got = 0;
  GrpcStreamCallbacks cb;
  cb.on_message = [&](std::string) { ++got; };  // holds after the first message
  cb.on_done = [&](const CallResult& r) { result = r; };
  auto stream = *conn->StartStream({"/pkg.Svc/Method"}, std::move(cb));
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return reset_sent.load() && conn->active_streams() == 0; }));
  ASSERT_TRUE(RunUntil([&] { return returned.load() >= kSent; }))
      << "only " << returned.load() << " of " << kSent << " bytes returned";
  EXPECT_EQ(returned.load(), kSent);
  EXPECT_EQ(got, 1);
  stream->Cancel();
  ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
  EXPECT_EQ(result->status.code(), absl::StatusCode::kCancelled) << result->status;
}

}  // namespace
}  // namespace gateway::upstream
