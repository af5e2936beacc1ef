#include "gateway/config/config_loader.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/time_util.h"
#include "transcoder/json_scan.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/yaml.h"

namespace gateway {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// Nesting deeper than this is not a config anyone writes; it guards the recursion.
constexpr int kMaxDepth = 32;

// YAML aliases (`*name`) repeat an anchored node without repeating its text, so a small
// file can stand for an exponentially large config ("billion laughs"). yaml-cpp shares the
// aliased node, which keeps loading cheap; the conversion copies every repetition, so it
// stops at these totals, far above any real config.
constexpr int64_t kMaxValues = 100000;
constexpr int64_t kMaxStringBytes = 16 << 20;

// Scalars echoed in error messages are cut to this many bytes.
constexpr std::size_t kMaxQuotedBytes = 64;

// `text` in double quotes for an error message: escaped, and cut when long.
std::string Quote(absl::string_view text) {
  if (text.size() <= kMaxQuotedBytes) {
    return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxQuotedBytes)),
                      "\"... (", text.size(), " bytes)");
}

class Converter {
 public:
  explicit Converter(absl::string_view origin) : origin_(origin) {}

  absl::Status ToMessage(const YAML::Node& node, Message* msg, const std::string& path,
                         int depth) {
    if (depth > kMaxDepth) return Error(node, path, "nested too deeply");
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) {
      return Error(node, path, absl::StrCat("expected a map of keys, got ", Kind(node)));
    }
    const Descriptor* desc = msg->GetDescriptor();
    absl::flat_hash_set<const FieldDescriptor*> seen;
    absl::flat_hash_map<const google::protobuf::OneofDescriptor*, const FieldDescriptor*>
        oneof_set;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        return Error(entry.first, path, "keys must be plain strings");
      }
      const std::string key = entry.first.Scalar();
      const std::string key_path = path.empty() ? key : absl::StrCat(path, ".", key);
      const FieldDescriptor* field = FindField(desc, key);
      if (field == nullptr) {
        return Error(entry.first, key_path,
                     absl::StrCat("unknown key; known keys here: ", KnownKeys(desc)));
      }
      if (!seen.insert(field).second) {
        return Error(entry.first, key_path, "duplicate key");
      }
      if (const auto* oneof = field->containing_oneof(); oneof != nullptr) {
        auto [it, first] = oneof_set.emplace(oneof, field);
        if (!first) {
          return Error(entry.first, key_path,
                       absl::StrCat("cannot be set together with ", it->second->name(),
                                    " (only one of ", OneofKeys(oneof), ")"));
        }
      }
      absl::Status status = ToField(entry.second, msg, field, key_path, depth);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  static const FieldDescriptor* FindField(const Descriptor* desc, const std::string& key) {
    const FieldDescriptor* field = desc->FindFieldByName(key);
    if (field != nullptr) return field;
    for (int i = 0; i < desc->field_count(); ++i) {
      if (desc->field(i)->json_name() == key) return desc->field(i);
    }
    return nullptr;
  }

  static std::string KnownKeys(const Descriptor* desc) {
    std::vector<std::string> names;
    for (int i = 0; i < desc->field_count(); ++i) names.push_back(desc->field(i)->name());
    return absl::StrJoin(names, ", ");
  }

  static std::string OneofKeys(const google::protobuf::OneofDescriptor* oneof) {
    std::vector<std::string> names;
    for (int i = 0; i < oneof->field_count(); ++i) names.push_back(oneof->field(i)->name());
    return absl::StrJoin(names, ", ");
  }

  static std::string Kind(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return "a map";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Scalar:
        return Quote(node.Scalar());
      case YAML::NodeType::Null:
        return "nothing";
      default:
        return "an undefined value";
    }
  }

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     absl::string_view what) const {
    std::string where = origin_;
    const YAML::Mark mark = node.Mark();
    if (!mark.is_null()) absl::StrAppend(&where, ":", mark.line + 1);
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", path.empty() ? "(top level)" : path, ": ", what));
  }

  absl::Status ToField(const YAML::Node& node, Message* msg, const FieldDescriptor* field,
                       const std::string& path, int depth) {
    if (field->is_map()) return Error(node, path, "map fields are not supported");
    if (field->is_repeated()) {
      if (node.IsNull()) return absl::OkStatus();
      if (!node.IsSequence()) {
        return Error(node, path, absl::StrCat("expected a list, got ", Kind(node)));
      }
      for (std::size_t i = 0; i < node.size(); ++i) {
        absl::Status status =
            ToValue(node[i], msg, field, absl::StrCat(path, "[", i, "]"), depth);
        if (!status.ok()) return status;
      }
      return absl::OkStatus();
    }
    return ToValue(node, msg, field, path, depth);
  }

  // Sets (or, for repeated fields, adds) one value.
  absl::Status ToValue(const YAML::Node& node, Message* msg, const FieldDescriptor* field,
                       const std::string& path, int depth) {
    if (++values_ > kMaxValues) {
      return Error(node, path,
                   absl::StrCat("the config holds more than ", kMaxValues,
                                " values (do YAML aliases repeat a large part of it?)"));
    }
    const Reflection* refl = msg->GetReflection();
    const bool repeated = field->is_repeated();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* sub = repeated ? refl->AddMessage(msg, field) : refl->MutableMessage(msg, field);
      if (field->message_type()->full_name() == "google.protobuf.Duration") {
        return ToDuration(node, sub, path);
      }
      return ToMessage(node, sub, path, depth + 1);
    }
    if (node.IsNull()) return Error(node, path, "missing value");
    if (!node.IsScalar()) {
      return Error(node, path, absl::StrCat("expected a single value, got ", Kind(node)));
    }
    const std::string& text = node.Scalar();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        // Protobuf strings are UTF-8; a NUL would cut a file name or address short.
        if (field->type() == FieldDescriptor::TYPE_STRING && !transcoder::IsValidUtf8(text)) {
          return Error(node, path, absl::StrCat("not valid UTF-8: ", Quote(text)));
        }
        if (text.find('\0') != std::string::npos) {
          return Error(node, path, absl::StrCat("contains a NUL byte: ", Quote(text)));
        }
        string_bytes_ += static_cast<int64_t>(text.size());
        if (string_bytes_ > kMaxStringBytes) {
          return Error(node, path,
                       absl::StrCat("the config's strings add up to more than ",
                                    kMaxStringBytes,
                                    " bytes (do YAML aliases repeat a large part of it?)"));
        }
        repeated ? refl->AddString(msg, field, text) : refl->SetString(msg, field, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        const std::string lower = absl::AsciiStrToLower(text);
        bool value;
        if (lower == "true") {
          value = true;
        } else if (lower == "false") {
          value = false;
        } else {
          return Error(node, path, absl::StrCat("expected true or false, got ", Quote(text)));
        }
        repeated ? refl->AddBool(msg, field, value) : refl->SetBool(msg, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t value;
        const int64_t max = field->cpp_type() == FieldDescriptor::CPPTYPE_INT32
                                ? std::numeric_limits<int32_t>::max()
                                : std::numeric_limits<int64_t>::max();
        const int64_t min = field->cpp_type() == FieldDescriptor::CPPTYPE_INT32
                                ? std::numeric_limits<int32_t>::min()
                                : std::numeric_limits<int64_t>::min();
        if (!absl::SimpleAtoi(text, &value) || value > max || value < min) {
          return Error(node, path, absl::StrCat("expected an integer, got ", Quote(text)));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          repeated ? refl->AddInt32(msg, field, value) : refl->SetInt32(msg, field, value);
        } else {
          repeated ? refl->AddInt64(msg, field, value) : refl->SetInt64(msg, field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t value;
        const uint64_t max = field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32
                                 ? std::numeric_limits<uint32_t>::max()
                                 : std::numeric_limits<uint64_t>::max();
        if (!absl::SimpleAtoi(text, &value) || value > max) {
          return Error(node, path,
                       absl::StrCat("expected a non-negative integer up to ", max, ", got ",
                                    Quote(text)));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
          repeated ? refl->AddUInt32(msg, field, value) : refl->SetUInt32(msg, field, value);
        } else {
          repeated ? refl->AddUInt64(msg, field, value) : refl->SetUInt64(msg, field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double value;
        if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
          return Error(node, path, absl::StrCat("expected a number, got ", Quote(text)));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          repeated ? refl->AddDouble(msg, field, value) : refl->SetDouble(msg, field, value);
        } else {
          repeated ? refl->AddFloat(msg, field, static_cast<float>(value))
                   : refl->SetFloat(msg, field, static_cast<float>(value));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* value = field->enum_type()->FindValueByName(text);
        if (value == nullptr || value->number() == 0) {
          std::vector<std::string> names;
          for (int i = 1; i < field->enum_type()->value_count(); ++i) {
            names.push_back(field->enum_type()->value(i)->name());
          }
          return Error(node, path,
                       absl::StrCat("unknown value ", Quote(text), "; expected one of ",
                                    absl::StrJoin(names, ", ")));
        }
        repeated ? refl->AddEnum(msg, field, value) : refl->SetEnum(msg, field, value);
        return absl::OkStatus();
      }
      default:
        return Error(node, path, "unsupported field type");
    }
  }

  absl::Status ToDuration(const YAML::Node& node, Message* msg, const std::string& path) {
    if (!node.IsScalar()) {
      return Error(node, path,
                   absl::StrCat("expected a duration such as \"10s\" or \"250ms\", got ",
                                Kind(node)));
    }
    absl::Duration d;
    if (!absl::ParseDuration(node.Scalar(), &d) || d == absl::InfiniteDuration() ||
        d < absl::ZeroDuration()) {
      return Error(node, path,
                   absl::StrCat("expected a non-negative duration such as \"10s\" or "
                                "\"250ms\", got ",
                                Quote(node.Scalar())));
    }
    google::protobuf::Duration proto;
    proto.set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
    proto.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
    msg->CopyFrom(proto);
    return absl::OkStatus();
  }

  std::string origin_;
  int64_t values_ = 0;        // values converted so far (aliases count each time)
  int64_t string_bytes_ = 0;  // bytes of strings copied so far
};

}  // namespace

absl::StatusOr<config::v1::Config> ParseConfigText(absl::string_view text,
                                                   absl::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard (about 500 levels of lists or maps) against running out of stack.
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1,
                                                   ": lists or maps nested too deeply"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1,
                     ": not valid YAML or JSON: ", e.msg));
  }
  config::v1::Config config;
  Converter converter(origin);
  try {
    absl::Status status = converter.ToMessage(root, &config, "", 0);
    if (!status.ok()) return status;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  return config;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string reason = std::strerror(err);
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": ", reason));
    if (err == EACCES) return absl::PermissionDeniedError(absl::StrCat(path, ": ", reason));
    return absl::UnavailableError(absl::StrCat(path, ": ", reason));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return out.str();
}

absl::StatusOr<config::v1::Config> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseConfigText(*text, path);
}

}  // namespace gateway
