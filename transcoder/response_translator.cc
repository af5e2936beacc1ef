#include "transcoder/response_translator.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/api/httpbody.pb.h"
#include "transcoder/json_scan.h"
#include "transcoder/wire_util.h"

namespace gateway::transcoder {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

void Indent(int depth, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(depth) * 2, ' ');
}

}  // namespace

std::string PrettyPrintJson(absl::string_view json) {
  std::string out;
  out.reserve(json.size() * 2);
  int depth = 0;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    switch (c) {
      case '"': {
        size_t j = i + 1;
        while (j < json.size() && json[j] != '"') j += json[j] == '\\' ? 2 : 1;
        size_t end = j < json.size() ? j + 1 : json.size();
        out.append(json.data() + i, end - i);
        i = end - 1;
        break;
      }
      case '{':
      case '[': {
        size_t j = i + 1;
        SkipJsonWhitespace(json, &j);
        if (j < json.size() && json[j] == (c == '{' ? '}' : ']')) {
          out.push_back(c);
          out.push_back(json[j]);
          i = j;
          break;
        }
        out.push_back(c);
        Indent(++depth, &out);
        break;
      }
      case '}':
      case ']':
        Indent(--depth, &out);
        out.push_back(c);
        break;
      case ',':
        out.push_back(',');
        Indent(depth, &out);
        break;
      case ':':
        out.append(": ");
        break;
      case ' ': case '\n': case '\r': case '\t':
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

ResponseTranslator::ResponseTranslator(const RouteSet& routes) {
  std::vector<const Descriptor*> roots;
  for (const auto& plan : routes.plans()) {
    roots.push_back(plan->method->output_type());
    roots.push_back(plan->method->input_type());
  }
  resolver_ = std::make_unique<CachedTypeResolver>(routes.pool(), roots);
  codec_ = std::make_unique<JsonCodec>(routes.pool(), roots, resolver_.get());
}

absl::StatusOr<std::string> ResponseTranslator::MessageToJson(
    const Descriptor* type, absl::string_view proto, const ResponseOptions& options) const {
  JsonPrintConfig config;
  config.emit_default_values = options.emit_default_values;
  config.use_proto_field_names = options.use_proto_field_names;
  config.enums_as_ints = options.enums_as_ints;
  config.int64_as_number = options.int64_as_number;
  std::string json;
  if (absl::Status s = codec_->ProtoToJson(type, proto, config, &json); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot convert response ", type->full_name(), " to JSON: ", s.message()));
  }
  if (options.pretty_print) json = PrettyPrintJson(json);
  return json;
}

absl::StatusOr<HttpResponseBody> ResponseTranslator::Translate(
    const MethodPlan& plan, absl::string_view proto,
    const ResponseOptions& options) const {
  const Descriptor* output = plan.method->output_type();
  const FieldDescriptor* f = plan.response_body_field;
  HttpResponseBody result;
  if (plan.response_is_http_body) {
    std::string payload;
    if (f != nullptr) {
      absl::StatusOr<std::string> extracted = ExtractMessagePayload(proto, f->number());
      if (!extracted.ok()) return extracted.status();
      payload = *std::move(extracted);
      proto = payload;
    }
    google::api::HttpBody http_body;
    if (!http_body.ParseFromArray(proto.data(), static_cast<int>(proto.size()))) {
      return absl::InvalidArgumentError("response is not a valid google.api.HttpBody");
    }
    result.content_type = http_body.content_type();
    result.body = std::move(*http_body.mutable_data());
    return result;
  }
  result.content_type = "application/json";
  if (f == nullptr) {
    absl::StatusOr<std::string> json = MessageToJson(output, proto, options);
    if (!json.ok()) return json.status();
    result.body = *std::move(json);
    return result;
  }
  if (f->message_type() != nullptr && !f->is_repeated()) {
    absl::StatusOr<std::string> payload = ExtractMessagePayload(proto, f->number());
    if (!payload.ok()) return payload.status();
    absl::StatusOr<std::string> json = MessageToJson(f->message_type(), *payload, options);
    if (!json.ok()) return json.status();
    result.body = *std::move(json);
    return result;
  }
  // A scalar, repeated or map field: print the message with only that field
  // (defaults included, so that the member is always there) and take the
  // member's value.
  absl::StatusOr<std::string> only_field = ExtractField(proto, f->number());
  if (!only_field.ok()) return only_field.status();
  ResponseOptions compact = options;
  compact.pretty_print = false;
  compact.emit_default_values = true;
  absl::StatusOr<std::string> json = MessageToJson(output, *only_field, compact);
  if (!json.ok()) return json.status();
  std::string key = options.use_proto_field_names ? f->name() : f->json_name();
  bool found = false;
  (void)ForEachJsonMember(*json, [&](absl::string_view k, absl::string_view value) {
    if (k == key) {
      result.body = std::string(value);
      found = true;
    }
  });
  if (!found) result.body = f->is_map() ? "{}" : f->is_repeated() ? "[]" : "null";
  if (options.pretty_print) result.body = PrettyPrintJson(result.body);
  return result;
}

}  // namespace gateway::transcoder
