#include "gateway/log.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace gateway {
namespace {

std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (u < 0x20 || u == 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", u);
        } else {
          out->push_back(c);  // UTF-8 passes as is.
        }
    }
  }
  out->push_back('"');
}

bool NeedsQuotes(absl::string_view s) {
  if (s.empty()) return true;
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void AppendTextValue(absl::string_view s, std::string* out) {
  if (!NeedsQuotes(s)) {
    out->append(s.data(), s.size());
    return;
  }
  out->push_back('"');
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(out, "\\x%02x", u);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void ConfigureLogging(const LogOptions& options) {
  g_format.store(static_cast<int>(options.format), std::memory_order_relaxed);
  g_level.store(static_cast<int>(options.level), std::memory_order_relaxed);
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatLogLine(absl::Time time, LogFormat format, LogLevel level,
                          absl::string_view msg, std::initializer_list<LogField> fields) {
  const std::string stamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
  std::string line;
  line.reserve(64 + msg.size());
  if (format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"time\":\"", stamp, "\",\"level\":\"", LogLevelName(level),
                    "\",\"msg\":");
    AppendJsonString(msg, &line);
    for (const LogField& f : fields) {
      line.push_back(',');
      AppendJsonString(f.first, &line);
      line.push_back(':');
      AppendJsonString(f.second, &line);
    }
    line.push_back('}');
    return line;
  }
  absl::StrAppend(&line, stamp, " ", LogLevelName(level), " gatewayd: ", msg);
  for (const LogField& f : fields) {
    absl::StrAppend(&line, " ", f.first, "=");
    AppendTextValue(f.second, &line);
  }
  return line;
}

void Log(LogLevel level, absl::string_view msg, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string line = FormatLogLine(
      absl::Now(), static_cast<LogFormat>(g_format.load(std::memory_order_relaxed)), level,
      msg, fields);
  line.push_back('\n');
  // One fwrite per line: stdio locks the stream, so lines of different threads never mix.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace gateway
