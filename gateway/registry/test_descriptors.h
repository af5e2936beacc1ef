// Test helper: serialized FileDescriptorSets written as text, so each test states the
// proto it registers.
//
// Thread-safety: pure functions.
//
// Example:
//   std::string set = DescriptorSetFromText(R"pb(
//     name: "lib.proto" package: "lib.v1" syntax: "proto3"
//     dependency: "google/api/annotations.proto"
//     message_type { name: "M" }
//     service { name: "S" method { name: "Get" input_type: ".lib.v1.M" output_type: ".lib.v1.M"
//       options { [google.api.http] { get: "/v1/m" } } } }
//   )pb");

#ifndef GATEWAY_REGISTRY_TEST_DESCRIPTORS_H_
#define GATEWAY_REGISTRY_TEST_DESCRIPTORS_H_

#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"

namespace gateway::registry::testing {

// Parses a FileDescriptorProto in text format (aborts the test binary on a typo).
google::protobuf::FileDescriptorProto FileFromText(const std::string& text);

// A FileDescriptorSet holding `files` preceded by google/protobuf/descriptor.proto,
// google/api/http.proto and google/api/annotations.proto (unless `with_imports` is false),
// serialized.
std::string DescriptorSetOf(const std::vector<google::protobuf::FileDescriptorProto>& files,
                            bool with_imports = true);

// DescriptorSetOf({FileFromText(text)}).
std::string DescriptorSetFromText(const std::string& text);

// A file "<package>.proto" in package `package` with a service `service`, messages
// Request {string id = 1; string name = 2;} and Response {string id = 1;}, and one unary
// method Get with the given google.api.http GET path (no rule when `get_path` is empty).
std::string SimpleServiceSet(const std::string& package, const std::string& service,
                             const std::string& get_path);

// The file of SimpleServiceSet alone, to change before DescriptorSetOf({file}).
google::protobuf::FileDescriptorProto SimpleServiceFile(const std::string& package,
                                                        const std::string& service,
                                                        const std::string& get_path);

}  // namespace gateway::registry::testing

#endif  // GATEWAY_REGISTRY_TEST_DESCRIPTORS_H_
