// Test helpers: descriptor pools built at run time the way the gateway
// builds them (from FileDescriptorSet bytes).
#ifndef GATEWAY_TRANSCODER_TEST_UTIL_H_
#define GATEWAY_TRANSCODER_TEST_UTIL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace gateway::transcoder::testing {

inline constexpr char kBookstoreService[] = "gateway.transcoder.testing.Bookstore";

// Builds a pool from a serialized FileDescriptorSet whose files are in
// dependency order (as protoc --include_imports writes them).
absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> PoolFromDescriptorSet(
    const std::string& bytes);

// The pool of transcoder/testdata/bookstore.proto, read from the descriptor
// set in the test's runfiles. Aborts the test binary if it cannot be read.
const google::protobuf::DescriptorPool& BookstorePool();

// The bookstore FileDescriptorSet bytes from the runfiles.
std::string BookstoreDescriptorSetBytes();

// A pool with the given file (text format FileDescriptorProto) on top of the
// bookstore set's files (so it may import google/api/annotations.proto etc.).
absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> PoolWithFile(
    const std::string& file_text_proto);

}  // namespace gateway::transcoder::testing

#endif  // GATEWAY_TRANSCODER_TEST_UTIL_H_
