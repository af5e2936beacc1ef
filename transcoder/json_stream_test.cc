#include "transcoder/json_stream.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;

TEST(StreamFramer, EmptyArrayStreamIsAValidArray) {
  StreamFramer f(StreamFormat::kJsonArray);
  EXPECT_EQ(f.End(), "[]");
}

TEST(StreamFramer, ArrayIsWrittenIncrementally) {
  StreamFramer f(StreamFormat::kJsonArray);
  EXPECT_EQ(f.Message("{\"a\":1}"), "[{\"a\":1}");
  EXPECT_EQ(f.Message("2"), ",2");
  EXPECT_EQ(f.End(), "]");
}

TEST(StreamFramer, ErrorBeforeAnyMessageIsStillAnArray) {
  StreamFramer f(StreamFormat::kJsonArray);
  EXPECT_EQ(f.Error("{\"code\":2}"), "[{\"error\":{\"code\":2}}]");
}

TEST(StreamFramer, NdjsonKeepsPrettyMessagesOnOneLine) {
  StreamFramer f(StreamFormat::kNdjson);
  EXPECT_EQ(f.Message("{\n  \"a\": 1\n}"), "{  \"a\": 1}\n");
  EXPECT_EQ(f.Error("{\n\"code\":13}"), "{\"error\":{\"code\":13}}\n");
  EXPECT_EQ(f.End(), "");
}

TEST(StreamFramer, SsePrefixesEveryLineOfAMessage) {
  StreamFramer f(StreamFormat::kServerSentEvents);
  EXPECT_EQ(f.Message("{\n\"a\":1\n}"), "data: {\ndata: \"a\":1\ndata: }\n\n");
  EXPECT_EQ(f.End(), "");
}

struct AcceptCase {
  std::string accept;
  StreamFormat expected;
};

class ChooseStreamFormatTest : public ::testing::TestWithParam<AcceptCase> {};

TEST_P(ChooseStreamFormatTest, FollowsTheAcceptHeader) {
  EXPECT_EQ(ChooseStreamFormat(GetParam().accept, StreamFormat::kJsonArray),
            GetParam().expected)
      << GetParam().accept;
}

INSTANTIATE_TEST_SUITE_P(
    Accept, ChooseStreamFormatTest,
    ::testing::Values(AcceptCase{"", StreamFormat::kJsonArray},
                      AcceptCase{"*/*", StreamFormat::kJsonArray},
                      AcceptCase{"text/event-stream", StreamFormat::kServerSentEvents},
                      AcceptCase{"Text/Event-Stream; q=1", StreamFormat::kServerSentEvents},
                      AcceptCase{"application/x-ndjson", StreamFormat::kNdjson},
                      AcceptCase{"application/jsonl", StreamFormat::kNdjson},
                      AcceptCase{"text/html, application/x-ndjson;q=0.9",
                                 StreamFormat::kNdjson},
                      AcceptCase{"application/json, text/event-stream",
                                 StreamFormat::kJsonArray},
                      AcceptCase{"text/html", StreamFormat::kJsonArray}));

TEST(StreamContentType, NamesTheMediaType) {
  EXPECT_EQ(StreamContentType(StreamFormat::kJsonArray), "application/json");
  EXPECT_EQ(StreamContentType(StreamFormat::kNdjson), "application/x-ndjson");
  EXPECT_EQ(StreamContentType(StreamFormat::kServerSentEvents), "text/event-stream");
}

// Feeds `body` in chunks of `chunk` bytes, collecting messages; returns them
// joined with "|", or "ERROR: <message>".
std::string ReadAll(StreamFormat format, const std::string& body, size_t chunk,
                    size_t max_message = 1 << 20) {
  JsonStreamReader reader(format, max_message);
  std::vector<std::string> messages;
  auto drain = [&]() -> absl::Status {
    while (true) {
      absl::StatusOr<std::optional<std::string>> next = reader.Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) return absl::OkStatus();
      messages.push_back(**next);
    }
  };
  for (size_t i = 0; i < body.size(); i += chunk) {
    reader.Append(body.substr(i, chunk));
    if (absl::Status s = drain(); !s.ok()) return "ERROR: " + std::string(s.message());
  }
  if (absl::Status s = reader.Finish(); !s.ok()) return "ERROR: " + std::string(s.message());
  if (absl::Status s = drain(); !s.ok()) return "ERROR: " + std::string(s.message());
  return absl::StrJoin(messages, "|");
}

struct ReaderCase {
  StreamFormat format;
  std::string body;
  std::string expected;
};

class JsonStreamReaderTest : public ::testing::TestWithParam<ReaderCase> {};

