// The gateway's process log: one line per event on stderr, with a level, as text or JSON.
//
//   text (default):  2026-11-28T04:38:54.437Z info gatewayd: <msg>[ key=value ...]
//   json:            {"time":"2026-11-28T04:38:54.437Z","level":"info","msg":"<msg>",
//                     "key":"value",...}
//
// (UTC, milliseconds; a text value with a space, quote, '=' or a control byte is written in
// double quotes with \" \\ and \xHH escapes; JSON strings are escaped per RFC 8259.) Lines
// below the configured level are dropped. Tests and operators grep these lines, so a message
// says what happened in words ("backend \"b\": endpoint 127.0.0.1:5 unhealthy ...").
//
// Thread-safety: thread-safe (one write per line). ConfigureLogging may be called at any
// time (startup, reload); lines already being written keep the settings they started with.
//
// Example:
//   gateway::ConfigureLogging({.format = LogFormat::kJson, .level = LogLevel::kInfo});
//   gateway::LogWarn("redis unavailable", {{"address", "127.0.0.1:6379"}});

#ifndef GATEWAY_LOG_H_
#define GATEWAY_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText = 0, kJson = 1 };

struct LogOptions {
  LogFormat format = LogFormat::kText;
  // Lines below this level are dropped.
  LogLevel level = LogLevel::kInfo;
};

// A structured field of a line: a key (a plain identifier) and its value.
using LogField = std::pair<absl::string_view, absl::string_view>;

// Sets the process-wide format and level (default: text, info).
void ConfigureLogging(const LogOptions& options);

// "debug", "info", "warn", "error".
absl::string_view LogLevelName(LogLevel level);

// Whether a line of `level` would be written (to skip building an expensive message).
bool LogEnabled(LogLevel level);

// Writes one line to stderr when `level` is enabled.
void Log(LogLevel level, absl::string_view msg, std::initializer_list<LogField> fields = {});

inline void LogDebug(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kDebug, msg, fields);
}
inline void LogInfo(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, msg, fields);
}
inline void LogWarn(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarn, msg, fields);
}
inline void LogError(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, msg, fields);
}

// An info line (the form of the gateway's older call sites).
inline void LogLine(absl::string_view text) { Log(LogLevel::kInfo, text); }

// The line Log would write (without the final newline), for tests.
std::string FormatLogLine(absl::Time time, LogFormat format, LogLevel level,
                          absl::string_view msg, std::initializer_list<LogField> fields);

}  // namespace gateway

#endif  // GATEWAY_LOG_H_
