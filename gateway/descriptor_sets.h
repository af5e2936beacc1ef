// Builds a self-contained DescriptorPool from FileDescriptorSets (the output of
// `protoc --include_imports --descriptor_set_out`).
//
// Several sets may share files (every set carries google/protobuf/*.proto, for instance):
// a file that appears again with the same content is taken once; the same file name with
// different content is an error naming both sources. Every import must be in one of the
// sets: the pool has no fallback, so what is served is exactly what was registered.
//
// Thread-safety: DescriptorSetBuilder is not thread-safe; the returned pool is immutable
// and safe to share.
//
// Example:
//   DescriptorSetBuilder builder;
//   RETURN_IF_ERROR(builder.AddFile("bookstore.pb"));
//   absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> pool =
//       builder.Build();

#ifndef GATEWAY_DESCRIPTOR_SETS_H_
#define GATEWAY_DESCRIPTOR_SETS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway {

class DescriptorSetBuilder {
 public:
  // Adds the FileDescriptorSet serialized in `bytes`; `origin` names it in errors.
  // Returns INVALID_ARGUMENT if the bytes are not a FileDescriptorSet or a file conflicts
  // with one added before.
  absl::Status AddSerialized(absl::string_view bytes, absl::string_view origin);

  // Reads the file at `path` and adds it. Errors as AddSerialized, or the file system's
  // error naming the path.
  absl::Status AddFile(const std::string& path);

  // Builds a pool with every file added. Returns INVALID_ARGUMENT naming the file and the
  // problem (a missing import, an undefined type, ...). The builder may be reused.
  absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> Build() const;

 private:
  struct Entry {
    google::protobuf::FileDescriptorProto proto;
    std::string serialized;  // to compare duplicates
    std::string origin;
  };
  std::map<std::string, Entry> files_;
};

}  // namespace gateway

#endif  // GATEWAY_DESCRIPTOR_SETS_H_
