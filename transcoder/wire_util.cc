#include "transcoder/wire_util.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace gateway::transcoder {

using google::protobuf::internal::WireFormatLite;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void AppendTag(int field_number, WireType type, std::string* out) {
  AppendVarint((static_cast<uint64_t>(field_number) << 3) | static_cast<uint32_t>(type),
               out);
}

void AppendFixed32(uint32_t value, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

void AppendFixed64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

void AppendLengthDelimited(int field_number, absl::string_view payload, std::string* out) {
  AppendTag(field_number, WireType::kLengthDelimited, out);
  AppendVarint(payload.size(), out);
  out->append(payload.data(), payload.size());
}

namespace {

// Calls fn(tag, start, end, payload_start) for each field of `message`.
template <typename Fn>
absl::Status ScanFields(absl::string_view message, Fn fn) {
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(message.data()), static_cast<int>(message.size()));
  while (true) {
    int start = in.CurrentPosition();
    if (start == static_cast<int>(message.size())) return absl::OkStatus();
    uint32_t tag = in.ReadTag();
    if (tag == 0 || WireFormatLite::GetTagFieldNumber(tag) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed protobuf message at byte ", start));
    }
    int payload_start = in.CurrentPosition();
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length;
      if (!in.ReadVarint32(&length)) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed protobuf message at byte ", start));
      }
      payload_start = in.CurrentPosition();
      if (!in.Skip(static_cast<int>(length))) {
        return absl::InvalidArgumentError(
            absl::StrCat("truncated protobuf message at byte ", start));
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed protobuf message at byte ", start));
    }
    fn(tag, start, in.CurrentPosition(), payload_start);
  }
}

}  // namespace

absl::Status CheckWireFormat(absl::string_view message) {
  return ScanFields(message, [](uint32_t, int, int, int) {});
}

absl::StatusOr<std::string> ExtractField(absl::string_view message, int field_number) {
  std::string out;
  absl::Status s = ScanFields(message, [&](uint32_t tag, int start, int end, int) {
    if (WireFormatLite::GetTagFieldNumber(tag) == field_number) {
      out.append(message.data() + start, end - start);
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> ExtractMessagePayload(absl::string_view message,
                                                  int field_number) {
  std::string out;
  absl::Status s =
      ScanFields(message, [&](uint32_t tag, int, int end, int payload_start) {
        if (WireFormatLite::GetTagFieldNumber(tag) == field_number &&
            WireFormatLite::GetTagWireType(tag) ==
                WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
          out.append(message.data() + payload_start, end - payload_start);
        }
      });
  if (!s.ok()) return s;
  return out;
}

}  // namespace gateway::transcoder
