#include "transcoder/field_text.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "transcoder/base64.h"
#include "transcoder/json_scan.h"
#include "transcoder/wire_util.h"

namespace gateway::transcoder {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;

namespace {

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

}  // namespace

std::string QuoteForError(absl::string_view text) {
  std::string out;
  AppendJsonString(text.size() > 64 ? text.substr(0, 64) : text, &out);
  if (text.size() > 64) out.insert(out.size() - 1, "...");
  return out;
}

bool IsWellKnownType(const Descriptor* d) {
  return absl::StartsWith(d->full_name(), "google.protobuf.");
}

bool IsWrapperType(const Descriptor* d) {
  static constexpr absl::string_view kWrappers[] = {
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
      "google.protobuf.Int64Value",  "google.protobuf.UInt64Value",
      "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue",
      "google.protobuf.BytesValue"};
  for (absl::string_view w : kWrappers) {
    if (d->full_name() == w) return true;
  }
  return false;
}

const FieldDescriptor* FindFieldByAnyName(const Descriptor* d, absl::string_view name) {
  std::string key(name);
  if (const FieldDescriptor* f = d->FindFieldByName(key)) return f;
  if (const FieldDescriptor* f = d->FindFieldByCamelcaseName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

namespace {

template <typename T>
absl::Status ParseInt(absl::string_view text, absl::string_view type_name, T* value) {
  if (absl::SimpleAtoi(text, value)) return absl::OkStatus();
  absl::string_view digits = absl::StripPrefix(text, "-");
  bool numeric = !digits.empty();
  for (char c : digits) {
    if (c < '0' || c > '9') numeric = false;
  }
  if (numeric) {
    return Invalid(absl::StrCat(QuoteForError(text), " is out of range for ", type_name));
  }
  return Invalid(absl::StrCat(QuoteForError(text), " is not a valid ", type_name));
}

absl::Status ParseDouble(absl::string_view text, double* value) {
  if (text == "NaN") {
    *value = std::nan("");
    return absl::OkStatus();
  }
  if (text == "Infinity") {
    *value = HUGE_VAL;
    return absl::OkStatus();
  }
  if (text == "-Infinity") {
    *value = -HUGE_VAL;
    return absl::OkStatus();
  }
  if (!absl::SimpleAtod(text, value)) {
    return Invalid(absl::StrCat(QuoteForError(text), " is not a valid number"));
  }
  if (std::isinf(*value) && absl::AsciiStrToLower(text).find("inf") == std::string::npos) {
    return Invalid(absl::StrCat(QuoteForError(text), " is out of range"));
  }
  return absl::OkStatus();
}

absl::Status ParseBool(absl::string_view text, bool* value) {
  if (absl::EqualsIgnoreCase(text, "true") || text == "1") {
    *value = true;
  } else if (absl::EqualsIgnoreCase(text, "false") || text == "0") {
    *value = false;
  } else {
    return Invalid(absl::StrCat(QuoteForError(text), " is not a valid bool (true or false)"));
  }
  return absl::OkStatus();
}

absl::Status ParseBytes(absl::string_view text, std::string* value) {
  std::string fixed(text);
  // '+' may have become ' ' through form decoding of the query string.
  for (char& c : fixed) {
    if (c == ' ') c = '+';
  }
  value->clear();
  if (Base64Decode(fixed, value)) return absl::OkStatus();
  return Invalid(absl::StrCat(QuoteForError(text), " is not valid base64 or base64url"));
}

}  // namespace

absl::Status ParseEnumText(const google::protobuf::EnumDescriptor* e, absl::string_view text,
                           bool case_insensitive, int32_t* value) {
  if (const EnumValueDescriptor* v = e->FindValueByName(std::string(text))) {
    *value = v->number();
    return absl::OkStatus();
  }
  if (case_insensitive) {
    for (int i = 0; i < e->value_count(); ++i) {
      if (absl::EqualsIgnoreCase(e->value(i)->name(), text)) {
        *value = e->value(i)->number();
        return absl::OkStatus();
      }
    }
  }
  if (absl::SimpleAtoi(text, value)) return absl::OkStatus();
  return Invalid(absl::StrCat(QuoteForError(text), " is not a value of enum ", e->full_name()));
}

namespace {

std::string CamelToSnake(absl::string_view path) {
  std::string out;
  for (char c : path) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      out.push_back('_');
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

absl::Status WellKnownPayloadFromText(const Descriptor* d, absl::string_view text,
                              bool case_insensitive_enums, std::string* payload) {
  const std::string& name = d->full_name();
  if (IsWrapperType(d)) {
    return AppendFieldFromText(d->FindFieldByNumber(1), text, case_insensitive_enums,
                               payload);
  }
  if (name == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp ts;
    if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
      return Invalid(absl::StrCat(QuoteForError(text),
                                  " is not an RFC 3339 timestamp (e.g. "
                                  "\"2024-01-02T03:04:05Z\")"));
    }
    ts.AppendToString(payload);
    return absl::OkStatus();
  }
  if (name == "google.protobuf.Duration") {
    google::protobuf::Duration du;
    if (text.empty() || text.back() != 's' ||
        !google::protobuf::util::TimeUtil::FromString(std::string(text), &du)) {
      return Invalid(absl::StrCat(QuoteForError(text), " is not a duration (e.g. \"1.5s\")"));
    }
    du.AppendToString(payload);
    return absl::OkStatus();
  }
  if (name == "google.protobuf.FieldMask") {
    for (absl::string_view p : absl::StrSplit(text, ',', absl::SkipEmpty())) {
      AppendLengthDelimited(1, CamelToSnake(absl::StripAsciiWhitespace(p)), payload);
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat("a ", name, " cannot be given as text"));
}

// Wraps `inner` (the bytes of path.back()) in the length-delimited fields of
// path[0..n-2], innermost first.

absl::Status AppendFieldFromText(const FieldDescriptor* f, absl::string_view text,
                                 bool case_insensitive_enums, std::string* out) {
  const int n = f->number();
  switch (f->type()) {
    case FieldDescriptor::TYPE_STRING:
      if (!IsValidUtf8(text)) return Invalid("the value is not valid UTF-8");
      AppendLengthDelimited(n, text, out);
      return absl::OkStatus();
    case FieldDescriptor::TYPE_BYTES: {
      std::string bytes;
      if (absl::Status s = ParseBytes(text, &bytes); !s.ok()) return s;
      AppendLengthDelimited(n, bytes, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SFIXED32: {
      int32_t v = 0;
      if (absl::Status s = ParseInt(text, "int32", &v); !s.ok()) return s;
      if (f->type() == FieldDescriptor::TYPE_SFIXED32) {
        AppendTag(n, WireType::kFixed32, out);
        AppendFixed32(static_cast<uint32_t>(v), out);
      } else {
        AppendTag(n, WireType::kVarint, out);
        AppendVarint(f->type() == FieldDescriptor::TYPE_SINT32
                         ? static_cast<uint32_t>((static_cast<uint32_t>(v) << 1) ^
                                                 static_cast<uint32_t>(v >> 31))
                         : static_cast<uint64_t>(static_cast<int64_t>(v)),
                     out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_SFIXED64: {
      int64_t v = 0;
      if (absl::Status s = ParseInt(text, "int64", &v); !s.ok()) return s;
      if (f->type() == FieldDescriptor::TYPE_SFIXED64) {
        AppendTag(n, WireType::kFixed64, out);
        AppendFixed64(static_cast<uint64_t>(v), out);
      } else {
        AppendTag(n, WireType::kVarint, out);
        AppendVarint(f->type() == FieldDescriptor::TYPE_SINT64
                         ? (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)
                         : static_cast<uint64_t>(v),
                     out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32: {
      uint32_t v = 0;
      if (absl::Status s = ParseInt(text, "uint32", &v); !s.ok()) return s;
      if (f->type() == FieldDescriptor::TYPE_FIXED32) {
        AppendTag(n, WireType::kFixed32, out);
        AppendFixed32(v, out);
      } else {
        AppendTag(n, WireType::kVarint, out);
        AppendVarint(v, out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64: {
      uint64_t v = 0;
      if (absl::Status s = ParseInt(text, "uint64", &v); !s.ok()) return s;
      if (f->type() == FieldDescriptor::TYPE_FIXED64) {
        AppendTag(n, WireType::kFixed64, out);
        AppendFixed64(v, out);
      } else {
        AppendTag(n, WireType::kVarint, out);
        AppendVarint(v, out);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_DOUBLE: {
      double v = 0;
      if (absl::Status s = ParseDouble(text, &v); !s.ok()) return s;
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      AppendTag(n, WireType::kFixed64, out);
      AppendFixed64(bits, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_FLOAT: {
      double v = 0;
      if (absl::Status s = ParseDouble(text, &v); !s.ok()) return s;
      if (std::isfinite(v) && std::fabs(v) > FLT_MAX) {
        return Invalid(absl::StrCat(QuoteForError(text), " is out of range for a float"));
      }
      float fv = static_cast<float>(v);
      uint32_t bits;
      std::memcpy(&bits, &fv, sizeof(bits));
      AppendTag(n, WireType::kFixed32, out);
      AppendFixed32(bits, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_BOOL: {
      bool v = false;
      if (absl::Status s = ParseBool(text, &v); !s.ok()) return s;
      AppendTag(n, WireType::kVarint, out);
      AppendVarint(v ? 1 : 0, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_ENUM: {
      int32_t v = 0;
      if (absl::Status s = ParseEnumText(f->enum_type(), text, case_insensitive_enums, &v); !s.ok()) return s;
      AppendTag(n, WireType::kVarint, out);
      AppendVarint(static_cast<uint64_t>(static_cast<int64_t>(v)), out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_MESSAGE: {
      const Descriptor* d = f->message_type();
      if (!IsWellKnownType(d) || d->full_name() == "google.protobuf.Struct" ||
          d->full_name() == "google.protobuf.Value" ||
          d->full_name() == "google.protobuf.ListValue" ||
          d->full_name() == "google.protobuf.Any" ||
          d->full_name() == "google.protobuf.Empty") {
        return Invalid(absl::StrCat("field '", f->name(), "' is a message (",
                                    d->full_name(), ") and cannot be set from text"));
      }
      std::string payload;
      if (absl::Status s = WellKnownPayloadFromText(d, text, case_insensitive_enums, &payload);
          !s.ok()) {
        return s;
      }
      AppendLengthDelimited(n, payload, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_GROUP:
      break;
  }
  return Invalid(absl::StrCat("field '", f->name(), "' has an unsupported type"));
}

}  // namespace gateway::transcoder
