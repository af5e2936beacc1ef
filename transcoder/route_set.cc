#include "transcoder/route_set.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway::transcoder {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

// Reads the google.api.http option of `method`. The options of a pool built
// at run time from FileDescriptorSet bytes may hold the extension as unknown
// fields; re-parsing the serialized options with the generated extension
// linked in resolves it either way.
bool ReadHttpRule(const MethodDescriptor* method, google::api::HttpRule* rule) {
  google::protobuf::MethodOptions options;
  if (!options.ParseFromString(method->options().SerializeAsString())) return false;
  if (!options.HasExtension(google::api::http)) return false;
  *rule = options.GetExtension(google::api::http);
  return true;
}

std::string RuleText(absl::string_view http_method, absl::string_view path) {
  return absl::StrCat(absl::AsciiStrToLower(http_method), " \"", path, "\"");
}

class PlanBuilder {
 public:
  PlanBuilder(const MethodDescriptor* method) : method_(method) {}

  absl::Status Error(absl::string_view rule_text, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "method ", method_->full_name(), ", rule ", rule_text, ": ", what));
  }

  // Resolves a dotted path against `root`. When `need_scalar`, the last field
  // must be a singular non-message field.
  absl::StatusOr<FieldPath> Resolve(const Descriptor* root,
                                    const std::vector<std::string>& names,
                                    absl::string_view rule_text, int position,
                                    bool need_scalar) const {
    FieldPath path;
    const Descriptor* current = root;
    std::string dotted = absl::StrJoin(names, ".");
    std::string where = position >= 0 ? absl::StrCat("position ", position, ": ") : "";
    for (size_t i = 0; i < names.size(); ++i) {
      if (current == nullptr) {
        return Error(rule_text, absl::StrCat(where, "field path '", dotted,
                                             "' goes through non-message field '",
                                             names[i - 1], "'"));
      }
      const FieldDescriptor* f = current->FindFieldByName(names[i]);
      if (f == nullptr) {
        return Error(rule_text, absl::StrCat(where, "field '", names[i],
                                             "' (in '", dotted, "') does not exist in ",
                                             current->full_name()));
      }
      bool last = i + 1 == names.size();
      if (f->is_repeated() && (need_scalar || !last)) {
        return Error(rule_text, absl::StrCat(where, "field '", dotted, "' is repeated; ",
                                             last ? "a path variable needs a singular scalar field"
                                                  : "only singular message fields may be traversed"));
      }
      if (last && need_scalar && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        return Error(rule_text, absl::StrCat(where, "field '", dotted, "' is a message (",
                                             f->message_type()->full_name(),
                                             "); a path variable needs a scalar field"));
      }
      path.push_back(f);
      current = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? f->message_type()
                                                                  : nullptr;
    }
    return path;
  }

  absl::StatusOr<std::unique_ptr<MethodPlan>> Build(const google::api::HttpRule& rule) {
    auto plan = std::make_unique<MethodPlan>();
    plan->method = method_;
    plan->client_streaming = method_->client_streaming();
    plan->server_streaming = method_->server_streaming();
    std::string path;
    switch (rule.pattern_case()) {
      case google::api::HttpRule::kGet: plan->http_method = "GET"; path = rule.get(); break;
      case google::api::HttpRule::kPut: plan->http_method = "PUT"; path = rule.put(); break;
      case google::api::HttpRule::kPost: plan->http_method = "POST"; path = rule.post(); break;
      case google::api::HttpRule::kDelete:
        plan->http_method = "DELETE"; path = rule.delete_(); break;
      case google::api::HttpRule::kPatch:
        plan->http_method = "PATCH"; path = rule.patch(); break;
      case google::api::HttpRule::kCustom:
        plan->http_method = rule.custom().kind();
        path = rule.custom().path();
        if (plan->http_method.empty()) {
          return Error(RuleText("custom", path), "custom rule has an empty kind");
        }
        break;
      case google::api::HttpRule::PATTERN_NOT_SET:
        return Error("(no pattern)", "the rule sets none of get/put/post/delete/patch/custom");
    }
    plan->rule_text = RuleText(plan->http_method, path);
    absl::StatusOr<HttpTemplate> tmpl = ParseHttpTemplate(path);
    if (!tmpl.ok()) return Error(plan->rule_text, tmpl.status().message());
    plan->path_template = *std::move(tmpl);

    const Descriptor* input = method_->input_type();
    for (const HttpTemplate::Variable& v : plan->path_template.variables) {
      absl::StatusOr<FieldPath> fp = Resolve(input, v.field_path, plan->rule_text,
                                             v.position, /*need_scalar=*/true);
      if (!fp.ok()) return fp.status();
      plan->path_fields.push_back(*std::move(fp));
    }

    if (rule.body().empty()) {
      plan->body_kind = MethodPlan::BodyKind::kNone;
    } else if (rule.body() == "*") {
      plan->body_kind = MethodPlan::BodyKind::kWhole;
      plan->body_is_http_body = IsHttpBody(input);
    } else {
      plan->body_kind = MethodPlan::BodyKind::kField;
      plan->body_field = input->FindFieldByName(rule.body());
      if (plan->body_field == nullptr) {
        return Error(plan->rule_text, absl::StrCat("body field '", rule.body(),
                                                   "' does not exist in ",
                                                   input->full_name()));
      }
      plan->body_is_http_body = !plan->body_field->is_repeated() &&
                                plan->body_field->message_type() != nullptr &&
                                IsHttpBody(plan->body_field->message_type());
    }
    if (plan->client_streaming && plan->body_kind != MethodPlan::BodyKind::kWhole) {
      return Error(plan->rule_text,
                   "a client-streaming method needs body \"*\" (each message is a whole "
                   "request)");
    }

    const Descriptor* output = method_->output_type();
    if (!rule.response_body().empty()) {
      plan->response_body_field = output->FindFieldByName(rule.response_body());
      if (plan->response_body_field == nullptr) {
        return Error(plan->rule_text, absl::StrCat("response_body field '",
                                                   rule.response_body(),
                                                   "' does not exist in ",
                                                   output->full_name()));
      }
      plan->response_is_http_body =
          !plan->response_body_field->is_repeated() &&
          plan->response_body_field->message_type() != nullptr &&
          IsHttpBody(plan->response_body_field->message_type());
    } else {
      plan->response_is_http_body = IsHttpBody(output);
    }

    if (plan->http_method == "PATCH" && plan->body_kind == MethodPlan::BodyKind::kField) {
      for (int i = 0; i < input->field_count(); ++i) {
        const FieldDescriptor* f = input->field(i);
        if (!f->is_repeated() && f->message_type() != nullptr &&
            f->message_type()->full_name() == "google.protobuf.FieldMask") {
          plan->update_mask_field = f;
          break;
        }
      }
    }
    return plan;
  }

 private:
  const MethodDescriptor* method_;
};

}  // namespace

