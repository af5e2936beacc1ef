#include "gateway/log.h"

#include "gtest/gtest.h"

namespace gateway {
namespace {

absl::Time At() { return absl::FromUnixMillis(1764565134437); }  // 2025-12-01T04:58:54.437Z

TEST(Log, TextLineKeepsTheGatewaydPrefixAndAddsTheLevel) {
  EXPECT_EQ(FormatLogLine(At(), LogFormat::kText, LogLevel::kInfo, "reload applied: 3 backends",
                          {}),
            "2025-12-01T04:58:54.437Z info gatewayd: reload applied: 3 backends");
  EXPECT_EQ(FormatLogLine(At(), LogFormat::kText, LogLevel::kWarn, "redis down", {}),
            "2025-12-01T04:58:54.437Z warn gatewayd: redis down");
}

TEST(Log, TextFieldsQuoteValuesWithSpacesQuotesAndControlBytes) {
  EXPECT_EQ(FormatLogLine(At(), LogFormat::kText, LogLevel::kError, "m",
                          {{"plain", "a.b:1"},
                           {"space", "a b"},
                           {"quote", "say \"hi\"\\"},
                           {"ctl", "x\ny"},
                           {"empty", ""}}),
            "2025-12-01T04:58:54.437Z error gatewayd: m plain=a.b:1 space=\"a b\" "
            "quote=\"say \\\"hi\\\"\\\\\" ctl=\"x\\x0ay\" empty=\"\"");
}

TEST(Log, JsonLineHasTimeLevelMsgAndFieldsEscaped) {
  EXPECT_EQ(FormatLogLine(At(), LogFormat::kJson, LogLevel::kDebug, "line \"1\"\n\x01",
                          {{"backend", "b\\1"}, {"state", "unhealthy"}}),
            "{\"time\":\"2025-12-01T04:58:54.437Z\",\"level\":\"debug\","
            "\"msg\":\"line \\\"1\\\"\\n\\u0001\",\"backend\":\"b\\\\1\",\"state\":\"unhealthy\"}");
}

TEST(Log, LevelFiltersLowerLevels) {
  ConfigureLogging({LogFormat::kText, LogLevel::kWarn});
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  ConfigureLogging({LogFormat::kText, LogLevel::kDebug});
  EXPECT_TRUE(LogEnabled(LogLevel::kDebug));
  ConfigureLogging({});
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));
}

TEST(Log, LevelNames) {
  EXPECT_EQ(LogLevelName(LogLevel::kDebug), "debug");
  EXPECT_EQ(LogLevelName(LogLevel::kInfo), "info");
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "warn");
  EXPECT_EQ(LogLevelName(LogLevel::kError), "error");
}

}  // namespace
}  // namespace gateway
