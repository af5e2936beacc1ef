#include "auth/jwt_requirement.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/jose_util.h"

namespace gateway::auth {
namespace {

bool HasWord(absl::string_view words, absl::string_view word) {
  for (absl::string_view w : absl::StrSplit(words, ' ', absl::SkipEmpty())) {
    if (w == word) return true;
  }
  return false;
}

bool HasScope(const google::protobuf::Struct& claims, absl::string_view scope) {
  for (const char* name : {"scope", "scp"}) {
    auto it = claims.fields().find(name);
    if (it == claims.fields().end()) continue;
    const google::protobuf::Value& v = it->second;
    if (v.kind_case() == google::protobuf::Value::kStringValue && HasWord(v.string_value(), scope)) {
      return true;
    }
    if (v.kind_case() == google::protobuf::Value::kListValue) {
      for (const google::protobuf::Value& e : v.list_value().values()) {
        if (e.kind_case() == google::protobuf::Value::kStringValue && e.string_value() == scope) {
          return true;
        }
      }
    }
  }
  return false;
}

bool ScalarMatches(const google::protobuf::Value& v, absl::string_view value) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kStringValue:
      return v.string_value() == value;
    case google::protobuf::Value::kBoolValue:
      return value == (v.bool_value() ? "true" : "false");
    case google::protobuf::Value::kNumberValue: {
      const double d = v.number_value();
      if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) {
        return value == absl::StrCat(static_cast<int64_t>(d));
      }
      return value == absl::StrCat(d);
    }
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const JwtRequirement>> JwtRequirement::Create(
    const JwtRequirementConfig& config) {
  auto requirement = std::shared_ptr<JwtRequirement>(new JwtRequirement());
  for (size_t i = 0; i < config.scopes.size(); ++i) {
    const std::string& scope = config.scopes[i];
    if (scope.empty() || scope.find_first_of(" \t\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("scopes[", i, "]: a scope must be one non-empty word"));
    }
    requirement->scopes_.push_back(scope);
  }
  for (size_t i = 0; i < config.claims.size(); ++i) {
    const JwtRequirementConfig::ClaimMatch& match = config.claims[i];
    Claim claim{match.name, absl::StrSplit(match.name, '.'), match.value};
    for (const std::string& part : claim.path) {
      if (part.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "claims[", i, "]: name ", QuoteForMessage(match.name),
            " must be a dotted path of non-empty names"));
      }
    }
    requirement->claims_.push_back(std::move(claim));
  }
  return std::shared_ptr<const JwtRequirement>(std::move(requirement));
}

absl::Status JwtRequirement::Check(const VerifiedJwt& jwt) const {
  for (const std::string& scope : scopes_) {
    if (!HasScope(jwt.claims, scope)) {
      return absl::PermissionDeniedError(
          absl::StrCat("missing scope ", QuoteForMessage(scope)));
    }
  }
  for (const Claim& claim : claims_) {
    const google::protobuf::Value* v = nullptr;
    const google::protobuf::Struct* obj = &jwt.claims;
    for (size_t i = 0; i < claim.path.size(); ++i) {
      auto it = obj->fields().find(claim.path[i]);
      if (it == obj->fields().end()) {
        v = nullptr;
        break;
      }
      v = &it->second;
      if (i + 1 < claim.path.size()) {
        if (v->kind_case() != google::protobuf::Value::kStructValue) {
          v = nullptr;
          break;
        }
        obj = &v->struct_value();
      }
    }
    if (v == nullptr) {
      return absl::PermissionDeniedError(
          absl::StrCat("claim ", QuoteForMessage(claim.name), " is missing"));
    }
    bool match = ScalarMatches(*v, claim.value);
    if (!match && v->kind_case() == google::protobuf::Value::kListValue) {
      for (const google::protobuf::Value& e : v->list_value().values()) {
        if (ScalarMatches(e, claim.value)) {
          match = true;
          break;
        }
      }
    }
    if (!match) {
      return absl::PermissionDeniedError(absl::StrCat(
          "claim ", QuoteForMessage(claim.name), " does not have the required value"));
    }
  }
  return absl::OkStatus();
}

}  // namespace gateway::auth
