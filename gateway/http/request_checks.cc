#include "gateway/http/request_checks.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace gateway::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Checks one path segment (between slashes); "%2e" counts as '.'.
absl::Status CheckSegment(absl::string_view segment, bool allow_encoded_slashes) {
  int dots = 0;       // '.' characters, raw or encoded
  int length = 0;     // decoded length
  for (std::size_t i = 0; i < segment.size(); ++i) {
    const char c = segment[i];
    ++length;
    if (c == '%') {
      if (i + 2 >= segment.size()) {
        return absl::InvalidArgumentError("truncated percent escape in path");
      }
      const int hi = HexValue(segment[i + 1]);
      const int lo = HexValue(segment[i + 2]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("invalid percent escape in path");
      const int byte = hi * 16 + lo;
      if (byte == 0) return absl::InvalidArgumentError("encoded NUL (%00) in path");
      if (byte == '/' && !allow_encoded_slashes) {
        return absl::InvalidArgumentError("encoded slash (%2F) in path");
      }
      if (byte == '\\') return absl::InvalidArgumentError("encoded backslash (%5C) in path");
      if (byte == '.') ++dots;
      i += 2;
      continue;
    }
    if (c == '.') ++dots;
  }
  if (length > 0 && dots == length && length <= 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("path segment \"", length == 1 ? "." : "..", "\" is not allowed"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RequestTarget> CheckRequestTarget(absl::string_view target,
                                                 bool allow_encoded_slashes) {
  if (target.empty() || target[0] != '/') {
    return absl::InvalidArgumentError("request target must be a path starting with '/'");
  }
  for (char c : target) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return absl::InvalidArgumentError("control, space or non-ASCII byte in request target");
    }
    if (c == '#') return absl::InvalidArgumentError("fragment ('#') in request target");
  }
  RequestTarget out;
  const std::size_t question = target.find('?');
  out.path = target.substr(0, question);
  if (question != absl::string_view::npos) out.query = target.substr(question + 1);
  if (out.path.find('\\') != absl::string_view::npos) {
    return absl::InvalidArgumentError("backslash in path");
  }
  // Segments after the leading '/'.
  absl::string_view rest = out.path.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const absl::string_view segment = rest.substr(0, slash);
    if (segment.empty() && slash != absl::string_view::npos) {
      return absl::InvalidArgumentError("empty path segment (\"//\")");
    }
    absl::Status status = CheckSegment(segment, allow_encoded_slashes);
    if (!status.ok()) return status;
    if (slash == absl::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  if (value.size() < 2 || value.size() > 9) {
    return absl::InvalidArgumentError(
        absl::StrCat("grpc-timeout \"", absl::CEscape(value), "\" is not 1-8 digits and a unit"));
  }
  int64_t amount = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (!absl::ascii_isdigit(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc-timeout \"", absl::CEscape(value), "\" is not 1-8 digits and a unit"));
    }
    amount = amount * 10 + (c - '0');
  }
  switch (value.back()) {
    case 'H':
      return absl::Hours(amount);
    case 'M':
      return absl::Minutes(amount);
    case 'S':
      return absl::Seconds(amount);
    case 'm':
      return absl::Milliseconds(amount);
    case 'u':
      return absl::Microseconds(amount);
    case 'n':
      return absl::Nanoseconds(amount);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "grpc-timeout \"", absl::CEscape(value), "\" has no unit (H, M, S, m, u or n)"));
  }
}

absl::StatusOr<absl::Duration> ParseHttpTimeout(absl::string_view header,
                                                absl::string_view value) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        header, " \"", absl::CEscape(value.substr(0, 64)),
        "\" is not a duration such as 2.5s, 250ms or 1m30s (units h, m, s, ms, us, ns)"));
  };
  if (value.empty() || value.size() > 32) return invalid();
  // The grammar's characters only (absl::ParseDuration also takes signs, "inf" and a bare
  // "0"), and a unit after the last number.
  for (char c : value) {
    if (!absl::ascii_isdigit(c) && c != '.' && !absl::ascii_islower(c)) return invalid();
  }
  if (!absl::ascii_islower(value.back()) || !absl::ascii_isdigit(value.front())) {
    return invalid();
  }
  for (size_t i = 0; i < value.size(); ++i) {  // a fraction has digits on both sides
    if (value[i] == '.' && !absl::ascii_isdigit(value[i + 1])) return invalid();
  }
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return invalid();
  }
  return d;
}

bool IsValidMetadataValue(absl::string_view value) {
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

}  // namespace gateway::http
