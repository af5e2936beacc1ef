#include "gateway/registry/compatibility.h"

#include <deque>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace gateway::registry {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::MethodDescriptor;
using ::google::protobuf::ServiceDescriptor;

std::string RuleText(const google::api::HttpRule& rule) {
  std::string text;
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      text = absl::StrCat("GET ", rule.get());
      break;
    case google::api::HttpRule::kPut:
      text = absl::StrCat("PUT ", rule.put());
      break;
    case google::api::HttpRule::kPost:
      text = absl::StrCat("POST ", rule.post());
      break;
    case google::api::HttpRule::kDelete:
      text = absl::StrCat("DELETE ", rule.delete_());
      break;
    case google::api::HttpRule::kPatch:
      text = absl::StrCat("PATCH ", rule.patch());
      break;
    case google::api::HttpRule::kCustom:
      text = absl::StrCat("CUSTOM(", rule.custom().kind(), ") ", rule.custom().path());
      break;
    case google::api::HttpRule::PATTERN_NOT_SET:
      text = "(no pattern)";
      break;
  }
  if (!rule.body().empty()) absl::StrAppend(&text, " body=", rule.body());
  if (!rule.response_body().empty()) {
    absl::StrAppend(&text, " response_body=", rule.response_body());
  }
  return text;
}

std::string TypeText(const FieldDescriptor& field) {
  if (field.message_type() != nullptr) return field.message_type()->full_name();
  if (field.enum_type() != nullptr) return field.enum_type()->full_name();
  return field.type_name();
}

std::string Cardinality(const FieldDescriptor& field) {
  if (field.is_map()) return "map";
  return field.is_repeated() ? "repeated" : "singular";
}

// Walks the messages and enums reachable from the old service and compares each with the
// type of the same name in the new pool.
class TypeComparer {
 public:
  TypeComparer(const google::protobuf::DescriptorPool& after, std::vector<std::string>* out)
      : after_(after), out_(out) {}

  void Visit(const Descriptor* d) {
    if (d != nullptr && seen_.insert(d->full_name()).second) pending_.push_back(d);
  }

  void Run() {
    while (!pending_.empty()) {
      const Descriptor* before = pending_.front();
      pending_.pop_front();
      const Descriptor* after = after_.FindMessageTypeByName(before->full_name());
      for (int i = 0; i < before->field_count(); ++i) {
        const FieldDescriptor* f = before->field(i);
        Visit(f->message_type());
        if (f->enum_type() != nullptr && after != nullptr) CompareEnum(f->enum_type());
        if (after != nullptr) CompareField(*f, *after);
      }
    }
  }

 private:
  void CompareField(const FieldDescriptor& old_field, const Descriptor& after) {
    const std::string name = old_field.full_name();
    const FieldDescriptor* by_name = after.FindFieldByName(old_field.name());
    if (by_name == nullptr) {
      const FieldDescriptor* by_number = after.FindFieldByNumber(old_field.number());
      if (by_number != nullptr) {
        out_->push_back(absl::StrCat(name, ": renamed to ", by_number->name(), " (field ",
                                     old_field.number(), ")"));
      } else {
        out_->push_back(absl::StrCat(name, ": removed"));
      }
      return;
    }
    if (by_name->number() != old_field.number()) {
      out_->push_back(absl::StrCat(name, ": field number changed ", old_field.number(),
                                   " -> ", by_name->number()));
    }
    if (TypeText(*by_name) != TypeText(old_field)) {
      out_->push_back(absl::StrCat(name, ": type changed ", TypeText(old_field), " -> ",
                                   TypeText(*by_name)));
    }
    if (Cardinality(*by_name) != Cardinality(old_field)) {
      out_->push_back(absl::StrCat(name, ": cardinality changed ", Cardinality(old_field),
                                   " -> ", Cardinality(*by_name)));
    }
  }

  void CompareEnum(const EnumDescriptor* before) {
    if (!seen_enums_.insert(before->full_name()).second) return;
    const EnumDescriptor* after = after_.FindEnumTypeByName(before->full_name());
    if (after == nullptr) return;  // the field's type change names it
    for (int i = 0; i < before->value_count(); ++i) {
      const auto* value = before->value(i);
      const auto* now = after->FindValueByName(value->name());
      const std::string name = absl::StrCat(before->full_name(), ".", value->name());
      if (now == nullptr) {
        out_->push_back(absl::StrCat(name, ": removed"));
      } else if (now->number() != value->number()) {
        out_->push_back(absl::StrCat(name, ": value changed ", value->number(), " -> ",
                                     now->number()));
      }
    }
  }

