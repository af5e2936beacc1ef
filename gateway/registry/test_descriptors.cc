#include "gateway/registry/test_descriptors.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "google/api/annotations.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"

namespace gateway::registry::testing {

using ::google::protobuf::FileDescriptorProto;

FileDescriptorProto FileFromText(const std::string& text) {
  FileDescriptorProto file;
  if (!google::protobuf::TextFormat::ParseFromString(text, &file)) {
    std::fprintf(stderr, "test_descriptors: bad FileDescriptorProto text:\n%s\n", text.c_str());
    std::abort();
  }
  return file;
}

std::string DescriptorSetOf(const std::vector<FileDescriptorProto>& files, bool with_imports) {
  google::protobuf::FileDescriptorSet set;
  if (with_imports) {
    // Make sure the generated annotations file is linked and registered.
    (void)google::api::http.number();
    for (const char* name : {"google/protobuf/descriptor.proto", "google/api/http.proto",
                             "google/api/annotations.proto"}) {
      const google::protobuf::FileDescriptor* f =
          google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
      if (f == nullptr) {
        std::fprintf(stderr, "test_descriptors: %s is not linked in\n", name);
        std::abort();
      }
      FileDescriptorProto* out = set.add_file();
      f->CopyTo(out);
      f->CopyJsonNameTo(out);
    }
  }
  for (const FileDescriptorProto& f : files) *set.add_file() = f;
  return set.SerializeAsString();
}

std::string DescriptorSetFromText(const std::string& text) {
  return DescriptorSetOf({FileFromText(text)});
}

std::string SimpleServiceSet(const std::string& package, const std::string& service,
                             const std::string& get_path) {
  return DescriptorSetOf({SimpleServiceFile(package, service, get_path)});
}

FileDescriptorProto SimpleServiceFile(const std::string& package, const std::string& service,
                                      const std::string& get_path) {
  const std::string rule =
      get_path.empty() ? "" : absl::StrCat("options { [google.api.http] { get: \"", get_path,
                                           "\" } }");
  return FileFromText(absl::StrCat(
      "name: \"", package, ".proto\" package: \"", package, "\" syntax: \"proto3\" ",
      "dependency: \"google/api/annotations.proto\" ",
      "message_type { name: \"Request\" ",
      "  field { name: \"id\" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: \"id\" }",
      "  field { name: \"name\" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: \"name\" } }",
      "message_type { name: \"Response\" ",
      "  field { name: \"id\" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: \"id\" } }",
      "service { name: \"", service, "\" method { name: \"Get\" input_type: \".", package,
      ".Request\" output_type: \".", package, ".Response\" ", rule, " } }"));
}

}  // namespace gateway::registry::testing