TEST_P(JsonStreamReaderTest, SplitsMessagesWhateverTheChunking) {
  const ReaderCase& c = GetParam();
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{1000}}) {
    EXPECT_EQ(ReadAll(c.format, c.body, chunk), c.expected)
        << c.body << " in chunks of " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Reader, JsonStreamReaderTest,
    ::testing::Values(
        ReaderCase{StreamFormat::kJsonArray, "[]", ""},
        ReaderCase{StreamFormat::kJsonArray, " [ ] ", ""},
        ReaderCase{StreamFormat::kJsonArray, R"([{"a":1}])", R"({"a":1})"},
        ReaderCase{StreamFormat::kJsonArray, R"([{"a":1},{"b":[2,{"c":3}]}])",
                   R"({"a":1}|{"b":[2,{"c":3}]})"},
        ReaderCase{StreamFormat::kJsonArray, "[\n {\"a\":\"]}[{\\\"\"} ,\n{}\n]",
                   R"({"a":"]}[{\""}|{})"},
        ReaderCase{StreamFormat::kJsonArray, "[1, \"x\", true]", "1|\"x\"|true"},
        ReaderCase{StreamFormat::kJsonArray, "{\"a\":1}",
                   "ERROR: invalid stream body at byte 0: a client stream body must be a "
                   "JSON array"},
        ReaderCase{StreamFormat::kJsonArray, "[{} {}]",
                   "ERROR: invalid stream body at byte 4: expected ',' or ']'"},
        ReaderCase{StreamFormat::kJsonArray, "[{},]",
                   "ERROR: invalid stream body at byte 4: expected a message"},
        ReaderCase{StreamFormat::kJsonArray, "[,{}]",
                   "ERROR: invalid stream body at byte 1: expected a message"},
        ReaderCase{StreamFormat::kJsonArray, "[{}] x",
                   "ERROR: invalid stream body at byte 5: data after the end of the array"},
        ReaderCase{StreamFormat::kJsonArray, "[{}",
                   "ERROR: invalid stream body at byte 3: the JSON array is not closed"},
        ReaderCase{StreamFormat::kJsonArray, "[{\"a\":",
                   "ERROR: invalid stream body at byte 1: the body ends inside a message"},
        ReaderCase{StreamFormat::kJsonArray, "",
                   "ERROR: invalid stream body at byte 0: a client stream body must be a "
                   "JSON array"},
        ReaderCase{StreamFormat::kNdjson, "", ""},
        ReaderCase{StreamFormat::kNdjson, "{\"a\":1}\n{\"a\":2}\n", R"({"a":1}|{"a":2})"},
        ReaderCase{StreamFormat::kNdjson, "{\"a\":1}\r\n\r\n{\"a\":2}", R"({"a":1}|{"a":2})"},
        ReaderCase{StreamFormat::kNdjson, "{\"s\":\"line\\nbreak\"}\n",
                   R"({"s":"line\nbreak"})"},
        ReaderCase{StreamFormat::kNdjson, "1\n2", "1|2"},
        ReaderCase{StreamFormat::kNdjson, "{\"a\":1}\n{\"a\"",
                   "ERROR: invalid stream body at byte 8: the body ends inside a message"}));

TEST(JsonStreamReader, OversizedMessageIsRejectedBeforeItIsComplete) {
  std::string body = "[{\"a\":\"" + std::string(5000, 'x');
  EXPECT_EQ(ReadAll(StreamFormat::kJsonArray, body, 100, 1024),
            "ERROR: invalid stream body at byte 1: a message is larger than 1024 bytes");
}

TEST(JsonStreamReader, ErrorsAreSticky) {
  JsonStreamReader reader(StreamFormat::kJsonArray);
  reader.Append("x");
  EXPECT_FALSE(reader.Next().ok());
  reader.Append("[{}]");
  EXPECT_FALSE(reader.Next().ok());
  EXPECT_FALSE(reader.Finish().ok());
}

TEST(JsonStreamReader, LongStreamKeepsBufferBounded) {
  JsonStreamReader reader(StreamFormat::kNdjson);
  std::string line = "{\"payload\":\"" + std::string(1000, 'p') + "\"}\n";
  int count = 0;
  for (int i = 0; i < 5000; ++i) {
    reader.Append(line);
    while (true) {
      absl::StatusOr<std::optional<std::string>> m = reader.Next();
      ASSERT_TRUE(m.ok());
      if (!m->has_value()) break;
      ++count;
    }
  }
  EXPECT_EQ(count, 5000);
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(JsonStreamReader, DeepNestingIsSplitWithoutRecursion) {
  std::string body = "[" + std::string(200000, '[') + std::string(200000, ']') + "]";
  std::string out = ReadAll(StreamFormat::kJsonArray, body, 4096, 1 << 20);
  EXPECT_EQ(out.size(), 400000u);
}

}  // namespace
}  // namespace gateway::transcoder
