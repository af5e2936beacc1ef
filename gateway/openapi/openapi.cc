#include "gateway/openapi/openapi.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "transcoder/field_text.h"
#include "transcoder/json_scan.h"

namespace gateway::openapi {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using transcoder::FieldPath;
using transcoder::HttpTemplate;
using transcoder::IsWellKnownType;
using transcoder::IsWrapperType;
using transcoder::MethodPlan;

// A JSON value that keeps the order its object members were added in, so that the
// document comes out in a stable, readable order.
class Json {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() : kind_(Kind::kObject) {}
  static Json Object() { return Json(Kind::kObject, ""); }
  static Json Array() { return Json(Kind::kArray, ""); }
  static Json String(absl::string_view s) { return Json(Kind::kString, std::string(s)); }
  static Json Number(int64_t n) { return Json(Kind::kNumber, absl::StrCat(n)); }
  static Json Bool(bool b) { return Json(Kind::kBool, b ? "true" : "false"); }
  static Json Strings(const std::vector<std::string>& items) {
    Json a = Array();
    for (const std::string& s : items) a.Push(String(s));
    return a;
  }

  // Sets member `key` (replacing its value in place when present); returns the value.
  // The reference is valid until the next change of this object.
  Json& Set(absl::string_view key, Json value) {
    for (auto& [k, v] : members_) {
      if (k == key) {
        v = std::move(value);
        return v;
      }
    }
    members_.emplace_back(std::string(key), std::move(value));
    return members_.back().second;
  }
  // Adds member `key`, which the caller knows is not there yet.
  void Append(std::string key, Json value) {
    members_.emplace_back(std::move(key), std::move(value));
  }
  Json& Push(Json value) {
    items_.push_back(std::move(value));
    return items_.back();
  }
  const Json* Find(absl::string_view key) const {
    for (const auto& [k, v] : members_) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  Kind kind() const { return kind_; }
  bool empty() const { return members_.empty() && items_.empty(); }
  const std::string& text() const { return text_; }

  void Write(std::string* out, int indent) const {
    switch (kind_) {
      case Kind::kNull:
        out->append("null");
        return;
      case Kind::kBool:
      case Kind::kNumber:
        out->append(text_);
        return;
      case Kind::kString:
        transcoder::AppendJsonString(text_, out);
        return;
      case Kind::kArray:
        if (items_.empty()) {
          out->append("[]");
          return;
        }
        out->append("[");
        for (size_t i = 0; i < items_.size(); ++i) {
          out->append(i == 0 ? "\n" : ",\n");
          out->append(indent + 2, ' ');
          items_[i].Write(out, indent + 2);
        }
        out->append("\n").append(indent, ' ').append("]");
        return;
      case Kind::kObject:
        if (members_.empty()) {
          out->append("{}");
          return;
        }
        out->append("{");
        for (size_t i = 0; i < members_.size(); ++i) {
          out->append(i == 0 ? "\n" : ",\n");
          out->append(indent + 2, ' ');
          transcoder::AppendJsonString(members_[i].first, out);
          out->append(": ");
          members_[i].second.Write(out, indent + 2);
        }
        out->append("\n").append(indent, ' ').append("}");
        return;
    }
  }

 private:
  Json(Kind kind, std::string text) : kind_(kind), text_(std::move(text)) {}

  Kind kind_;
  std::string text_;  // kBool, kNumber: the literal; kString: the value
  std::vector<std::pair<std::string, Json>> members_;
  std::vector<Json> items_;
};

Json Ref(absl::string_view name) {
  Json j;
  j.Set("$ref", Json::String(absl::StrCat("#/components/schemas/", name)));
  return j;
}

Json TypeSchema(absl::string_view type, absl::string_view format = "") {
  Json j;
  j.Set("type", Json::String(type));
  if (!format.empty()) j.Set("format", Json::String(format));
  return j;
}

// The comments protoc kept for a descriptor (--include_source_info): the leading comment,
// else the trailing one; one space after "//" removed, surrounding blank lines dropped.
template <typename T>
std::string Comments(const T* d) {
  google::protobuf::SourceLocation loc;
  if (d == nullptr || !d->GetSourceLocation(&loc)) return "";
  const std::string& raw =
      loc.leading_comments.empty() ? loc.trailing_comments : loc.leading_comments;
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(raw, '\n')) {
    absl::ConsumePrefix(&line, " ");
    lines.emplace_back(absl::StripTrailingAsciiWhitespace(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  while (!lines.empty() && lines.front().empty()) lines.erase(lines.begin());
  return absl::StrJoin(lines, "\n");
}

void SetDescription(Json* j, absl::string_view text) {
  if (!text.empty()) j->Set("description", Json::String(text));
}

std::string JoinDescriptions(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return absl::StrCat(a, "\n\n", b);
}

// Well-known types a path variable or query parameter can set (their JSON form is a
// string or a scalar).
bool HasTextForm(const Descriptor* d) {
  return IsWrapperType(d) || d->full_name() == "google.protobuf.Timestamp" ||
         d->full_name() == "google.protobuf.Duration" ||
         d->full_name() == "google.protobuf.FieldMask";
}

// The JSON schema of a non-message, non-enum field type in the proto3 JSON mapping.
Json ScalarSchema(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_DOUBLE:
      return TypeSchema("number", "double");
    case FieldDescriptor::TYPE_FLOAT:
      return TypeSchema("number", "float");
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_SFIXED64:
      return TypeSchema("string", "int64");
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64:
      return TypeSchema("string", "uint64");
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SFIXED32:
      return TypeSchema("integer", "int32");
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32:
      return TypeSchema("integer", "uint32");
    case FieldDescriptor::TYPE_BOOL:
      return TypeSchema("boolean");
    case FieldDescriptor::TYPE_BYTES: {
      Json j = TypeSchema("string", "byte");
      j.Set("contentEncoding", Json::String("base64"));
      return j;
    }
    default:
      return TypeSchema("string");
  }
}

// google.protobuf.Any in the JSON mapping.
Json AnySchema() {
  Json j = TypeSchema("object");
  Json& props = j.Set("properties", Json());
  Json type = TypeSchema("string");
  SetDescription(&type, "The type URL, e.g. \"type.googleapis.com/google.rpc.ErrorInfo\".");
  props.Set("@type", std::move(type));
  j.Set("required", Json::Strings({"@type"}));
  j.Set("additionalProperties", Json::Bool(true));
  SetDescription(&j,
                 "A message of any type: \"@type\" names it; the other members are its fields "
                 "(or \"value\" for a well-known type with a special JSON form).");
  return j;
}

constexpr int kMaxQueryDepth = 8;
constexpr char kStatusSchema[] = "google.rpc.Status";
constexpr char kMutualTls[] = "mutual_tls";

struct SecurityScheme {
  std::string name;
  bool jwt = false;
};

class Generator {
 public:
  explicit Generator(const OpenApiOptions& options) : options_(options) {}

  absl::StatusOr<std::string> Generate(const transcoder::RouteSet& routes,
                                       const std::vector<std::string>& services);

 private:
  std::string FieldName(const FieldDescriptor* f) const {
    return options_.use_proto_field_names ? f->name() : f->json_name();
  }

  // The schema of a message type: inline for well-known types, else a $ref to its
  // component (which is added to the components).
  Json MessageSchema(const Descriptor* d);
  Json EnumSchema(const EnumDescriptor* e);
  // The schema of one value of `f` (ignoring repeated).
  Json ValueSchema(const FieldDescriptor* f);
  // The schema of field `f` as a whole: arrays for repeated fields, objects for maps.
  Json FieldSchema(const FieldDescriptor* f);
  Json WellKnownSchema(const Descriptor* d);
  void BuildComponents();

  Json Operation(const MethodPlan& plan, const std::string& operation_id, Json parameters);
  std::string PathAndParameters(const MethodPlan& plan, Json* parameters);
  void AddQueryParameters(const MethodPlan& plan, const Descriptor* d,
                          const std::string& prefix, FieldPath* path,
                          std::vector<const Descriptor*>* stack, Json* parameters);
  Json RequestBody(const MethodPlan& plan);
  Json Responses(const MethodPlan& plan);

  void BuildSecuritySchemes();
  // The auth rule covering `method` (most specific selector), or null.
  const config::v1::AuthRule* RuleFor(const MethodDescriptor* method) const;
  // Sets "security" on `op` (and notes a method that no rule covers).
  void AddSecurity(const MethodDescriptor* method, Json* op);

  const OpenApiOptions& options_;
  std::map<std::string, Json> schemas_;
  std::vector<const Descriptor*> pending_messages_;
  absl::flat_hash_set<std::string> referenced_;
  Json security_schemes_;
  std::map<std::string, std::vector<SecurityScheme>> provider_schemes_;
};

Json Generator::WellKnownSchema(const Descriptor* d) {
  const std::string& name = d->full_name();
  if (IsWrapperType(d)) {
    Json j = ScalarSchema(d->field(0)->type());
    Json types = Json::Array();
    types.Push(Json::String(j.Find("type")->text()));
    types.Push(Json::String("null"));
    j.Set("type", std::move(types));
    return j;
  }
  if (name == "google.protobuf.Timestamp") {
    Json j = TypeSchema("string", "date-time");
    SetDescription(&j, "RFC 3339 time, e.g. \"1972-01-01T10:00:20.021Z\".");
    return j;
  }
  if (name == "google.protobuf.Duration") {
    Json j = TypeSchema("string");
    j.Set("pattern", Json::String("^-?[0-9]+(\\.[0-9]{1,9})?s$"));
    SetDescription(&j, "Seconds with up to 9 fractional digits and the suffix \"s\", e.g. \"1.5s\".");
    return j;
  }
  if (name == "google.protobuf.FieldMask") {
    Json j = TypeSchema("string");
    SetDescription(&j, "Field paths in lowerCamelCase, separated by commas, e.g. \"title,author\".");
    return j;
  }
  if (name == "google.protobuf.Struct") {
    Json j = TypeSchema("object");
    j.Set("additionalProperties", Json::Bool(true));
    return j;
  }
  if (name == "google.protobuf.Value") {
    Json j;
    SetDescription(&j, "Any JSON value.");
    return j;
  }
  if (name == "google.protobuf.ListValue") {
    Json j = TypeSchema("array");
    j.Set("items", Json());
    return j;
  }
  if (name == "google.protobuf.Empty") {
    return TypeSchema("object");
  }
  if (name == "google.protobuf.Any") return AnySchema();
  return Json::Object();  // not reached: callers check the name first
}

Json Generator::MessageSchema(const Descriptor* d) {
  if (d->full_name() == kStatusSchema) {
    referenced_.insert(kStatusSchema);
    return Ref(kStatusSchema);
  }
  if (IsWrapperType(d) || HasTextForm(d) || d->full_name() == "google.protobuf.Struct" ||
      d->full_name() == "google.protobuf.Value" ||
      d->full_name() == "google.protobuf.ListValue" ||
      d->full_name() == "google.protobuf.Empty" || d->full_name() == "google.protobuf.Any") {
    return WellKnownSchema(d);
  }
  if (referenced_.insert(d->full_name()).second) pending_messages_.push_back(d);
  return Ref(d->full_name());
}

Json Generator::EnumSchema(const EnumDescriptor* e) {
  if (e->full_name() == "google.protobuf.NullValue") return TypeSchema("null");
  if (referenced_.insert(e->full_name()).second) {
    Json j;
    std::vector<std::string> lines;
    if (options_.enums_as_ints) {
      j = TypeSchema("integer", "int32");
      Json values = Json::Array();
      for (int i = 0; i < e->value_count(); ++i) values.Push(Json::Number(e->value(i)->number()));
      j.Set("enum", std::move(values));
    } else {
      j = TypeSchema("string");
      Json values = Json::Array();
      for (int i = 0; i < e->value_count(); ++i) values.Push(Json::String(e->value(i)->name()));
      j.Set("enum", std::move(values));
    }
    for (int i = 0; i < e->value_count(); ++i) {
      std::string comment = Comments(e->value(i));
      absl::StrReplaceAll({{"\n", " "}}, &comment);
      lines.push_back(absl::StrCat("- ", e->value(i)->name(), " (", e->value(i)->number(), ")",
                                   comment.empty() ? "" : ": ", comment));
    }
    std::string values_text = absl::StrCat(
        options_.enums_as_ints ? "Written as numbers; requests may also use the names."
                               : "Written as names; requests may also use the numbers.",
        "\n", absl::StrJoin(lines, "\n"));
    SetDescription(&j, JoinDescriptions(Comments(e), values_text));
    schemas_[e->full_name()] = std::move(j);
  }
  return Ref(e->full_name());
}

Json Generator::ValueSchema(const FieldDescriptor* f) {
  switch (f->type()) {
    case FieldDescriptor::TYPE_MESSAGE:
    case FieldDescriptor::TYPE_GROUP:
      return MessageSchema(f->message_type());
    case FieldDescriptor::TYPE_ENUM:
      return EnumSchema(f->enum_type());
    default:
      return ScalarSchema(f->type());
  }
}

Json Generator::FieldSchema(const FieldDescriptor* f) {
  if (f->is_map()) {
    Json j = TypeSchema("object");
    j.Set("additionalProperties", ValueSchema(f->message_type()->map_value()));
    return j;
  }
  if (f->is_repeated()) {
    Json j = TypeSchema("array");
    j.Set("items", ValueSchema(f));
    return j;
  }
  return ValueSchema(f);
}

void Generator::BuildComponents() {
  // Messages found while building a message schema are added to the queue.
  for (size_t i = 0; i < pending_messages_.size(); ++i) {
    const Descriptor* d = pending_messages_[i];
    Json j = TypeSchema("object");
    Json props;
    for (int k = 0; k < d->field_count(); ++k) {
      const FieldDescriptor* f = d->field(k);
      Json p = FieldSchema(f);
      std::string text = Comments(f);
      const google::protobuf::OneofDescriptor* oneof = f->real_containing_oneof();
      if (oneof != nullptr) {
        std::vector<std::string> members;
        for (int m = 0; m < oneof->field_count(); ++m) {
          members.push_back(FieldName(oneof->field(m)));
        }
        text = JoinDescriptions(
            text, absl::StrCat("Member of oneof ", oneof->name(), ": at most one of ",
                               absl::StrJoin(members, ", "), " may be set."));
      }
      SetDescription(&p, text);
      props.Set(FieldName(f), std::move(p));
    }
    j.Set("properties", std::move(props));
    SetDescription(&j, Comments(d));
    schemas_[d->full_name()] = std::move(j);
  }
  pending_messages_.clear();
  if (referenced_.contains(kStatusSchema)) {
    Json j = TypeSchema("object");
    Json props;
    Json code = TypeSchema("integer", "int32");
    SetDescription(&code, "The gRPC status code (google.rpc.Code), e.g. 5 for NOT_FOUND.");
    props.Set("code", std::move(code));
    Json message = TypeSchema("string");
    SetDescription(&message, "What went wrong, for developers.");
    props.Set("message", std::move(message));
    Json details = TypeSchema("array");
    details.Set("items", AnySchema());
    SetDescription(&details, "Error details (google.rpc.ErrorInfo, BadRequest, ...).");
    props.Set("details", std::move(details));
    j.Set("properties", std::move(props));
    j.Set("required", Json::Strings({"code", "message", "details"}));
    SetDescription(&j,
                   "The error body of every failed call: the gRPC status, with the HTTP status "
                   "mapped from its code.");
    schemas_[kStatusSchema] = std::move(j);
  }
}

std::string Generator::PathAndParameters(const MethodPlan& plan, Json* parameters) {
  const HttpTemplate& t = plan.path_template;
  absl::flat_hash_map<int, int> variable_at;  // start segment -> variable index
  for (size_t v = 0; v < t.variables.size(); ++v) variable_at[t.variables[v].start_segment] = v;
  auto add_path_param = [&](const std::string& name, Json schema, absl::string_view text) {
    Json p;
    p.Set("name", Json::String(name));
    p.Set("in", Json::String("path"));
    p.Set("required", Json::Bool(true));
    SetDescription(&p, text);
    p.Set("schema", std::move(schema));
    parameters->Push(std::move(p));
  };
  std::string path;
  for (int s = 0; s < static_cast<int>(t.segments.size());) {
    auto it = variable_at.find(s);
    if (it == variable_at.end()) {
      const HttpTemplate::Segment& seg = t.segments[s];
      if (seg.kind == HttpTemplate::Segment::Kind::kLiteral) {
        absl::StrAppend(&path, "/", seg.literal);
      } else {
        std::string name = absl::StrCat("segment_", s + 1);
        absl::StrAppend(&path, "/{", name, "}");
        add_path_param(name, TypeSchema("string"),
                       seg.kind == HttpTemplate::Segment::Kind::kMultiWildcard
                           ? "Any rest of the path (not bound to a field)."
                           : "Any path segment (not bound to a field).");
      }
      ++s;
      continue;
    }
    const HttpTemplate::Variable& v = t.variables[it->second];
    const FieldPath& fields = plan.path_fields[it->second];
    const std::string dotted = absl::StrJoin(v.field_path, ".");
    std::string field_text = Comments(fields.back());
    const int n = v.end_segment - v.start_segment;
    const HttpTemplate::Segment& first = t.segments[s];
    if (n == 1 && first.kind == HttpTemplate::Segment::Kind::kSingleWildcard) {
      absl::StrAppend(&path, "/{", dotted, "}");
      add_path_param(dotted, ValueSchema(fields.back()), field_text);
    } else if (n == 1 && first.kind == HttpTemplate::Segment::Kind::kMultiWildcard) {
      absl::StrAppend(&path, "/{", dotted, "}");
      add_path_param(dotted, TypeSchema("string"),
                     JoinDescriptions(field_text,
                                      "The rest of the path: may hold several segments."));
    } else {
      // A pattern over several segments: its literals stay in the path, each wildcard
      // becomes a parameter; the field is set to the whole matched text.
      std::vector<std::string> pattern;
      int k = 0;
      for (int i = v.start_segment; i < v.end_segment; ++i) {
        const HttpTemplate::Segment& seg = t.segments[i];
        if (seg.kind == HttpTemplate::Segment::Kind::kLiteral) {
          pattern.push_back(seg.literal);
          absl::StrAppend(&path, "/", seg.literal);
          continue;
        }
        std::string name = absl::StrCat(dotted, "_", ++k);
        pattern.push_back(absl::StrCat("{", name, "}"));
        absl::StrAppend(&path, "/{", name, "}");
        add_path_param(
            name, TypeSchema("string"),
            JoinDescriptions(
                field_text,
                absl::StrCat(seg.kind == HttpTemplate::Segment::Kind::kMultiWildcard
                                 ? "The rest of the path (may hold several segments)"
                                 : "One path segment",
                             " of field ", dotted, ", which is set to the matched text \"",
                             absl::StrJoin(pattern, "/"),
                             seg.kind == HttpTemplate::Segment::Kind::kMultiWildcard ? ""
                                                                                    : "...",
                             "\".")));
      }
    }
    s = v.end_segment;
  }
  if (path.empty()) path = "/";
  if (!t.verb.empty()) absl::StrAppend(&path, ":", t.verb);
  return path;
}

void Generator::AddQueryParameters(const MethodPlan& plan, const Descriptor* d,
                                   const std::string& prefix, FieldPath* path,
                                   std::vector<const Descriptor*>* stack, Json* parameters) {
  stack->push_back(d);
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (path->empty() && plan.body_kind == MethodPlan::BodyKind::kField &&
        f == plan.body_field) {
      continue;  // set by the body
    }
    path->push_back(f);
    bool bound = false;
    for (const FieldPath& p : plan.path_fields) bound = bound || p == *path;
    const std::string name = absl::StrCat(prefix, FieldName(f));
    Json schema;
    Json p;
    bool add = !bound;
    if (!add) {
      // set by the path
    } else if (f->is_map()) {
      const FieldDescriptor* value = f->message_type()->map_value();
      add = value->message_type() == nullptr || HasTextForm(value->message_type());
      if (add) {
        schema = FieldSchema(f);
        p.Set("style", Json::String("deepObject"));
        p.Set("explode", Json::Bool(true));
      }
    } else if (f->message_type() != nullptr) {
      const Descriptor* m = f->message_type();
      if (HasTextForm(m)) {
        schema = FieldSchema(f);
      } else {
        add = false;
        // Fields of a singular message are set with dotted names; repeated messages and
        // the other well-known types cannot be set from the query.
        bool on_stack = false;
        for (const Descriptor* s : *stack) on_stack = on_stack || s == m;
        if (!f->is_repeated() && !IsWellKnownType(m) && !on_stack &&
            static_cast<int>(stack->size()) < kMaxQueryDepth) {
          AddQueryParameters(plan, m, name + ".", path, stack, parameters);
        }
      }
    } else {
      schema = FieldSchema(f);
    }
    if (add) {
      Json param;
      param.Set("name", Json::String(name));
      param.Set("in", Json::String("query"));
      std::string text = Comments(f);
      if (f->is_map()) {
        text = JoinDescriptions(text, absl::StrCat("One parameter per entry: ", name,
                                                   "[KEY]=VALUE."));
      } else if (f->is_repeated()) {
        text = JoinDescriptions(text, absl::StrCat("Repeat the parameter for each value: ",
                                                   name, "=a&", name, "=b."));
      }
      SetDescription(&param, text);
      for (const char* key : {"style", "explode"}) {
        if (const Json* v = p.Find(key)) param.Set(key, *v);
      }
      param.Set("schema", std::move(schema));
      parameters->Push(std::move(param));
    }
    path->pop_back();
  }
  stack->pop_back();
}

Json Generator::RequestBody(const MethodPlan& plan) {
  Json body;
  Json content;
  if (plan.body_is_http_body) {
    Json media;
    media.Set("schema", Json());
    content.Set("*/*", std::move(media));
    SetDescription(&body,
                   "The raw body, of any content type (passed to the method as a "
                   "google.api.HttpBody).");
    body.Set("content", std::move(content));
    return body;
  }
  Json schema = plan.body_kind == MethodPlan::BodyKind::kWhole
                    ? MessageSchema(plan.method->input_type())
                    : FieldSchema(plan.body_field);
  if (plan.client_streaming) {
    Json array = TypeSchema("array");
    array.Set("items", schema);
    Json json_media;
    json_media.Set("schema", std::move(array));
    content.Set("application/json", std::move(json_media));
    Json ndjson_media;
    ndjson_media.Set("schema", std::move(schema));
    content.Set("application/x-ndjson", std::move(ndjson_media));
    SetDescription(&body,
                   "A stream of request messages: one JSON array (application/json), or one "
                   "message per line (application/x-ndjson). Each message is sent to the "
                   "backend as soon as it is complete.");
  } else {
    Json media;
    media.Set("schema", std::move(schema));
    content.Set("application/json", std::move(media));
    if (plan.body_kind == MethodPlan::BodyKind::kField) {
      SetDescription(&body, absl::StrCat("The request field ", plan.body_field->name(), "."));
    }
  }
  body.Set("content", std::move(content));
  return body;
}

Json Generator::Responses(const MethodPlan& plan) {
  Json responses;
  Json ok;
  Json content;
  const Descriptor* output = plan.method->output_type();
  if (plan.response_is_http_body) {
    Json media;
    media.Set("schema", Json());
    content.Set("*/*", std::move(media));
    SetDescription(&ok, plan.server_streaming
                            ? "The raw content of each google.api.HttpBody message, in turn, "
                              "with the content type of the first."
                            : "The raw content of the google.api.HttpBody, with its content "
                              "type.");
  } else {
    Json schema = plan.response_body_field != nullptr ? FieldSchema(plan.response_body_field)
                                                      : MessageSchema(output);
    if (plan.server_streaming) {
      Json array = TypeSchema("array");
      array.Set("items", schema);
      Json json_media;
      json_media.Set("schema", std::move(array));
      content.Set("application/json", std::move(json_media));
      Json ndjson_media;
      ndjson_media.Set("schema", schema);
      content.Set("application/x-ndjson", std::move(ndjson_media));
      Json sse_media;
      Json sse = TypeSchema("string");
      SetDescription(&sse, "One \"data:\" event per message.");
      sse_media.Set("schema", std::move(sse));
      content.Set("text/event-stream", std::move(sse_media));
      const char* default_format = "application/json";
      if (options_.default_stream_format == transcoder::StreamFormat::kNdjson) {
        default_format = "application/x-ndjson";
      } else if (options_.default_stream_format == transcoder::StreamFormat::kServerSentEvents) {
        default_format = "text/event-stream";
      }
      SetDescription(
          &ok, absl::StrCat(
                   "A stream of messages, framed as the Accept header asks: one JSON array "
                   "written element by element (application/json), one message per line "
                   "(application/x-ndjson) or Server-Sent Events (text/event-stream); "
                   "without a choice, ",
                   default_format,
                   ". An error after the stream started ends it with {\"error\": <",
                   kStatusSchema,
                   ">} (the last array element or line) or an \"event: error\" event."));
    } else {
      Json media;
      media.Set("schema", std::move(schema));
      content.Set("application/json", std::move(media));
      SetDescription(&ok, "OK");
    }
  }
  ok.Set("content", std::move(content));
  responses.Set("200", std::move(ok));
  Json error;
  SetDescription(&error,
                 "An error: the gRPC status as JSON, with the HTTP status mapped from its code "
                 "(INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, "
                 "NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, ...).");
  Json error_content;
  Json error_media;
  referenced_.insert(kStatusSchema);
  error_media.Set("schema", Ref(kStatusSchema));
  error_content.Set("application/json", std::move(error_media));
  error.Set("content", std::move(error_content));
  responses.Set("default", std::move(error));
  return responses;
}

void Generator::BuildSecuritySchemes() {
  auto sources_or_default = [](const auto& from, config::v1::CredentialSource def) {
    std::vector<config::v1::CredentialSource> out(from.begin(), from.end());
    if (out.empty()) out.push_back(std::move(def));
    return out;
  };
  auto add = [&](const std::string& provider, const std::vector<config::v1::CredentialSource>& from,
                 bool jwt, const std::string& what) {
    std::vector<SecurityScheme>& schemes = provider_schemes_[provider];
    for (size_t i = 0; i < from.size(); ++i) {
      const config::v1::CredentialSource& src = from[i];
      std::string name = i == 0 ? provider : absl::StrCat(provider, "_", i + 1);
      Json s;
      if (jwt && src.has_header() && absl::AsciiStrToLower(src.header()) == "authorization") {
        s.Set("type", Json::String("http"));
        s.Set("scheme", Json::String("bearer"));
        s.Set("bearerFormat", Json::String("JWT"));
      } else {
        s.Set("type", Json::String("apiKey"));
        s.Set("in", Json::String(src.has_header() ? "header" : "query"));
        s.Set("name", Json::String(src.has_header() ? src.header() : src.query_parameter()));
      }
      SetDescription(&s, what);
      security_schemes_.Set(name, std::move(s));
      schemes.push_back({name, jwt});
    }
  };
  config::v1::CredentialSource bearer;
  bearer.set_header("authorization");
  for (const config::v1::JwtProvider& p : options_.auth.jwt_providers()) {
    std::string what = absl::StrCat("A JWT issued by ", p.issuer());
    if (!p.audiences().empty()) {
      absl::StrAppend(&what, " for one of the audiences ", absl::StrJoin(p.audiences(), ", "));
    }
    absl::StrAppend(&what, ".");
    add(p.name(), sources_or_default(p.from(), bearer), true, what);
  }
  if (options_.auth.has_api_keys()) {
    config::v1::CredentialSource key_header;
    key_header.set_header("x-api-key");
    add("api_key", sources_or_default(options_.auth.api_keys().from(), key_header), false,
        "An API key.");
  }
  for (const config::v1::AuthRule& r : options_.auth.rules()) {
    if (r.identities().empty()) continue;
    Json s;
    s.Set("type", Json::String("mutualTLS"));
    SetDescription(&s, "A client certificate (mutual TLS) with an allowed identity.");
    security_schemes_.Set(kMutualTls, std::move(s));
    break;
  }
}

const config::v1::AuthRule* Generator::RuleFor(const MethodDescriptor* method) const {
  const config::v1::AuthRule* best = nullptr;
  int best_rank = 0;
  const std::string service_wildcard = absl::StrCat(method->service()->full_name(), ".*");
  for (const config::v1::AuthRule& r : options_.auth.rules()) {
    for (const std::string& s : r.selectors()) {
      int rank = s == method->full_name() ? 3 : s == service_wildcard ? 2 : s == "*" ? 1 : 0;
      if (rank > best_rank) {
        best_rank = rank;
        best = &r;
      }
    }
  }
  return best;
}

void Generator::AddSecurity(const MethodDescriptor* method, Json* op) {
  if (options_.auth.rules().empty()) return;
  const config::v1::AuthRule* rule = RuleFor(method);
  if (rule == nullptr) {
    const Json* d = op->Find("description");
    SetDescription(op, JoinDescriptions(d != nullptr ? d->text() : "",
                                        "Refused (PERMISSION_DENIED): no auth rule covers this "
                                        "method."));
    return;
  }
  Json security = Json::Array();
  if (rule->allow_unauthenticated()) {
    op->Set("security", std::move(security));
    return;
  }
  std::vector<std::string> scopes(rule->required_scopes().begin(),
                                  rule->required_scopes().end());
  const bool mtls = !rule->identities().empty();
  for (const std::string& provider : rule->providers()) {
    auto it = provider_schemes_.find(provider);
    if (it == provider_schemes_.end()) continue;
    for (const SecurityScheme& s : it->second) {
      Json requirement;
      requirement.Set(s.name, Json::Strings(s.jwt ? scopes : std::vector<std::string>()));
      if (mtls) requirement.Set(kMutualTls, Json::Array());
      security.Push(std::move(requirement));
    }
  }
  if (rule->providers().empty() && mtls) {
    Json requirement;
    requirement.Set(kMutualTls, Json::Array());
    security.Push(std::move(requirement));
  }
  op->Set("security", std::move(security));
}

Json Generator::Operation(const MethodPlan& plan, const std::string& operation_id,
                          Json parameters) {
  Json op;
  op.Set("operationId", Json::String(operation_id));
  op.Set("tags", Json::Strings({plan.method->service()->full_name()}));
  SetDescription(&op, Comments(plan.method));
  Json path_params = std::move(parameters);
  if (plan.body_kind != MethodPlan::BodyKind::kWhole) {
    FieldPath path;
    std::vector<const Descriptor*> stack;
    AddQueryParameters(plan, plan.method->input_type(), "", &path, &stack, &path_params);
  }
  if (!path_params.empty()) op.Set("parameters", std::move(path_params));
  if (plan.body_kind != MethodPlan::BodyKind::kNone) op.Set("requestBody", RequestBody(plan));
  op.Set("responses", Responses(plan));
  AddSecurity(plan.method, &op);
  op.Set("x-grpc-method", Json::String(absl::StrCat("/", plan.method->service()->full_name(),
                                                    "/", plan.method->name())));
  return op;
}

absl::StatusOr<std::string> Generator::Generate(const transcoder::RouteSet& routes,
                                                const std::vector<std::string>& services) {
  std::vector<const ServiceDescriptor*> chosen;
  absl::flat_hash_set<const ServiceDescriptor*> wanted;
  for (const std::string& name : services) {
    const ServiceDescriptor* s = routes.pool().FindServiceByName(name);
    if (s == nullptr) return absl::NotFoundError(absl::StrCat("no service named ", name));
    if (wanted.insert(s).second) chosen.push_back(s);
  }
  if (services.empty()) {
    for (const auto& plan : routes.plans()) {
      if (wanted.insert(plan->method->service()).second) {
        chosen.push_back(plan->method->service());
      }
    }
  }
  BuildSecuritySchemes();

  // Paths in the order of the routes; bindings of one path share its path item.
  std::vector<std::pair<std::string, Json>> paths;
  absl::flat_hash_map<std::string, size_t> path_index;
  absl::flat_hash_map<const MethodDescriptor*, int> bindings_seen;
  static constexpr absl::string_view kMethods[] = {"get",     "put",  "post",    "delete",
                                                   "options", "head", "patch", "trace"};
  for (const auto& plan : routes.plans()) {
    if (!wanted.contains(plan->method->service())) continue;
    if (plan->client_streaming && plan->server_streaming) continue;  // not over HTTP
    const std::string verb = absl::AsciiStrToLower(plan->http_method);
    bool known = false;
    for (absl::string_view m : kMethods) known = known || m == verb;
    if (!known) continue;
    const int n = ++bindings_seen[plan->method];
    const std::string operation_id =
        n == 1 ? plan->method->full_name() : absl::StrCat(plan->method->full_name(), "_", n);
    Json parameters = Json::Array();
    const std::string path = PathAndParameters(*plan, &parameters);
    auto [it, inserted] = path_index.try_emplace(path, paths.size());
    if (inserted) paths.emplace_back(path, Json());
    paths[it->second].second.Set(verb, Operation(*plan, operation_id, std::move(parameters)));
  }
  BuildComponents();

  Json doc;
  doc.Set("openapi", Json::String("3.1.0"));
  Json info;
  std::string title = options_.title;
  if (title.empty()) title = chosen.size() == 1 && !services.empty() ? services[0] : "gatewayd";
  info.Set("title", Json::String(title));
  info.Set("version", Json::String(options_.version));
  if (chosen.size() == 1) SetDescription(&info, Comments(chosen[0]));
  doc.Set("info", std::move(info));
  Json tags = Json::Array();
  for (const ServiceDescriptor* s : chosen) {
    Json tag;
    tag.Set("name", Json::String(s->full_name()));
    SetDescription(&tag, Comments(s));
    tags.Push(std::move(tag));
  }
  doc.Set("tags", std::move(tags));
  Json paths_json;
  for (auto& [path, item] : paths) paths_json.Append(path, std::move(item));
  doc.Set("paths", std::move(paths_json));
  Json components;
  Json schemas;
  for (auto& [name, schema] : schemas_) schemas.Append(name, std::move(schema));
  components.Set("schemas", std::move(schemas));
  if (!security_schemes_.empty()) {
    components.Set("securitySchemes", std::move(security_schemes_));
  }
  doc.Set("components", std::move(components));
  std::string out;
  doc.Write(&out, 0);
  out.push_back('\n');
  return out;
}

}  // namespace

absl::StatusOr<std::string> GenerateOpenApi(const transcoder::RouteSet& routes,
                                            const std::vector<std::string>& services,
                                            const OpenApiOptions& options) {
  Generator generator(options);
  return generator.Generate(routes, services);
}

}  // namespace gateway::openapi