  const google::protobuf::DescriptorPool& after_;
  std::vector<std::string>* out_;
  std::deque<const Descriptor*> pending_;
  std::set<std::string> seen_;
  std::set<std::string> seen_enums_;
};

std::string JoinRules(const std::vector<std::string>& rules) {
  return rules.empty() ? "none" : absl::StrJoin(rules, ", ");
}

// --- Comparing two copies of one file. ---

using ::google::protobuf::DescriptorProto;
using ::google::protobuf::EnumDescriptorProto;
using ::google::protobuf::FieldDescriptorProto;
using ::google::protobuf::FileDescriptorProto;
using ::google::protobuf::MethodDescriptorProto;
using ::google::protobuf::ServiceDescriptorProto;

// protoc's default JSON name: lowerCamelCase of the field name.
std::string DefaultJsonName(const std::string& name) {
  std::string out;
  bool upper_next = false;
  for (char c : name) {
    if (c == '_') {
      upper_next = true;
    } else if (upper_next) {
      out.push_back(absl::ascii_toupper(c));
      upper_next = false;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Deterministic(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

// Options without those that change nothing on the wire or in the mapping.
std::string OptionsKey(google::protobuf::FieldOptions o) {
  o.clear_deprecated();
  o.clear_ctype();
  o.clear_lazy();
  o.clear_weak();
  return Deterministic(o);
}
std::string OptionsKey(google::protobuf::MessageOptions o) {
  o.clear_deprecated();
  o.clear_no_standard_descriptor_accessor();
  return Deterministic(o);
}
std::string OptionsKey(google::protobuf::EnumOptions o) {
  o.clear_deprecated();
  return Deterministic(o);
}
std::string OptionsKey(google::protobuf::EnumValueOptions o) {
  o.clear_deprecated();
  return Deterministic(o);
}
std::string OptionsKey(google::protobuf::ServiceOptions o) {
  o.clear_deprecated();
  return Deterministic(o);
}
std::string OptionsKey(google::protobuf::MethodOptions o) {
  o.clear_deprecated();
  return Deterministic(o);
}

std::string TypeText(const FieldDescriptorProto& f) {
  std::string type = f.has_type()
                         ? absl::AsciiStrToLower(absl::StripPrefix(
                               FieldDescriptorProto::Type_Name(f.type()), "TYPE_"))
                         : "unresolved";
  if (!f.type_name().empty()) {
    absl::StrAppend(&type, " ", absl::StripPrefix(f.type_name(), "."));
  }
  return type;
}

std::string LabelText(const FieldDescriptorProto& f) {
  std::string label =
      absl::AsciiStrToLower(absl::StripPrefix(FieldDescriptorProto::Label_Name(f.label()),
                                              "LABEL_"));
  if (f.proto3_optional()) label = "proto3 optional";
  return label;
}

std::string OrNone(const std::string& s) { return s.empty() ? "none" : s; }

std::string HttpRuleOf(const google::protobuf::MethodOptions& options) {
  google::protobuf::MethodOptions parsed;
  if (!parsed.ParseFromString(options.SerializeAsString()) ||
      !parsed.HasExtension(google::api::http)) {
    return "none";
  }
  const google::api::HttpRule& rule = parsed.GetExtension(google::api::http);
  std::vector<std::string> texts = {RuleText(rule)};
  for (const auto& extra : rule.additional_bindings()) texts.push_back(RuleText(extra));
  return absl::StrJoin(texts, ", ");
}

template <typename T>
std::map<std::string, const T*> ByName(const google::protobuf::RepeatedPtrField<T>& items) {
  std::map<std::string, const T*> out;
  for (const T& item : items) out.emplace(item.name(), &item);
  return out;
}

class FileComparer {
 public:
  FileComparer(const std::string& file, const std::string& a_label, const std::string& b_label,
               std::vector<std::string>* out)
      : file_(file), a_(a_label), b_(b_label), out_(out) {}

  void Compare(const FileDescriptorProto& a, const FileDescriptorProto& b) {
    if (a.package() != b.package()) Diff("file", "package", OrNone(a.package()), OrNone(b.package()));
    const std::string syntax_a = a.syntax().empty() ? "proto2" : a.syntax();
    const std::string syntax_b = b.syntax().empty() ? "proto2" : b.syntax();
    if (syntax_a != syntax_b) Diff("file", "syntax", syntax_a, syntax_b);
    const std::string scope = a.package().empty() ? "" : absl::StrCat(a.package(), ".");
    Messages(scope, a.message_type(), b.message_type());
    Enums(scope, a.enum_type(), b.enum_type());
    Extensions(scope, a.extension(), b.extension());
    Services(scope, a.service(), b.service());
  }

 private:
  void Diff(const std::string& where, const std::string& what, const std::string& va,
            const std::string& vb) {
    out_->push_back(absl::StrCat(file_, ": ", where, ": ", what, " ", va, " (", a_, ") vs ", vb,
                                 " (", b_, ")"));
  }
  void Only(const std::string& where, bool in_a) {
    out_->push_back(absl::StrCat(file_, ": ", where, ": only in ", in_a ? a_ : b_));
  }

  template <typename T, typename F>
  void Pair(const std::string& kind, const std::string& scope,
            const google::protobuf::RepeatedPtrField<T>& a,
            const google::protobuf::RepeatedPtrField<T>& b, F compare) {
    const auto in_a = ByName(a);
    const auto in_b = ByName(b);
    for (const auto& [name, item] : in_a) {
      const std::string where = absl::StrCat(kind, " ", scope, name);
      auto it = in_b.find(name);
      if (it == in_b.end()) {
        Only(where, true);
      } else {
        compare(where, absl::StrCat(scope, name), *item, *it->second);
      }
    }
    for (const auto& [name, item] : in_b) {
      if (in_a.count(name) == 0) Only(absl::StrCat(kind, " ", scope, name), false);
    }
  }

  void Messages(const std::string& scope,
                const google::protobuf::RepeatedPtrField<DescriptorProto>& a,
                const google::protobuf::RepeatedPtrField<DescriptorProto>& b) {
    Pair("message", scope, a, b,
         [this](const std::string& where, const std::string& full, const DescriptorProto& x,
                const DescriptorProto& y) { Message(where, full, x, y); });
  }

  void Message(const std::string& where, const std::string& full, const DescriptorProto& a,
               const DescriptorProto& b) {
    std::map<int, const FieldDescriptorProto*> fields_a, fields_b;
    for (const auto& f : a.field()) fields_a.emplace(f.number(), &f);
    for (const auto& f : b.field()) fields_b.emplace(f.number(), &f);
    for (const auto& [number, fa] : fields_a) {
      auto it = fields_b.find(number);
      const std::string field_where = absl::StrCat(where, " field '", fa->name(), "' (", number, ")");
      if (it == fields_b.end()) {
        Only(field_where, true);
        continue;
      }
      Field(field_where, *fa, a, *it->second, b);
    }
    for (const auto& [number, fb] : fields_b) {
      if (fields_a.count(number) == 0) {
        Only(absl::StrCat(where, " field '", fb->name(), "' (", number, ")"), false);
      }
    }
    if (OptionsKey(a.options()) != OptionsKey(b.options())) {
      Diff(where, "options", a.options().ShortDebugString(), b.options().ShortDebugString());
    }
    auto ranges = [](const DescriptorProto& m) {
      std::vector<std::string> out;
      for (const auto& r : m.extension_range()) out.push_back(absl::StrCat(r.start(), "-", r.end() - 1));
      return OrNone(absl::StrJoin(out, ","));
    };
    if (ranges(a) != ranges(b)) Diff(where, "extension ranges", ranges(a), ranges(b));
    const std::string scope = absl::StrCat(full, ".");
    Messages(scope, a.nested_type(), b.nested_type());
    Enums(scope, a.enum_type(), b.enum_type());
    Extensions(scope, a.extension(), b.extension());
  }

  void Field(const std::string& where, const FieldDescriptorProto& a, const DescriptorProto& ma,
             const FieldDescriptorProto& b, const DescriptorProto& mb) {
    if (a.name() != b.name()) Diff(where, "name", a.name(), b.name());
    if (TypeText(a) != TypeText(b)) Diff(where, "type", TypeText(a), TypeText(b));
    if (LabelText(a) != LabelText(b)) Diff(where, "label", LabelText(a), LabelText(b));
    auto oneof = [](const FieldDescriptorProto& f, const DescriptorProto& m) -> std::string {
      if (!f.has_oneof_index() || f.proto3_optional()) return "none";
      if (f.oneof_index() < 0 || f.oneof_index() >= m.oneof_decl_size()) return "invalid";
      return m.oneof_decl(f.oneof_index()).name();
    };
    if (oneof(a, ma) != oneof(b, mb)) Diff(where, "oneof", oneof(a, ma), oneof(b, mb));
    const std::string json_a = a.has_json_name() ? a.json_name() : DefaultJsonName(a.name());
    const std::string json_b = b.has_json_name() ? b.json_name() : DefaultJsonName(b.name());
    if (json_a != json_b) Diff(where, "json_name", json_a, json_b);
    if (a.default_value() != b.default_value()) {
      Diff(where, "default", OrNone(a.default_value()), OrNone(b.default_value()));
    }
    if (a.extendee() != b.extendee()) Diff(where, "extendee", OrNone(a.extendee()), OrNone(b.extendee()));
    if (OptionsKey(a.options()) != OptionsKey(b.options())) {
      Diff(where, "options", OrNone(a.options().ShortDebugString()),
           OrNone(b.options().ShortDebugString()));
    }
  }

  void Extensions(const std::string& scope,
                  const google::protobuf::RepeatedPtrField<FieldDescriptorProto>& a,
                  const google::protobuf::RepeatedPtrField<FieldDescriptorProto>& b) {
    const DescriptorProto none;
    Pair("extension", scope, a, b,
         [&](const std::string& where, const std::string&, const FieldDescriptorProto& x,
             const FieldDescriptorProto& y) {
           if (x.number() != y.number()) {
             Diff(where, "number", absl::StrCat(x.number()), absl::StrCat(y.number()));
           }
           Field(where, x, none, y, none);
         });
  }

  void Enums(const std::string& scope,
             const google::protobuf::RepeatedPtrField<EnumDescriptorProto>& a,
             const google::protobuf::RepeatedPtrField<EnumDescriptorProto>& b) {
    Pair("enum", scope, a, b,
         [this](const std::string& where, const std::string&, const EnumDescriptorProto& x,
                const EnumDescriptorProto& y) {
           const auto values_a = ByName(x.value());
           const auto values_b = ByName(y.value());
           for (const auto& [name, va] : values_a) {
             const std::string value_where = absl::StrCat(where, " value ", name);
             auto it = values_b.find(name);
             if (it == values_b.end()) {
               Only(value_where, true);
               continue;
             }
             if (va->number() != it->second->number()) {
               Diff(value_where, "number", absl::StrCat(va->number()),
                    absl::StrCat(it->second->number()));
             }
             if (OptionsKey(va->options()) != OptionsKey(it->second->options())) {
               Diff(value_where, "options", OrNone(va->options().ShortDebugString()),
                    OrNone(it->second->options().ShortDebugString()));
             }
           }
           for (const auto& [name, vb] : values_b) {
             if (values_a.count(name) == 0) Only(absl::StrCat(where, " value ", name), false);
           }
           if (OptionsKey(x.options()) != OptionsKey(y.options())) {
             Diff(where, "options", OrNone(x.options().ShortDebugString()),
                  OrNone(y.options().ShortDebugString()));
           }
         });
  }

  void Services(const std::string& scope,
                const google::protobuf::RepeatedPtrField<ServiceDescriptorProto>& a,
                const google::protobuf::RepeatedPtrField<ServiceDescriptorProto>& b) {
    Pair("service", scope, a, b,
         [this](const std::string& where, const std::string& full, const ServiceDescriptorProto& x,
                const ServiceDescriptorProto& y) {
           if (OptionsKey(x.options()) != OptionsKey(y.options())) {
             Diff(where, "options", OrNone(x.options().ShortDebugString()),
                  OrNone(y.options().ShortDebugString()));
           }
           Pair("method", absl::StrCat(full, "."), x.method(), y.method(),
                [this](const std::string& method_where, const std::string&,
                       const MethodDescriptorProto& m, const MethodDescriptorProto& n) {
                  Method(method_where, m, n);
                });
         });
  }

  void Method(const std::string& where, const MethodDescriptorProto& a,
              const MethodDescriptorProto& b) {
    if (a.input_type() != b.input_type()) {
      Diff(where, "request type", std::string(absl::StripPrefix(a.input_type(), ".")),
           std::string(absl::StripPrefix(b.input_type(), ".")));
    }
    if (a.output_type() != b.output_type()) {
      Diff(where, "response type", std::string(absl::StripPrefix(a.output_type(), ".")),
           std::string(absl::StripPrefix(b.output_type(), ".")));
    }
    if (a.client_streaming() != b.client_streaming()) {
      Diff(where, "client streaming", a.client_streaming() ? "yes" : "no",
           b.client_streaming() ? "yes" : "no");
    }
    if (a.server_streaming() != b.server_streaming()) {
      Diff(where, "server streaming", a.server_streaming() ? "yes" : "no",
           b.server_streaming() ? "yes" : "no");
    }
    if (OptionsKey(a.options()) != OptionsKey(b.options())) {
      const std::string rule_a = HttpRuleOf(a.options());
      const std::string rule_b = HttpRuleOf(b.options());
      if (rule_a != rule_b) {
        Diff(where, "option google.api.http", rule_a, rule_b);
      } else {
        Diff(where, "options", OrNone(a.options().ShortDebugString()),
             OrNone(b.options().ShortDebugString()));
      }
    }
  }

  const std::string file_;
  const std::string a_;
  const std::string b_;
  std::vector<std::string>* out_;
};

}  // namespace

std::vector<std::string> FileDifferences(const google::protobuf::FileDescriptorProto& a,
                                         const std::string& a_label,
                                         const google::protobuf::FileDescriptorProto& b,
                                         const std::string& b_label, int max_lines) {
  std::vector<std::string> out;
  FileComparer(a.name(), a_label, b_label, &out).Compare(a, b);
  if (max_lines > 0 && out.size() > static_cast<std::size_t>(max_lines)) {
    const std::size_t more = out.size() - static_cast<std::size_t>(max_lines);
    out.resize(static_cast<std::size_t>(max_lines));
    out.push_back(absl::StrCat("(and ", more, " more differences)"));
  }
  return out;
}

std::string StreamingKind(const MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) return "bidi streaming";
  if (method.client_streaming()) return "client streaming";
  if (method.server_streaming()) return "server streaming";
  return "unary";
}

std::vector<std::string> HttpRuleTexts(const MethodDescriptor& method) {
  // Options of a pool built from bytes may hold the extension as unknown fields;
  // re-parsing with the generated extension linked in resolves it.
  google::protobuf::MethodOptions options;
  std::vector<std::string> out;
  if (!options.ParseFromString(method.options().SerializeAsString()) ||
      !options.HasExtension(google::api::http)) {
    return out;
  }
  const google::api::HttpRule& rule = options.GetExtension(google::api::http);
  out.push_back(RuleText(rule));
  for (const google::api::HttpRule& extra : rule.additional_bindings()) {
    out.push_back(RuleText(extra));
  }
  return out;
}

std::vector<std::string> BreakingChanges(const ServiceDescriptor& before,
                                         const ServiceDescriptor& after) {
  std::vector<std::string> out;
  TypeComparer types(*after.file()->pool(), &out);
  for (int i = 0; i < before.method_count(); ++i) {
    const MethodDescriptor* old_method = before.method(i);
    const std::string name = old_method->full_name();
    const MethodDescriptor* new_method = after.FindMethodByName(old_method->name());
    if (new_method == nullptr) {
      out.push_back(absl::StrCat(name, ": removed"));
      continue;
    }
    if (StreamingKind(*old_method) != StreamingKind(*new_method)) {
      out.push_back(absl::StrCat(name, ": streaming kind changed ", StreamingKind(*old_method),
                                 " -> ", StreamingKind(*new_method)));
    }
    if (old_method->input_type()->full_name() != new_method->input_type()->full_name()) {
      out.push_back(absl::StrCat(name, ": request type changed ",
                                 old_method->input_type()->full_name(), " -> ",
                                 new_method->input_type()->full_name()));
    } else {
      types.Visit(old_method->input_type());
    }
    if (old_method->output_type()->full_name() != new_method->output_type()->full_name()) {
      out.push_back(absl::StrCat(name, ": response type changed ",
                                 old_method->output_type()->full_name(), " -> ",
                                 new_method->output_type()->full_name()));
    } else {
      types.Visit(old_method->output_type());
    }
    const std::vector<std::string> old_rules = HttpRuleTexts(*old_method);
    const std::vector<std::string> new_rules = HttpRuleTexts(*new_method);
    if (old_rules != new_rules) {
      out.push_back(absl::StrCat(name, ": http rule changed ", JoinRules(old_rules), " -> ",
                                 JoinRules(new_rules)));
    }
  }
  types.Run();
  return out;
}

}  // namespace gateway::registry
