#include "transcoder/test_util.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"

namespace gateway::transcoder::testing {

absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> PoolFromDescriptorSet(
    const std::string& bytes) {
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("not a FileDescriptorSet");
  }
  auto pool = std::make_unique<google::protobuf::DescriptorPool>();
  for (const google::protobuf::FileDescriptorProto& file : set.file()) {
    if (pool->BuildFile(file) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot build ", file.name()));
    }
  }
  return pool;
}

std::string BookstoreDescriptorSetBytes() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::string path = absl::StrCat(srcdir ? srcdir : ".", "/",
                                  workspace ? workspace : "grpc_gateway",
                                  "/transcoder/testdata/bookstore_proto.pb");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot open " << path << "\n";
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const google::protobuf::DescriptorPool& BookstorePool() {
  static const google::protobuf::DescriptorPool* pool = [] {
    absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> p =
        PoolFromDescriptorSet(BookstoreDescriptorSetBytes());
    if (!p.ok()) {
      std::cerr << p.status() << "\n";
      std::abort();
    }
    return p->release();
  }();
  return *pool;
}

absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> PoolWithFile(
    const std::string& file_text_proto) {
  google::protobuf::FileDescriptorSet set;
  set.ParseFromString(BookstoreDescriptorSetBytes());
  google::protobuf::FileDescriptorProto* file = set.add_file();
  if (!google::protobuf::TextFormat::ParseFromString(file_text_proto, file)) {
    return absl::InvalidArgumentError("bad text proto");
  }
  return PoolFromDescriptorSet(set.SerializeAsString());
}

}  // namespace gateway::transcoder::testing
