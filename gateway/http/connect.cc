#include "gateway/http/connect.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gateway::http::connect {

namespace {

// The 16 non-OK codes by number (1..16).
constexpr absl::string_view kNames[] = {
    "ok",                 "canceled",       "unknown",           "invalid_argument",
    "deadline_exceeded",  "not_found",      "already_exists",    "permission_denied",
    "resource_exhausted", "failed_precondition", "aborted",      "out_of_range",
    "unimplemented",      "internal",       "unavailable",       "data_loss",
    "unauthenticated",
};

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// Reads a base-128 varint at *pos of `in`.
bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    *value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Walks the fields of a serialized message; calls `f(number, bytes)` for each
// length-delimited one. False when the wire format is broken.
template <typename F>
bool ForEachLengthDelimited(absl::string_view in, F f) {
  size_t pos = 0;
  while (pos < in.size()) {
    uint64_t tag;
    if (!ReadVarint(in, &pos, &tag)) return false;
    const uint32_t type = tag & 7;
    uint64_t n;
    switch (type) {
      case 0:
        if (!ReadVarint(in, &pos, &n)) return false;
        break;
      case 1:
        if (in.size() - pos < 8) return false;
        pos += 8;
        break;
      case 5:
        if (in.size() - pos < 4) return false;
        pos += 4;
        break;
      case 2:
        if (!ReadVarint(in, &pos, &n) || n > in.size() - pos) return false;
        f(static_cast<uint32_t>(tag >> 3), in.substr(pos, n));
        pos += n;
        break;
      default:
        return false;
    }
  }
  return true;
}

// The "details" array of a google.rpc.Status (field 3: repeated google.protobuf.Any, whose
// type_url is field 1 and value field 2), or empty.
std::string DetailsJson(absl::string_view details_bin) {
  std::string entries;
  bool ok = ForEachLengthDelimited(details_bin, [&](uint32_t number, absl::string_view any) {
    if (number != 3) return;
    absl::string_view type_url, value;
    if (!ForEachLengthDelimited(any, [&](uint32_t n, absl::string_view v) {
          if (n == 1) type_url = v;
          if (n == 2) value = v;
        })) {
      return;
    }
    // The type's full name: what follows the last '/' of the type URL.
    const size_t slash = type_url.rfind('/');
    if (slash != absl::string_view::npos) type_url.remove_prefix(slash + 1);
    if (type_url.empty()) return;
    std::string b64 = absl::Base64Escape(value);
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    if (!entries.empty()) entries.push_back(',');
    entries.append("{\"type\":");
    AppendJsonString(type_url, &entries);
    entries.append(",\"value\":\"");
    entries.append(b64);
    entries.append("\"}");
  });
  if (!ok) return "";
  return entries;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> QueryDecode(absl::string_view name, absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] != '%') {
      out.push_back(in[i]);
    } else {
      const int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(in[i + 2]) : -1;
      if (lo < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "query parameter ", name, ": malformed percent escape at byte ", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return out;
}

}  // namespace

std::optional<ContentType> ParseContentType(absl::string_view content_type) {
  absl::string_view type = content_type.substr(0, content_type.find(';'));
  type = absl::StripAsciiWhitespace(type);
  ContentType result;
  if (!absl::ConsumePrefix(&type, "application/")) {
    // Case-insensitively.
    if (type.size() < 12 || !absl::EqualsIgnoreCase(type.substr(0, 12), "application/")) {
      return std::nullopt;
    }
    type.remove_prefix(12);
  }
  if (type.size() >= 8 && absl::EqualsIgnoreCase(type.substr(0, 8), "connect+")) {
    result.streaming = true;
    type.remove_prefix(8);
  }
  if (absl::EqualsIgnoreCase(type, "proto")) {
    result.codec = Codec::kProto;
  } else if (absl::EqualsIgnoreCase(type, "json")) {
    result.codec = Codec::kJson;
  } else {
    return std::nullopt;
  }
  return result;
}

std::string ContentTypeName(ContentType type) {
  return absl::StrCat("application/", type.streaming ? "connect+" : "",
                      type.codec == Codec::kJson ? "json" : "proto");
}

absl::StatusOr<absl::Duration> ParseTimeoutMs(absl::string_view value) {
  uint64_t ms = 0;
  if (value.empty() || value.size() > 10 ||
      !std::all_of(value.begin(), value.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(value, &ms)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed connect-timeout-ms header \"", absl::CHexEscape(value.substr(0, 32)),
        "\": 1 to 10 digits (milliseconds) expected"));
  }
  return absl::Milliseconds(ms);
}

absl::string_view CodeName(absl::StatusCode code) {
  const int n = static_cast<int>(code);
  if (n < 1 || n > 16) return "unknown";
  return kNames[n];
}

std::optional<absl::StatusCode> CodeFromName(absl::string_view name) {
  for (int n = 1; n <= 16; ++n) {
    if (kNames[n] == name) return static_cast<absl::StatusCode>(n);
  }
  return std::nullopt;
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnknown: return 500;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kFailedPrecondition: return 400;
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kInternal: return 500;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDataLoss: return 500;
    case absl::StatusCode::kUnauthenticated: return 401;
    default: return 500;
  }
}

std::string ErrorJson(const absl::Status& status, absl::string_view details_bin) {
  std::string out = "{\"code\":\"";
  absl::StrAppend(&out, CodeName(status.code()));
  out.push_back('"');
  if (!status.message().empty()) {
    out.append(",\"message\":");
    AppendJsonString(status.message(), &out);
  }
  if (!details_bin.empty()) {
    const std::string details = DetailsJson(details_bin);
    if (!details.empty()) absl::StrAppend(&out, ",\"details\":[", details, "]");
  }
  out.push_back('}');
  return out;
}

