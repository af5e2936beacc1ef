#include "transcoder/request_translator.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "transcoder/json_scan.h"
#include "transcoder/percent_encoding.h"
#include "transcoder/wire_util.h"

namespace gateway::transcoder {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

std::string Quote(absl::string_view text) {
  std::string out;
  AppendJsonString(text.size() > 64 ? text.substr(0, 64) : text, &out);
  if (text.size() > 64) out.insert(out.size() - 1, "...");
  return out;
}

bool IsWellKnown(const Descriptor* d) {
  return absl::StartsWith(d->full_name(), "google.protobuf.");
}

bool IsWrapper(const Descriptor* d) {
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

// Finds a field by proto name, lowerCamelCase name or custom json_name.
const FieldDescriptor* FindField(const Descriptor* d, absl::string_view name) {
  std::string key(name);
  if (const FieldDescriptor* f = d->FindFieldByName(key)) return f;
  if (const FieldDescriptor* f = d->FindFieldByCamelcaseName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

template <typename T>
absl::Status ParseInt(absl::string_view text, absl::string_view type_name, T* value) {
  if (absl::SimpleAtoi(text, value)) return absl::OkStatus();
  absl::string_view digits = absl::StripPrefix(text, "-");
  bool numeric = !digits.empty();
  for (char c : digits) {
    if (c < '0' || c > '9') numeric = false;
  }
  if (numeric) {
    return Invalid(absl::StrCat(Quote(text), " is out of range for ", type_name));
  }
  return Invalid(absl::StrCat(Quote(text), " is not a valid ", type_name));
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
    return Invalid(absl::StrCat(Quote(text), " is not a valid number"));
  }
  if (std::isinf(*value) && absl::AsciiStrToLower(text).find("inf") == std::string::npos) {
    return Invalid(absl::StrCat(Quote(text), " is out of range"));
  }
  return absl::OkStatus();
}

absl::Status ParseBool(absl::string_view text, bool* value) {
  if (absl::EqualsIgnoreCase(text, "true") || text == "1") {
    *value = true;
  } else if (absl::EqualsIgnoreCase(text, "false") || text == "0") {
    *value = false;
  } else {
    return Invalid(absl::StrCat(Quote(text), " is not a valid bool (true or false)"));
  }
  return absl::OkStatus();
}

absl::Status ParseBytes(absl::string_view text, std::string* value) {
  std::string fixed(text);
  // '+' may have become ' ' through form decoding of the query string.
  for (char& c : fixed) {
    if (c == ' ') c = '+';
  }
  if (absl::Base64Unescape(fixed, value) || absl::WebSafeBase64Unescape(fixed, value)) {
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat(Quote(text), " is not valid base64 or base64url"));
}

absl::Status ParseEnum(const FieldDescriptor* f, absl::string_view text,
                       bool case_insensitive, int32_t* value) {
  const google::protobuf::EnumDescriptor* e = f->enum_type();
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
  return Invalid(absl::StrCat(Quote(text), " is not a value of enum ", e->full_name()));
}

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

// Payload (no tag) of a well-known message type given by its JSON string form.
absl::Status WellKnownPayload(const Descriptor* d, absl::string_view text,
                              bool case_insensitive_enums, std::string* payload) {
  const std::string& name = d->full_name();
  if (IsWrapper(d)) {
    return AppendFieldFromText(d->FindFieldByNumber(1), text, case_insensitive_enums,
                               payload);
  }
  if (name == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp ts;
    if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
      return Invalid(absl::StrCat(Quote(text),
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
      return Invalid(absl::StrCat(Quote(text), " is not a duration (e.g. \"1.5s\")"));
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
std::string WrapInPath(const FieldPath& path, std::string inner) {
  for (size_t i = path.size() - 1; i-- > 0;) {
    std::string outer;
    AppendLengthDelimited(path[i]->number(), inner, &outer);
    inner = std::move(outer);
  }
  return inner;
}

// Resolves a query key ("a.b.c", json or proto names) to a field path.
// Returns an empty path if any component is unknown or goes through a
// non-message field.
FieldPath ResolveQueryKey(const Descriptor* root, absl::string_view dotted) {
  FieldPath path;
  const Descriptor* d = root;
  for (absl::string_view name : absl::StrSplit(dotted, '.')) {
    if (d == nullptr) return {};
    const FieldDescriptor* f = FindField(d, name);
    if (f == nullptr) return {};
    path.push_back(f);
    d = (f->message_type() != nullptr && !f->is_repeated() && !IsWellKnown(f->message_type()))
            ? f->message_type()
            : nullptr;
  }
  return path;
}

// Appends the mask paths for the JSON object `json` of message type `d`.
void CollectMaskPaths(const Descriptor* d, absl::string_view json,
                      const std::string& prefix, int depth,
                      std::vector<std::string>* paths) {
  (void)ForEachJsonMember(json, [&](absl::string_view key, absl::string_view value) {
    const FieldDescriptor* f = FindField(d, key);
    std::string name = absl::StrCat(prefix, f != nullptr ? f->name() : std::string(key));
    if (f != nullptr && f->message_type() != nullptr && !f->is_repeated() &&
        !IsWellKnown(f->message_type()) && !value.empty() && value[0] == '{' &&
        depth < 64) {
      size_t before = paths->size();
      CollectMaskPaths(f->message_type(), value, name + ".", depth + 1, paths);
      if (paths->size() != before) return;
    }
    paths->push_back(std::move(name));
  });
}

}  // namespace

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
      int32_t v;
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
      int64_t v;
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
      uint32_t v;
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
      uint64_t v;
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
      double v;
      if (absl::Status s = ParseDouble(text, &v); !s.ok()) return s;
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      AppendTag(n, WireType::kFixed64, out);
      AppendFixed64(bits, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_FLOAT: {
      double v;
      if (absl::Status s = ParseDouble(text, &v); !s.ok()) return s;
      if (std::isfinite(v) && std::fabs(v) > FLT_MAX) {
        return Invalid(absl::StrCat(Quote(text), " is out of range for a float"));
      }
      float fv = static_cast<float>(v);
      uint32_t bits;
      std::memcpy(&bits, &fv, sizeof(bits));
      AppendTag(n, WireType::kFixed32, out);
      AppendFixed32(bits, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_BOOL: {
      bool v;
      if (absl::Status s = ParseBool(text, &v); !s.ok()) return s;
      AppendTag(n, WireType::kVarint, out);
      AppendVarint(v ? 1 : 0, out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_ENUM: {
      int32_t v;
      if (absl::Status s = ParseEnum(f, text, case_insensitive_enums, &v); !s.ok()) return s;
      AppendTag(n, WireType::kVarint, out);
      AppendVarint(static_cast<uint64_t>(static_cast<int64_t>(v)), out);
      return absl::OkStatus();
    }
    case FieldDescriptor::TYPE_MESSAGE: {
      const Descriptor* d = f->message_type();
      if (!IsWellKnown(d) || d->full_name() == "google.protobuf.Struct" ||
          d->full_name() == "google.protobuf.Value" ||
          d->full_name() == "google.protobuf.ListValue" ||
          d->full_name() == "google.protobuf.Any" ||
          d->full_name() == "google.protobuf.Empty") {
        return Invalid(absl::StrCat("field '", f->name(), "' is a message (",
                                    d->full_name(), ") and cannot be set from text"));
      }
      std::string payload;
      if (absl::Status s = WellKnownPayload(d, text, case_insensitive_enums, &payload);
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

RequestTranslator::RequestTranslator(const RouteSet& routes) : routes_(routes) {
  std::vector<const Descriptor*> roots;
  for (const auto& plan : routes.plans()) {
    roots.push_back(plan->method->input_type());
    roots.push_back(plan->method->output_type());
  }
  resolver_ = std::make_unique<CachedTypeResolver>(routes.pool(), roots);
}

absl::Status RequestTranslator::JsonToBinary(const Descriptor* type,
                                             absl::string_view json,
                                             const RequestOptions& options,
                                             std::string* out) const {
  if (absl::Status s = CheckJsonDocument(json, options.max_json_depth); !s.ok()) {
    return s;
  }
  google::protobuf::util::JsonParseOptions parse_options;
  parse_options.ignore_unknown_fields = options.ignore_unknown_json_fields;
  parse_options.case_insensitive_enum_parsing = options.case_insensitive_enums;
  google::protobuf::io::ArrayInputStream input(json.data(), static_cast<int>(json.size()));
  google::protobuf::io::StringOutputStream output(out);
  google::protobuf::util::Status s = google::protobuf::util::JsonToBinaryStream(
      resolver_.get(), TypeUrl(type), &input, &output, parse_options);
  if (!s.ok()) return Invalid(s.message().ToString());
  return absl::OkStatus();
}

absl::Status RequestTranslator::AppendBody(const MethodPlan& plan, absl::string_view body,
                                           absl::string_view content_type,
                                           const RequestOptions& options, bool mask_given,
                                           std::string* out) const {
  if (plan.body_kind == MethodPlan::BodyKind::kNone) return absl::OkStatus();
  if (plan.body_is_http_body) {
    std::string http_body;
    if (!content_type.empty()) AppendLengthDelimited(1, content_type, &http_body);
    if (!body.empty()) AppendLengthDelimited(2, body, &http_body);
    if (plan.body_kind == MethodPlan::BodyKind::kWhole) {
      out->append(http_body);
    } else {
      AppendLengthDelimited(plan.body_field->number(), http_body, out);
    }
    return absl::OkStatus();
  }
  size_t start = 0;
  SkipJsonWhitespace(body, &start);
  if (start == body.size()) return absl::OkStatus();  // no body: an empty message

  if (plan.body_kind == MethodPlan::BodyKind::kWhole) {
    if (absl::Status s = JsonToBinary(plan.method->input_type(), body, options, out);
        !s.ok()) {
      return Invalid(absl::StrCat("invalid JSON body: ", s.message()));
    }
    return absl::OkStatus();
  }

  const FieldDescriptor* f = plan.body_field;
  if (f->message_type() != nullptr && !f->is_repeated()) {
    std::string payload;
    if (absl::Status s = JsonToBinary(f->message_type(), body, options, &payload);
        !s.ok()) {
      return Invalid(absl::StrCat("invalid JSON body for field '", f->name(),
                                  "': ", s.message()));
    }
    AppendLengthDelimited(f->number(), payload, out);
    if (plan.update_mask_field != nullptr && options.fill_update_mask && !mask_given &&
        body[start] == '{' && !IsWellKnown(f->message_type())) {
      std::vector<std::string> paths;
      CollectMaskPaths(f->message_type(), body.substr(start), "", 0, &paths);
      std::string mask;
      for (const std::string& p : paths) AppendLengthDelimited(1, p, &mask);
      AppendLengthDelimited(plan.update_mask_field->number(), mask, out);
    }
    return absl::OkStatus();
  }
  // A scalar, repeated or map body field: convert {"<field>": <body>} as the
  // request message, which yields exactly that field.
  std::string wrapped;
  wrapped.reserve(body.size() + f->name().size() + 8);
  wrapped.push_back('{');
  AppendJsonString(f->name(), &wrapped);
  wrapped.push_back(':');
  wrapped.append(body.data(), body.size());
  wrapped.push_back('}');
  RequestOptions field_options = options;
  field_options.max_json_depth = options.max_json_depth + 1;
  if (absl::Status s = JsonToBinary(plan.method->input_type(), wrapped, field_options, out);
      !s.ok()) {
    return Invalid(absl::StrCat("invalid JSON body for field '", f->name(), "': ",
                                s.message()));
  }
  return absl::OkStatus();
}

absl::Status RequestTranslator::AppendQuery(const MethodPlan& plan,
                                            absl::string_view query,
                                            const RequestOptions& options,
                                            bool* mask_given, std::string* out) const {
  const Descriptor* input = plan.method->input_type();
  PercentDecodeMode mode = options.query_plus_as_space
                               ? PercentDecodeMode::kQueryPlusAsSpace
                               : PercentDecodeMode::kAll;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), mode);
    std::string value =
        eq == absl::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), mode);
    if (options.ignored_query_parameters.contains(key)) continue;

    auto unknown = [&](absl::string_view why) -> absl::Status {
      if (!options.reject_unknown_query_parameters) return absl::OkStatus();
      return Invalid(absl::StrCat("unknown query parameter ", Quote(key), ": ", why));
    };
    if (plan.body_kind == MethodPlan::BodyKind::kWhole) {
      if (absl::Status s = unknown("the body is the whole request"); !s.ok()) return s;
      continue;
    }

    // "name[mapkey]" addresses a map entry.
    absl::string_view field_key = key;
    absl::string_view map_key;
    bool has_map_key = false;
    if (!key.empty() && key.back() == ']') {
      size_t open = key.find('[');
      if (open != std::string::npos) {
        field_key = absl::string_view(key).substr(0, open);
        map_key = absl::string_view(key).substr(open + 1, key.size() - open - 2);
        has_map_key = true;
      }
    }
    FieldPath path = ResolveQueryKey(input, field_key);
    if (path.empty()) {
      if (absl::Status s = unknown("no such field"); !s.ok()) return s;
      continue;
    }
    if (plan.body_kind == MethodPlan::BodyKind::kField && path[0] == plan.body_field) {
      if (absl::Status s = unknown("the field is set by the body"); !s.ok()) return s;
      continue;
    }
    const FieldDescriptor* leaf = path.back();
    std::string leaf_bytes;
    if (has_map_key != leaf->is_map()) {
      return Invalid(absl::StrCat(
          "invalid query parameter ", Quote(key), ": ",
          leaf->is_map() ? absl::StrCat("field '", leaf->name(),
                                        "' is a map; use ", field_key, "[key]=value")
                         : absl::StrCat("field '", leaf->name(), "' is not a map")));
    }
    absl::Status s;
    if (leaf->is_map()) {
      const Descriptor* entry = leaf->message_type();
      std::string entry_bytes;
      s = AppendFieldFromText(entry->map_key(), map_key, options.case_insensitive_enums,
                              &entry_bytes);
      if (s.ok()) {
        s = AppendFieldFromText(entry->map_value(), value, options.case_insensitive_enums,
                                &entry_bytes);
      }
      if (s.ok()) AppendLengthDelimited(leaf->number(), entry_bytes, &leaf_bytes);
    } else {
      s = AppendFieldFromText(leaf, value, options.case_insensitive_enums, &leaf_bytes);
    }
    if (!s.ok()) {
      return Invalid(absl::StrCat("invalid value for query parameter ", Quote(key), ": ",
                                  s.message()));
    }
    if (path.size() == 1 && leaf == plan.update_mask_field) *mask_given = true;
    out->append(WrapInPath(path, std::move(leaf_bytes)));
  }
  return absl::OkStatus();
}

namespace {

absl::Status AppendPathBindings(const RouteMatch& match, const RequestOptions& options,
                                std::string* out) {
  const MethodPlan& plan = *match.plan;
  for (size_t i = 0; i < plan.path_fields.size() && i < match.bindings.size(); ++i) {
    const FieldPath& path = plan.path_fields[i];
    std::string leaf_bytes;
    absl::Status s = AppendFieldFromText(path.back(), match.bindings[i],
                                         options.case_insensitive_enums, &leaf_bytes);
    if (!s.ok()) {
      std::string name;
      for (const FieldDescriptor* f : path) {
        absl::StrAppend(&name, name.empty() ? "" : ".", f->name());
      }
      return Invalid(absl::StrCat("invalid value for path variable '", name, "': ",
                                  s.message()));
    }
    out->append(WrapInPath(path, std::move(leaf_bytes)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RequestTranslator::TranslatePathAndQuery(
    const RouteMatch& match, absl::string_view query,
    const RequestOptions& options) const {
  std::string out;
  bool mask_given = false;
  if (absl::Status s = AppendQuery(*match.plan, query, options, &mask_given, &out);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = AppendPathBindings(match, options, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> RequestTranslator::Translate(
    const RouteMatch& match, absl::string_view query, absl::string_view body,
    absl::string_view content_type, const RequestOptions& options) const {
  const MethodPlan& plan = *match.plan;
  // Query first, to know whether it sets the update mask.
  std::string query_bytes;
  bool mask_given = false;
  if (absl::Status s = AppendQuery(plan, query, options, &mask_given, &query_bytes);
      !s.ok()) {
    return s;
  }
  std::string out;
  if (absl::Status s = AppendBody(plan, body, content_type, options, mask_given, &out);
      !s.ok()) {
    return s;
  }
  out.append(query_bytes);
  // Path bindings last, so that they win.
  if (absl::Status s = AppendPathBindings(match, options, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> RequestTranslator::TranslateStreamMessage(
    const MethodPlan& plan, absl::string_view json, const RequestOptions& options) const {
  std::string out;
  if (absl::Status s = JsonToBinary(plan.method->input_type(), json, options, &out);
      !s.ok()) {
    return Invalid(absl::StrCat("invalid JSON stream message: ", s.message()));
  }
  return out;
}

}  // namespace gateway::transcoder
