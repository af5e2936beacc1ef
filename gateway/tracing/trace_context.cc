#include "gateway/tracing/trace_context.h"

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gateway::tracing {
namespace {

// The value of a lower-case hex digit, or -1.
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses 2*N lower-case hex digits into `out`.
template <size_t N>
bool ParseHex(absl::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(s[2 * i]);
    const int lo = HexDigit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

bool ValidKey(absl::string_view key) {
  const size_t at = key.find('@');
  if (at == absl::string_view::npos) {
    if (key.empty() || key.size() > 256 || !IsLcAlpha(key[0])) return false;
    for (char c : key) {
      if (!IsKeyChar(c)) return false;
    }
    return true;
  }
  const absl::string_view tenant = key.substr(0, at);
  const absl::string_view system = key.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241) return false;
  if (!IsLcAlpha(tenant[0]) && !IsDigit(tenant[0])) return false;
  for (char c : tenant) {
    if (!IsKeyChar(c)) return false;
  }
  if (system.empty() || system.size() > 14 || !IsLcAlpha(system[0])) return false;
  for (char c : system) {
    if (!IsKeyChar(c)) return false;  // also refuses a second '@'
  }
  return true;
}

bool ValidValue(absl::string_view value) {
  if (value.empty() || value.size() > 256) return false;
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == ',' || c == '=') return false;
  }
  return value.back() != ' ';
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<TraceContext> ParseTraceparent(absl::string_view value) {
  // 00-<32>-<16>-<2>
  if (value.size() != 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  if (value.substr(0, 2) != "00") return std::nullopt;
  TraceContext context;
  std::array<uint8_t, 1> flags{};
  if (!ParseHex(value.substr(3, 32), &context.trace_id) ||
      !ParseHex(value.substr(36, 16), &context.span_id) ||
      !ParseHex(value.substr(53, 2), &flags)) {
    return std::nullopt;
  }
  if (IsZero(context.trace_id) || IsZero(context.span_id)) return std::nullopt;
  context.flags = flags[0];
  return context;
}

std::string FormatTraceparent(const TraceContext& context) {
  std::string out = "00-";
  out += ToHex(context.trace_id);
  out += '-';
  out += ToHex(context.span_id);
  out += '-';
  out += ToHex(&context.flags, 1);
  return out;
}

std::string NormalizeTracestate(absl::string_view value) {
  // A header of 32 members of at most 512 bytes each, with separators, fits in 17 KiB.
  if (value.size() > 32 * 520) return "";
  std::vector<absl::string_view> members;
  absl::flat_hash_set<absl::string_view> keys;
  for (absl::string_view member : absl::StrSplit(value, ',')) {
    member = TrimOws(member);
    if (member.empty()) continue;
    const size_t eq = member.find('=');
    if (eq == absl::string_view::npos) return "";
    const absl::string_view key = member.substr(0, eq);
    if (!ValidKey(key) || !ValidValue(member.substr(eq + 1))) return "";
    if (!keys.insert(key).second) return "";
    if (members.size() == kMaxTracestateMembers) return "";
    members.push_back(member);
  }
  return absl::StrJoin(members, ",");
}

std::string ToHex(const uint8_t* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

}  // namespace gateway::tracing