std::string EndStreamJson(const absl::Status& status, absl::string_view details_bin,
                          const std::vector<std::pair<std::string, std::string>>& trailers) {
  std::string out = "{";
  if (!status.ok()) absl::StrAppend(&out, "\"error\":", ErrorJson(status, details_bin));
  if (!trailers.empty()) {
    if (!status.ok()) out.push_back(',');
    out.append("\"metadata\":{");
    // Values of one name together, in the order names first appear.
    std::vector<bool> done(trailers.size(), false);
    bool first = true;
    for (size_t i = 0; i < trailers.size(); ++i) {
      if (done[i]) continue;
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(trailers[i].first, &out);
      out.append(":[");
      for (size_t j = i; j < trailers.size(); ++j) {
        if (trailers[j].first != trailers[i].first) continue;
        done[j] = true;
        if (j != i) out.push_back(',');
        AppendJsonString(trailers[j].second, &out);
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  out.push_back('}');
  return out;
}

std::string MakeEnvelope(uint8_t flags, absl::string_view data) {
  std::string out;
  out.reserve(5 + data.size());
  const uint32_t n = static_cast<uint32_t>(data.size());
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(data.data(), data.size());
  return out;
}

absl::Status EnvelopeReader::CheckPrefix() {
  if (buffer_.size() - pos_ < 5) return absl::OkStatus();
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + pos_);
  if ((p[0] & ~(kFlagCompressed | kFlagEndStream)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Connect envelope with unknown flags 0x", absl::Hex(p[0]),
        " (only 0x01 compressed and 0x02 end-stream are defined)"));
  }
  const uint32_t n = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) |
                     uint32_t{p[4]};
  if (n > max_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Connect message of ", n, " bytes is larger than the limit of ", max_,
        " bytes (limits.max_message_bytes)"));
  }
  return absl::OkStatus();
}

absl::Status EnvelopeReader::Feed(absl::string_view data) {
  if (pos_ > 0 && pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(data.data(), data.size());
  return CheckPrefix();
}

std::optional<Envelope> EnvelopeReader::Next() {
  if (buffer_.size() - pos_ < 5) return std::nullopt;
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + pos_);
  const uint32_t n = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) |
                     uint32_t{p[4]};
  if (n > max_ || buffer_.size() - pos_ - 5 < n) return std::nullopt;
  Envelope e;
  e.flags = p[0];
  e.data = buffer_.substr(pos_ + 5, n);
  pos_ += 5 + n;
  if (!CheckPrefix().ok()) {
    // The next prefix is bad: Feed reported it already, or will be told by CheckComplete.
  }
  return e;
}

absl::Status EnvelopeReader::CheckComplete() const {
  if (buffer_.size() != pos_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Connect request body ends inside an envelope (", buffer_.size() - pos_,
        " bytes left over)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GetRequest> ParseGetQuery(absl::string_view query) {
  GetRequest out;
  bool have_connect = false, have_encoding = false, have_message = false, have_base64 = false,
       have_compression = false, base64 = false;
  std::string message;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    const absl::string_view name = pair.substr(0, eq);
    const absl::string_view raw = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    bool* seen = name == "connect"       ? &have_connect
                 : name == "encoding"    ? &have_encoding
                 : name == "message"     ? &have_message
                 : name == "base64"      ? &have_base64
                 : name == "compression" ? &have_compression
                                         : nullptr;
    if (seen == nullptr) continue;
    if (*seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter ", name, " given twice"));
    }
    *seen = true;
    absl::StatusOr<std::string> value = QueryDecode(name, raw);
    if (!value.ok()) return value.status();
    if (name == "connect") {
      if (*value != "v1") {
        return absl::InvalidArgumentError(absl::StrCat(
            "query parameter connect: \"", absl::CHexEscape(value->substr(0, 32)),
            "\" is not a supported protocol version (v1)"));
      }
    } else if (name == "encoding") {
      if (*value == "proto") {
        out.codec = Codec::kProto;
      } else if (*value == "json") {
        out.codec = Codec::kJson;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "query parameter encoding: \"", absl::CHexEscape(value->substr(0, 32)),
            "\" is neither proto nor json"));
      }
    } else if (name == "message") {
      message = *std::move(value);
    } else if (name == "base64") {
      if (*value != "0" && *value != "1") {
        return absl::InvalidArgumentError("query parameter base64: 0 or 1 expected");
      }
      base64 = *value == "1";
    } else {
      out.compression = *std::move(value);
      if (out.compression == "identity") out.compression.clear();
    }
  }
  if (!have_connect) {
    return absl::InvalidArgumentError("query parameter connect=v1 missing");
  }
  if (!have_encoding) return absl::InvalidArgumentError("query parameter encoding missing");
  if (!have_message) return absl::InvalidArgumentError("query parameter message missing");
  if (base64) {
    // URL-safe or standard alphabet, padding optional.
    std::string std_alphabet = message;
    for (char& c : std_alphabet) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
    while (std_alphabet.size() % 4 != 0) std_alphabet.push_back('=');
    if (!absl::Base64Unescape(std_alphabet, &out.message)) {
      return absl::InvalidArgumentError("query parameter message: not valid base64");
    }
  } else {
    out.message = std::move(message);
  }
  return out;
}

}  // namespace gateway::http::connect