bool IsHttpBody(const Descriptor* d) {
  return d != nullptr && d->full_name() == "google.api.HttpBody";
}

absl::StatusOr<std::unique_ptr<const RouteSet>> RouteSet::Create(
    const google::protobuf::DescriptorPool& pool,
    const std::vector<std::string>& services, const RouteSetOptions& options) {
  std::unique_ptr<RouteSet> set(new RouteSet());
  set->pool_ = &pool;
  PathMatcherBuilder builder;
  for (const std::string& service_name : services) {
    const google::protobuf::ServiceDescriptor* service =
        pool.FindServiceByName(service_name);
    if (service == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("service '", service_name, "' is not in the descriptor pool"));
    }
    for (int m = 0; m < service->method_count(); ++m) {
      const MethodDescriptor* method = service->method(m);
      PlanBuilder plan_builder(method);
      std::vector<google::api::HttpRule> rules;
      google::api::HttpRule rule;
      if (ReadHttpRule(method, &rule)) {
        for (const google::api::HttpRule& extra : rule.additional_bindings()) {
          if (extra.additional_bindings_size() > 0) {
            return plan_builder.Error(
                "additional_bindings",
                "additional_bindings may not have additional_bindings of their own");
          }
          rules.push_back(extra);
        }
        rule.clear_additional_bindings();
        rules.insert(rules.begin(), rule);
      }
      if (options.expose_grpc_paths) {
        google::api::HttpRule grpc_rule;
        grpc_rule.set_post(absl::StrCat("/", service->full_name(), "/", method->name()));
        grpc_rule.set_body("*");
        rules.push_back(grpc_rule);
      }
      for (const google::api::HttpRule& r : rules) {
        absl::StatusOr<std::unique_ptr<MethodPlan>> plan = plan_builder.Build(r);
        if (!plan.ok()) return plan.status();
        int id = static_cast<int>(set->plans_.size());
        std::string description =
            absl::StrCat(method->full_name(), " (", (*plan)->rule_text, ")");
        if (absl::Status s = builder.Add((*plan)->http_method, (*plan)->path_template,
                                         id, description);
            !s.ok()) {
          return s;
        }
        set->plans_.push_back(*std::move(plan));
      }
    }
  }
  set->matcher_ = std::move(builder).Build();
  return std::unique_ptr<const RouteSet>(std::move(set));
}

absl::StatusOr<RouteMatch> RouteSet::Match(absl::string_view http_method,
                                           absl::string_view path) const {
  absl::StatusOr<PathMatch> m = matcher_->Match(http_method, path);
  if (!m.ok()) return m.status();
  RouteMatch result;
  result.plan = plans_[m->route_id].get();
  result.bindings = std::move(m->bindings);
  return result;
}

}  // namespace gateway::transcoder
