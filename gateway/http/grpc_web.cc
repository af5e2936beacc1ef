#include "gateway/http/grpc_web.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/metadata/metadata_policy.h"

namespace gateway::http::grpc_web {
namespace {

constexpr int8_t kPad = -2;
constexpr int8_t kBad = -1;

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = kBad;
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<int8_t>(i);
    t['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['+'] = 62;
  t['/'] = 63;
  t['='] = kPad;
  return t;
}

constexpr std::array<int8_t, 256> kBase64 = MakeBase64Table();

uint32_t ReadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

bool IsPrintable(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

std::optional<GrpcWebType> ParseContentType(absl::string_view content_type) {
  absl::string_view type = content_type;
  const std::size_t semicolon = type.find(';');
  if (semicolon != absl::string_view::npos) type = type.substr(0, semicolon);
  type = absl::StripAsciiWhitespace(type);
  constexpr absl::string_view kPrefix = "application/grpc-web";
  if (type.size() < kPrefix.size() ||
      !absl::EqualsIgnoreCase(type.substr(0, kPrefix.size()), kPrefix)) {
    return std::nullopt;
  }
  absl::string_view rest = type.substr(kPrefix.size());
  GrpcWebType result;
  if (rest.size() >= 5 && absl::EqualsIgnoreCase(rest.substr(0, 5), "-text")) {
    result.encoding = Encoding::kText;
    rest.remove_prefix(5);
  }
  if (rest.empty()) return result;
  if (rest[0] != '+') return std::nullopt;  // "application/grpc-webfoo"
  result.proto = absl::EqualsIgnoreCase(rest, "+proto");
  return result;
}

absl::string_view ResponseContentType(Encoding encoding) {
  return encoding == Encoding::kText ? "application/grpc-web-text+proto"
                                     : "application/grpc-web+proto";
}

absl::StatusOr<std::string> DecodeBase64Chunks(absl::string_view text) {
  if (text.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grpc-web-text body: base64 length ", text.size(), " is not a multiple of 4"));
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int8_t v[4];
    for (int j = 0; j < 4; ++j) v[j] = kBase64[static_cast<unsigned char>(text[i + j])];
    for (int j = 0; j < 4; ++j) {
      if (v[j] == kBad) {
        return absl::InvalidArgumentError(
            absl::StrCat("grpc-web-text body: byte ", i + j, " is not base64"));
      }
    }
    // Padding only at the end of a quad: xxxx, xxx=, xx==.
    int data = 4;
    if (v[3] == kPad) data = v[2] == kPad ? 2 : 3;
    for (int j = 0; j < data; ++j) {
      if (v[j] == kPad) {
        return absl::InvalidArgumentError(
            absl::StrCat("grpc-web-text body: misplaced padding at byte ", i + j));
      }
    }
    const uint32_t bits = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) |
                          (data > 2 ? uint32_t(v[2]) << 6 : 0) | (data > 3 ? uint32_t(v[3]) : 0);
    out.push_back(static_cast<char>(bits >> 16));
    if (data > 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (data > 3) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

absl::StatusOr<std::vector<Frame>> SplitFrames(absl::string_view body,
                                               uint32_t max_frame_bytes) {
  std::vector<Frame> frames;
  std::size_t offset = 0;
  while (offset < body.size()) {
    const std::size_t left = body.size() - offset;
    if (left < kFrameHeaderBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gRPC-Web frame ", frames.size(), " at byte ", offset, ": header cut short (",
          left, " of ", kFrameHeaderBytes, " bytes)"));
    }
    Frame frame;
    frame.flags = static_cast<uint8_t>(body[offset]);
    const uint32_t length = ReadBigEndian32(body.data() + offset + 1);
    if (length > max_frame_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "gRPC-Web frame ", frames.size(), ": ", length, " bytes, more than the limit of ",
          max_frame_bytes));
    }
    if (length > left - kFrameHeaderBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gRPC-Web frame ", frames.size(), " at byte ", offset, ": length ", length,
          " but only ", left - kFrameHeaderBytes, " bytes follow"));
    }
    frame.payload = body.substr(offset + kFrameHeaderBytes, length);
    frames.push_back(frame);
    offset += kFrameHeaderBytes + length;
  }
  return frames;
}

absl::StatusOr<std::vector<Frame>> DecodeRequestBody(absl::string_view body, Encoding encoding,
                                                     uint32_t max_frame_bytes,
                                                     std::string* storage) {
  absl::string_view binary = body;
  if (encoding == Encoding::kText) {
    absl::StatusOr<std::string> decoded = DecodeBase64Chunks(body);
    if (!decoded.ok()) return decoded.status();
    *storage = *std::move(decoded);
    binary = *storage;
  }
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames(binary, max_frame_bytes);
  if (!frames.ok()) return frames.status();
  for (std::size_t i = 0; i < frames->size(); ++i) {
    const uint8_t flags = (*frames)[i].flags;
    if (flags & kTrailerFrame) {
      return absl::InvalidArgumentError(
          absl::StrCat("gRPC-Web frame ", i, ": a trailer frame in a request"));
    }
    if (flags & ~(kTrailerFrame | kCompressedBit)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gRPC-Web frame ", i, ": unknown flags 0x", absl::Hex(flags, absl::kZeroPad2)));
    }
    if (flags & kCompressedBit) {
      return absl::InternalError(absl::StrCat(
          "gRPC-Web frame ", i,
          ": compressed message, but the gateway accepts uncompressed messages only"));
    }
  }
  return frames;
}

std::string EncodeFrame(uint8_t flags, absl::string_view payload, Encoding encoding) {
  std::string frame;
  frame.reserve(kFrameHeaderBytes + payload.size());
  const uint32_t n = static_cast<uint32_t>(payload.size());
  frame.push_back(static_cast<char>(flags));
  frame.push_back(static_cast<char>(n >> 24));
  frame.push_back(static_cast<char>((n >> 16) & 0xff));
  frame.push_back(static_cast<char>((n >> 8) & 0xff));
  frame.push_back(static_cast<char>(n & 0xff));
  frame.append(payload.data(), payload.size());
  if (encoding == Encoding::kText) return absl::Base64Escape(frame);
  return frame;
}

std::string TrailerBlock(int code, absl::string_view message,
                         const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::string block = absl::StrCat("grpc-status: ", code, "\r\n");
  if (!message.empty()) {
    absl::StrAppend(&block, "grpc-message: ", PercentEncodeMessage(message), "\r\n");
  }
  for (const auto& [key, value] : metadata) {
    if (!gateway::metadata::IsValidKey(key) || absl::StartsWith(key, "grpc-")) continue;
    if (absl::EndsWith(key, "-bin")) {
      absl::StrAppend(&block, key, ": ", absl::Base64Escape(value), "\r\n");
    } else if (IsPrintable(value)) {
      absl::StrAppend(&block, key, ": ", value, "\r\n");
    }
  }
  return block;
}

std::string PercentEncodeMessage(absl::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '%') {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string PercentDecodeMessage(absl::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size() && hex(encoded[i + 1]) >= 0 &&
        hex(encoded[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2])));
      i += 2;
    } else {
      out.push_back(encoded[i]);
    }
  }
  return out;
}

}  // namespace gateway::http::grpc_web
