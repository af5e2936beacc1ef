#include "transcoder/request_translator.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "transcoder/field_text.h"
#include "transcoder/json_scan.h"
#include "transcoder/percent_encoding.h"
#include "transcoder/wire_util.h"

namespace gateway::transcoder {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

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
    const FieldDescriptor* f = FindFieldByAnyName(d, name);
    if (f == nullptr) return {};
    path.push_back(f);
    d = (f->message_type() != nullptr && !f->is_repeated() && !IsWellKnownType(f->message_type()))
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
    const FieldDescriptor* f = FindFieldByAnyName(d, key);
    std::string name = absl::StrCat(prefix, f != nullptr ? f->name() : std::string(key));
    if (f != nullptr && f->message_type() != nullptr && !f->is_repeated() &&
        !IsWellKnownType(f->message_type()) && !value.empty() && value[0] == '{' &&
        depth < 64) {
      size_t before = paths->size();
      CollectMaskPaths(f->message_type(), value, name + ".", depth + 1, paths);
      if (paths->size() != before) return;
    }
    paths->push_back(std::move(name));
  });
}

// Where a field path was set from, for error messages: "query parameter 'a.b'".
std::string Source(absl::string_view kind, const FieldPath& path) {
  std::string out = absl::StrCat(kind, " '");
  for (size_t i = 0; i < path.size(); ++i) absl::StrAppend(&out, i ? "." : "", path[i]->name());
  out.push_back('\'');
  return out;
}

}  // namespace

// Which member of each oneof the request has set so far, to refuse a second
// member of the same oneof (protobuf's JSON mapping refuses it too). Costs
// nothing for fields outside oneofs.
class RequestTranslator::OneofMembers {
 public:
  // Records that `path` is set (each of its components is then set in its
  // message); `kind` says by what ("query parameter", "path variable").
  absl::Status Note(const FieldPath& path, absl::string_view kind) {
    for (size_t i = 0; i < path.size(); ++i) {
      const google::protobuf::OneofDescriptor* oneof = path[i]->real_containing_oneof();
      if (oneof == nullptr) continue;
      const absl::Span<const FieldDescriptor* const> prefix(path.data(), i);
      bool known = false;
      for (const Member& m : members_) {
        if (m.oneof != oneof || absl::Span<const FieldDescriptor* const>(m.path.data(), i) != prefix) {
          continue;
        }
        if (m.path[i] != path[i]) {
          std::string name;
          for (size_t j = 0; j < i; ++j) absl::StrAppend(&name, path[j]->name(), ".");
          absl::StrAppend(&name, oneof->name());
          return Invalid(absl::StrCat(m.source, " and ", Source(kind, path),
                                      " set two members of oneof '", name, "' ('",
                                      m.path[i]->name(), "' and '", path[i]->name(),
                                      "'); set at most one"));
        }
        known = true;
        break;
      }
      if (!known) members_.push_back(Member{oneof, path, Source(kind, path)});
    }
    return absl::OkStatus();
  }

 private:
  struct Member {
    const google::protobuf::OneofDescriptor* oneof;
    FieldPath path;  // path[i] is the member, where i is the depth of `oneof`
    std::string source;
  };
  std::vector<Member> members_;
};

RequestTranslator::RequestTranslator(const RouteSet& routes) : routes_(routes) {
  std::vector<const Descriptor*> roots;
  for (const auto& plan : routes.plans()) {
    roots.push_back(plan->method->input_type());
    roots.push_back(plan->method->output_type());
  }
  resolver_ = std::make_unique<CachedTypeResolver>(routes.pool(), roots);
  codec_ = std::make_unique<JsonCodec>(routes.pool(), roots, resolver_.get());
}

absl::Status RequestTranslator::JsonToBinary(const Descriptor* type,
                                             absl::string_view json,
                                             const RequestOptions& options,
                                             std::string* out) const {
  JsonParseConfig config;
  config.max_depth = options.max_json_depth;
  config.ignore_unknown_fields = options.ignore_unknown_json_fields;
  config.case_insensitive_enums = options.case_insensitive_enums;
  return codec_->JsonToProto(type, json, config, out);
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
        body[start] == '{' && !IsWellKnownType(f->message_type())) {
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
                                            bool* mask_given, OneofMembers* members,
                                            std::string* out) const {
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
      return Invalid(absl::StrCat("unknown query parameter ", QuoteForError(key), ": ", why));
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
          "invalid query parameter ", QuoteForError(key), ": ",
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
      return Invalid(absl::StrCat("invalid value for query parameter ", QuoteForError(key), ": ",
                                  s.message()));
    }
    if (absl::Status s = members->Note(path, "query parameter"); !s.ok()) return s;
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
  OneofMembers members;
  if (absl::Status s = AppendQuery(*match.plan, query, options, &mask_given, &members, &out);
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < match.plan->path_fields.size() && i < match.bindings.size(); ++i) {
    if (absl::Status s = members.Note(match.plan->path_fields[i], "path variable"); !s.ok()) {
      return s;
    }
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
  OneofMembers members;
  if (absl::Status s = AppendQuery(plan, query, options, &mask_given, &members, &query_bytes);
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < plan.path_fields.size() && i < match.bindings.size(); ++i) {
    if (absl::Status s = members.Note(plan.path_fields[i], "path variable"); !s.ok()) return s;
  }
  if (plan.body_kind == MethodPlan::BodyKind::kField && plan.body_field->real_containing_oneof()) {
    size_t start = 0;
    SkipJsonWhitespace(body, &start);
    if (start < body.size() || plan.body_is_http_body) {
      if (absl::Status s = members.Note({plan.body_field}, "body field"); !s.ok()) return s;
    }
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
