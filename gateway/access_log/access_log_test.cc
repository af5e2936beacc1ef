#include "gateway/access_log/access_log.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::access_log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Record Sample() {
  Record r;
  r.time = absl::FromUnixMillis(1764962799123);  // 2025-12-05T19:26:39.123Z
  r.front_end = "http";
  r.protocol = "HTTP/1.1";
  r.method = "GET";
  r.path = "/v1/shelves/1";
  r.grpc_method = "/pkg.Svc/Get";
  r.status = 200;
  r.grpc_status = 0;
  r.bytes_in = 12;
  r.bytes_out = 345;
  r.duration = absl::Microseconds(1234);
  r.ttfb = absl::Microseconds(1000);
  r.upstream = "127.0.0.1:5000";
  r.attempts = 1;
  r.request_id = "abc";
  r.user_agent = "curl/8.0";
  r.peer = "ipv4:127.0.0.1:4000";
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name + "." +
         std::to_string(getpid());
}

TEST(AccessLogFormat, TextLineHasEveryFieldInOrder) {
  std::string line;
  AppendText(Sample(), AllFields(), &line);
  EXPECT_EQ(line,
            "2025-12-05T19:26:39.123Z \"http\" \"HTTP/1.1\" \"GET\" \"/v1/shelves/1\" "
            "\"/pkg.Svc/Get\" 200 0 12 345 0.001234 0.001000 \"127.0.0.1:5000\" 1 - \"abc\" - "
            "\"curl/8.0\" \"ipv4:127.0.0.1:4000\"\n");
}

TEST(AccessLogFormat, TextAbsentValuesAreDashes) {
  Record r = Sample();
  r.grpc_status = -1;
  r.ttfb = absl::InfiniteDuration();
  std::string line;
  AppendText(r, {Field::kGrpcStatus, Field::kTtfb, Field::kCallerId}, &line);
  EXPECT_EQ(line, "- - -\n");
}

TEST(AccessLogFormat, TextEscapesHostileBytes) {
  Record r = Sample();
  r.path = "/a\"b\\c\nd\re\x01\x7f\xc3\xa9";
  r.user_agent = "x\n2025-01-01T00:00:00.000Z fake line";
  std::string line;
  AppendText(r, {Field::kPath, Field::kUserAgent}, &line);
  EXPECT_EQ(line,
            "\"/a\\\"b\\\\c\\x0ad\\x0de\\x01\\x7f\\xc3\\xa9\" "
            "\"x\\x0a2025-01-01T00:00:00.000Z fake line\"\n");
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

// Times and durations are formatted without printf and the time's seconds are cached: the
// same text as FormatTime and "%.6f" would give, across second and day boundaries.
TEST(AccessLogFormat, TimesAndDurationsAsFormatTimeAndPrintfWouldWriteThem) {
  const std::vector<Field> fields = {Field::kTime, Field::kDuration};
  const int64_t base = 1764979199998;  // 2025-12-05T23:59:59.998Z
  for (int64_t ms : {base, base + 1, base + 2, base + 3, base + 1000, base - 86400000,
                     int64_t{0}, int64_t{-1}, int64_t{-1001}}) {
    for (absl::Duration d : {absl::ZeroDuration(), absl::Microseconds(7),
                             absl::Microseconds(999999), absl::Seconds(1),
                             absl::Milliseconds(61250), absl::Hours(30) + absl::Microseconds(5),
                             absl::Microseconds(-1500)}) {
      Record r;
      r.time = absl::FromUnixMillis(ms);
      r.duration = d;
      std::string line;
      AppendText(r, fields, &line);
      const std::string want =
          absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone()),
                       " ", absl::StrFormat("%.6f", absl::ToDoubleSeconds(d)), "\n");
      EXPECT_EQ(line, want) << ms << " " << d;
    }
  }
}

TEST(AccessLogFormat, EscapesInTheMiddleOfPlainRuns) {
  Record r;
  r.path = std::string("ab\"cd\\ef\x7fgh\0ij", 14);
  std::string text;
  AppendText(r, {Field::kPath}, &text);
  EXPECT_EQ(text, "\"ab\\\"cd\\\\ef\\x7fgh\\x00ij\"\n");
  std::string json;
  AppendJson(r, {Field::kPath}, &json);
  EXPECT_EQ(json, "{\"path\":\"ab\\\"cd\\\\ef\\u007fgh\\u0000ij\"}\n");
}

TEST(AccessLogFormat, JsonObjectWithNumbersAndNulls) {
  Record r = Sample();
  r.grpc_status = -1;
  r.ttfb = absl::InfiniteDuration();
  std::string line;
  AppendJson(r, {Field::kTime, Field::kStatus, Field::kGrpcStatus, Field::kTtfb,
                 Field::kDuration, Field::kPath, Field::kCallerId},
             &line);
  EXPECT_EQ(line,
            "{\"time\":\"2025-12-05T19:26:39.123Z\",\"status\":200,\"grpc_status\":null,"
            "\"ttfb\":null,\"duration\":0.001234,\"path\":\"/v1/shelves/1\",\"caller_id\":\"\"}"
            "\n");
}

