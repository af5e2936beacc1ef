#include "gateway/registry/compatibility.h"

#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"

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

}  // namespace

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
