#include "gateway/registry/bench_services.h"

#include "absl/strings/str_cat.h"
#include "gateway/registry/test_descriptors.h"

namespace gateway::registry::testing {

std::string BenchServiceName(int index) { return absl::StrCat("bench", index, ".v1.Service"); }

std::string BenchServiceSet(int index, int methods) {
  const std::string package = absl::StrCat("bench", index, ".v1");
  std::string text = absl::StrCat(
      "name: \"bench", index, ".proto\" package: \"", package, "\" syntax: \"proto3\" ",
      "dependency: \"google/api/annotations.proto\" ",
      "message_type { name: \"Request\" ",
      "  field { name: \"id\" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL "
      "json_name: \"id\" }",
      "  field { name: \"page_size\" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL "
      "json_name: \"pageSize\" } }",
      "message_type { name: \"Response\" ",
      "  field { name: \"id\" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL "
      "json_name: \"id\" }",
      "  field { name: \"body\" number: 2 type: TYPE_BYTES label: LABEL_OPTIONAL "
      "json_name: \"body\" } }",
      "service { name: \"Service\" ");
  for (int m = 0; m < methods; ++m) {
    absl::StrAppend(&text, "method { name: \"M", m, "\" input_type: \".", package,
                    ".Request\" output_type: \".", package, ".Response\" ",
                    "options { [google.api.http] { get: \"/v1/s", index, "/m", m,
                    "/{id}\" } } } ");
  }
  absl::StrAppend(&text, "}");
  return DescriptorSetFromText(text);
}

}  // namespace gateway::registry::testing