TEST(AccessLogFormat, JsonEscapesHostileBytes) {
  Record r = Sample();
  r.path = "/q\"\\\n\t\x01\x7f\xff";
  std::string line;
  AppendJson(r, {Field::kPath}, &line);
  EXPECT_EQ(line, "{\"path\":\"/q\\\"\\\\\\n\\t\\u0001\\u007f\\u00ff\"}\n");
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(AccessLogFormat, RecordIsErrorByStatus) {
  Record r = Sample();
  EXPECT_FALSE(r.IsError());
  r.grpc_status = 5;
  EXPECT_TRUE(r.IsError());
  r = Sample();
  r.status = 404;
  EXPECT_TRUE(r.IsError());
  r = Sample();
  r.status = 0;  // the client went away
  EXPECT_TRUE(r.IsError());
}

TEST(RequestId, ThirtyTwoHexDigitsAndDistinct) {
  const std::string a = NewRequestId();
  const std::string b = NewRequestId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(TraceId, FromTraceparent) {
  EXPECT_EQ(TraceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may append fields.
  EXPECT_EQ(TraceIdFromTraceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(TraceIdFromTraceparent(""), "");
  EXPECT_EQ(TraceIdFromTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(TraceIdFromTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(TraceIdFromTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(TraceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736"), "");
}

TEST(AccessLog, WritesLinesToFileAndReopensAfterRename) {
  const std::string path = TempPath("access");
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  AccessLog::Options options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_TRUE(log.ok()) << log.status();
  Record r = Sample();
  r.request_id = "first";
  (*log)->Push(std::move(r));
  (*log)->Flush();
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  r = Sample();
  r.request_id = "second";
  (*log)->Push(std::move(r));  // written before the reopen: still the renamed file
  (*log)->Reopen();
  (*log)->Flush();
  r = Sample();
  r.request_id = "third";
  (*log)->Push(std::move(r));
  (*log)->Flush();
  const std::string rotated = ReadFile(path + ".1");
  const std::string current = ReadFile(path);
  EXPECT_THAT(rotated, HasSubstr("\"first\""));
  EXPECT_THAT(rotated, HasSubstr("\"second\""));
  EXPECT_THAT(current, HasSubstr("\"third\""));
  EXPECT_THAT(current, Not(HasSubstr("\"first\"")));
  EXPECT_EQ((*log)->written(), 3u);
  EXPECT_EQ((*log)->dropped(), 0u);
}

TEST(AccessLog, ReaderOfAPipeGoneDoesNotEndTheProcess) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  AccessLog::Options options;
  options.path = "/proc/self/fd/" + std::to_string(fds[1]);
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_TRUE(log.ok()) << log.status();
  close(fds[1]);  // the log holds its own descriptor of the pipe
  close(fds[0]);  // nobody reads any more
  (*log)->Push(Sample());
  (*log)->Flush();  // the write fails with EPIPE; SIGPIPE would have ended the test
  (*log)->Push(Sample());
  (*log)->Flush();
  EXPECT_EQ((*log)->written(), 2u);
}

TEST(AccessLog, UnwritableFileIsAnErrorNamingIt) {
  AccessLog::Options options;
  options.path = "/nonexistent-dir/access.log";
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(log.status().message(), HasSubstr("access_log.path: cannot open "
                                                "/nonexistent-dir/access.log"));
}

TEST(AccessLog, FullQueueDropsAndCountsWithoutBlocking) {
  const std::string path = TempPath("access-drops");
  AccessLog::Options options;
  options.path = path;
  options.queue_size = 4;
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_TRUE(log.ok()) << log.status();
  // The writer looks at the queue every few milliseconds: 10000 pushes in a burst overflow
  // a queue of 4; none of them waits for the writer.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) (*log)->Push(Sample());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  (*log)->Flush();
  EXPECT_GT((*log)->dropped(), 0u);
  EXPECT_EQ((*log)->dropped() + (*log)->written(), 10000u);
  EXPECT_LT(elapsed, std::chrono::seconds(1));
  const std::string text = ReadFile(path);
  EXPECT_EQ(static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n')),
            (*log)->written());
  std::remove(path.c_str());
}

TEST(AccessLog, SamplingKeepsAboutTheRateAndEveryError) {
  AccessLog::Options options;
  options.path = TempPath("access-sampled");
  options.sample_rate = 0.25;
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_TRUE(log.ok()) << log.status();
  int kept = 0;
  for (int i = 0; i < 20000; ++i) kept += (*log)->Sample(/*error=*/false) ? 1 : 0;
  EXPECT_GT(kept, 4500);
  EXPECT_LT(kept, 5500);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE((*log)->Sample(/*error=*/true));
  std::remove(options.path.c_str());
}

TEST(AccessLog, SampledErrorsAndRateZero) {
  AccessLog::Options options;
  options.path = TempPath("access-sampled0");
  options.sample_rate = 0;
  options.sample_errors = true;
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Start(options);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE((*log)->Sample(/*error=*/true));
    ASSERT_FALSE((*log)->Sample(/*error=*/false));
  }
  std::remove(options.path.c_str());
}

}  // namespace
}  // namespace gateway::access_log
