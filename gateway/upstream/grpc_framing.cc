#include "gateway/upstream/grpc_framing.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway::upstream {

void AppendGrpcFrame(absl::string_view message, std::string* out) {
  const uint32_t n = static_cast<uint32_t>(message.size());
  const char prefix[5] = {0, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(prefix, 5);
  out->append(message.data(), message.size());
}

namespace {

// The error of a prefix (5 bytes) with a flag byte other than those allowed, or announcing
// more than `max` bytes; OK otherwise, with the message length in *size.
absl::Status CheckPrefix(const unsigned char* h, bool compressed_allowed, size_t max,
                         uint32_t* size) {
  if (h[0] != 0 && !(compressed_allowed && h[0] == 1)) {
    return absl::InternalError(
        compressed_allowed
            ? absl::StrCat("message with flag byte ", static_cast<int>(h[0]),
                           " (0 or 1 expected)")
            : absl::StrCat("backend sent a message with compressed flag ",
                           static_cast<int>(h[0]), " (no compression was negotiated)"));
  }
  *size = (uint32_t{h[1]} << 24) | (uint32_t{h[2]} << 16) | (uint32_t{h[3]} << 8) |
          uint32_t{h[4]};
  if (*size > max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", *size, " bytes is larger than the limit of ", max,
                     " bytes (limits.max_message_bytes)"));
  }
  return absl::OkStatus();
}

absl::Status Truncated(size_t prefix_bytes, size_t body_bytes, size_t body_size) {
  if (prefix_bytes < 5) {
    return absl::InternalError(absl::StrCat("message truncated: the stream ended after ",
                                            prefix_bytes, " of 5 prefix bytes"));
  }
  return absl::InternalError(absl::StrCat("message truncated: the stream ended after ",
                                          body_bytes, " of ", body_size, " message bytes"));
}

}  // namespace

absl::Status GrpcDeframer::Feed(absl::string_view bytes) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    if (header_.size() < 5) {
      const size_t take = std::min<size_t>(5 - header_.size(), bytes.size());
      header_.append(bytes.data(), take);
      bytes.remove_prefix(take);
      if (header_.size() < 5) break;
      error_ = CheckPrefix(reinterpret_cast<const unsigned char*>(header_.data()),
                           /*compressed_allowed=*/false, max_message_size_, &body_size_);
      if (!error_.ok()) return error_;
      body_.clear();
    }
    const size_t take = std::min<size_t>(body_size_ - body_.size(), bytes.size());
    body_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (body_.size() == body_size_) {
      ready_.push_back(std::move(body_));
      body_ = std::string();
      header_.clear();
    }
  }
  return absl::OkStatus();
}

std::optional<std::string> GrpcDeframer::Next() {
  if (ready_.empty()) return std::nullopt;
  std::string m = std::move(ready_.front());
  ready_.pop_front();
  return m;
}

absl::Status GrpcDeframer::CheckComplete() const {
  if (!error_.ok()) return error_;
  if (header_.empty()) return absl::OkStatus();
  return Truncated(header_.size(), body_.size(), body_size_);
}

absl::Status GrpcFrameScanner::Scan(absl::string_view bytes) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    if (header_size_ < 5) {
      const size_t take = std::min<size_t>(5 - header_size_, bytes.size());
      std::memcpy(header_ + header_size_, bytes.data(), take);
      header_size_ += take;
      bytes.remove_prefix(take);
      if (header_size_ < 5) break;
      error_ = CheckPrefix(header_, /*compressed_allowed=*/true, max_message_size_,
                           &body_size_);
      if (!error_.ok()) return error_;
      body_seen_ = 0;
    }
    const size_t take = std::min<size_t>(body_size_ - body_seen_, bytes.size());
    body_seen_ += static_cast<uint32_t>(take);
    message_bytes_ += take;
    bytes.remove_prefix(take);
    if (body_seen_ == body_size_) {
      ++frames_;
      header_size_ = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status GrpcFrameScanner::CheckComplete() const {
  if (!error_.ok()) return error_;
  if (header_size_ == 0) return absl::OkStatus();
  return Truncated(header_size_, body_seen_, body_size_);
}

absl::StatusOr<std::string> EncodeGrpcTimeout(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("the call's deadline has passed");
  }
  constexpr int64_t kMax = 99999999;
  struct Unit {
    int64_t ns;
    char c;
  };
  static constexpr Unit kUnits[] = {{3600LL * 1000000000, 'H'}, {60LL * 1000000000, 'M'},
                                    {1000000000, 'S'},          {1000000, 'm'},
                                    {1000, 'u'},                {1, 'n'}};
  // Durations beyond what the largest unit can say are capped at 99999999 hours.
  if (timeout >= absl::Hours(kMax)) return absl::StrCat(kMax, "H");
  const int64_t ns = absl::ToInt64Nanoseconds(timeout);
  for (const Unit& u : kUnits) {
    if (ns % u.ns == 0 && ns / u.ns <= kMax) return absl::StrCat(ns / u.ns, std::string(1, u.c));
  }
  for (int i = 5; i >= 0; --i) {
    const int64_t v = (ns + kUnits[i].ns - 1) / kUnits[i].ns;
    if (v <= kMax) return absl::StrCat(v, std::string(1, kUnits[i].c));
  }
  return absl::StrCat(kMax, "H");  // unreachable: the cap above
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string PercentDecodeGrpcMessage(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size()) {
      const int hi = HexValue(value[i + 1]);
      const int lo = HexValue(value[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(value[i]);
  }
  return out;
}

absl::StatusCode GrpcCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return absl::StatusCode::kInternal;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace gateway::upstream
