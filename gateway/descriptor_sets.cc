#include "gateway/descriptor_sets.h"

#include <functional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/config/config_loader.h"

namespace gateway {
namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FileDescriptorProto;
using ::google::protobuf::FileDescriptorSet;

class CollectingErrors : public DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message*, ErrorLocation,
                const std::string& message) override {
    errors_.push_back(
        absl::StrCat(filename, element_name.empty() ? "" : absl::StrCat(" (", element_name, ")"),
                     ": ", message));
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

absl::Status DescriptorSetBuilder::AddSerialized(absl::string_view bytes,
                                                 absl::string_view origin) {
  FileDescriptorSet set;
  if (!set.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not a FileDescriptorSet (expected the output of protoc "
                             "--include_imports --descriptor_set_out)"));
  }
  if (set.file_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": the descriptor set is empty"));
  }
  for (FileDescriptorProto& file : *set.mutable_file()) {
    if (file.name().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": a file in the descriptor set has no name"));
    }
    // Source info does not change meaning; compare without it.
    FileDescriptorProto stripped = file;
    stripped.clear_source_code_info();
    std::string serialized = stripped.SerializeAsString();
    auto it = files_.find(file.name());
    if (it != files_.end()) {
      if (it->second.serialized != serialized) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ": file \"", file.name(), "\" differs from the one in ",
                         it->second.origin));
      }
      continue;
    }
    Entry& entry = files_[file.name()];
    entry.serialized = std::move(serialized);
    entry.origin = std::string(origin);
    entry.proto = std::move(file);
  }
  return absl::OkStatus();
}

absl::Status DescriptorSetBuilder::AddFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) return bytes.status();
  return AddSerialized(*bytes, path);
}

absl::StatusOr<std::shared_ptr<const DescriptorPool>> DescriptorSetBuilder::Build() const {
  auto pool = std::make_shared<DescriptorPool>();
  std::set<std::string> built;
  std::set<std::string> in_progress;

  // Builds files in dependency order; a missing import is named with its importer.
  std::function<absl::Status(const std::string&, const std::string&)> build =
      [&](const std::string& name, const std::string& importer) -> absl::Status {
    if (built.count(name) > 0) return absl::OkStatus();
    auto it = files_.find(name);
    if (it == files_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", importer, "\" imports \"", name,
                       "\", which is in no descriptor set (build the set with "
                       "protoc --include_imports)"));
    }
    if (!in_progress.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("import cycle through \"", name, "\""));
    }
    for (const std::string& dep : it->second.proto.dependency()) {
      absl::Status status = build(dep, name);
      if (!status.ok()) return status;
    }
    CollectingErrors errors;
    if (pool->BuildFileCollectingErrors(it->second.proto, &errors) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(it->second.origin, ": invalid file \"", name, "\": ", errors.Joined()));
    }
    in_progress.erase(name);
    built.insert(name);
    return absl::OkStatus();
  };
  for (const auto& [name, entry] : files_) {
    absl::Status status = build(name, name);
    if (!status.ok()) return status;
  }
  return std::shared_ptr<const DescriptorPool>(std::move(pool));
}

}  // namespace gateway
