#include "auth/jose_util.h"

#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/container/flat_hash_map.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace gateway::auth {
namespace {

// Value of a base64url character, or -1.
int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

constexpr char kStructUrl[] = "type.googleapis.com/google.protobuf.Struct";

// Resolves the google.protobuf.Struct family from types converted once at
// construction. protobuf's JSON parser asks its resolver for every type on
// every call, and the descriptor pool resolver rebuilds the google.protobuf.Type
// each time. Immutable after construction, so thread-safe.
class StructTypeResolver : public google::protobuf::util::TypeResolver {
 public:
  StructTypeResolver() {
    std::unique_ptr<google::protobuf::util::TypeResolver> pool(
        google::protobuf::util::NewTypeResolverForDescriptorPool(
            "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool()));
    for (const char* name : {"Struct", "Struct.FieldsEntry", "Value", "ListValue"}) {
      const std::string url = absl::StrCat("type.googleapis.com/google.protobuf.", name);
      (void)pool->ResolveMessageType(url, &messages_[url]);
    }
    const std::string null_url = "type.googleapis.com/google.protobuf.NullValue";
    (void)pool->ResolveEnumType(null_url, &enums_[null_url]);
  }

  google::protobuf::util::Status ResolveMessageType(const std::string& type_url,
                                                    google::protobuf::Type* type) override {
    auto it = messages_.find(type_url);
    if (it == messages_.end()) return NotFound(type_url);
    *type = it->second;
    return google::protobuf::util::Status();
  }

  google::protobuf::util::Status ResolveEnumType(const std::string& type_url,
                                                 google::protobuf::Enum* enum_type) override {
    auto it = enums_.find(type_url);
    if (it == enums_.end()) return NotFound(type_url);
    *enum_type = it->second;
    return google::protobuf::util::Status();
  }

 private:
  static google::protobuf::util::Status NotFound(const std::string& type_url) {
    return google::protobuf::util::NotFoundError(
                                          absl::StrCat("unexpected type ", type_url));
  }

  absl::flat_hash_map<std::string, google::protobuf::Type> messages_;
  absl::flat_hash_map<std::string, google::protobuf::Enum> enums_;
};

// Returns the deepest nesting of arrays and objects in `json`, counting
// brackets outside string literals. Stops counting past `limit`. This is not
// a validator: the protobuf converter parses the text afterwards.
int NestingDepth(absl::string_view json, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

StructTypeResolver& Resolver() {
  // Built on first use and never changed afterwards.
  static StructTypeResolver* const resolver = new StructTypeResolver();
  return *resolver;
}

}  // namespace

absl::StatusOr<std::string> DecodeBase64Url(absl::string_view in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (Base64UrlValue(in[i]) < 0) {
      if (in[i] == '=') {
        return absl::InvalidArgumentError(
            absl::StrCat("padding character '=' at offset ", i,
                         " (base64url in JOSE is unpadded)"));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("invalid base64url character at offset ", i));
    }
  }
  const size_t rem = in.size() % 4;
  if (rem == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid base64url length ", in.size()));
  }
  // Canonical form: the bits below the last whole byte must be zero.
  if (rem != 0) {
    const int last = Base64UrlValue(in.back());
    const int unused_mask = rem == 2 ? 0x0f : 0x03;
    if ((last & unused_mask) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("non-canonical base64url: unused bits set in the last character (offset ",
                       in.size() - 1, ")"));
    }
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(in, &out)) {
    return absl::InvalidArgumentError("invalid base64url");
  }
  return out;
}

std::string EncodeBase64Url(absl::string_view in) {
  return absl::WebSafeBase64Escape(in);  // unpadded
}

std::string QuoteForMessage(absl::string_view s, size_t max_len) {
  const bool cut = s.size() > max_len;
  if (cut) s = s.substr(0, max_len);
  return absl::StrCat("\"", absl::CHexEscape(s), cut ? "...\"" : "\"");
}

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json,
                                                          absl::string_view what) {
  if (NestingDepth(json, kMaxJsonDepth) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " nests arrays and objects more than ", kMaxJsonDepth, " levels deep"));
  }
  google::protobuf::Struct out;
  std::string binary;
  const auto status = google::protobuf::util::JsonToBinaryString(
      &Resolver(), kStructUrl, google::protobuf::StringPiece(json.data(), json.size()), &binary,
      google::protobuf::util::JsonParseOptions());
  if (!status.ok()) {
    // The converter's message may quote the rest of the input after a newline;
    // keep only its first line, short and escaped.
    const std::string message(status.message().data(), status.message().size());
    absl::string_view first_line = message;
    first_line = first_line.substr(0, first_line.find('\n'));
    if (first_line.find("Root element must be a message") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is not valid JSON: ", absl::CHexEscape(first_line.substr(0, 96))));
  }
  if (!out.ParseFromString(binary)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " could not be converted"));
  }
  return out;
}

}  // namespace gateway::auth
