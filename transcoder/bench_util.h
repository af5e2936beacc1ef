// Benchmark helpers: a descriptor pool built from the bookstore test proto's
// serialized file descriptors (as the gateway builds pools from descriptor
// sets), without reading runfiles.
#ifndef GATEWAY_TRANSCODER_BENCH_UTIL_H_
#define GATEWAY_TRANSCODER_BENCH_UTIL_H_

#include <cstdlib>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "transcoder/testdata/bookstore.pb.h"

namespace gateway::transcoder::bench {

inline void AddFile(const google::protobuf::FileDescriptor* file,
                    google::protobuf::DescriptorPool* pool) {
  if (pool->FindFileByName(file->name()) != nullptr) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), pool);
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  if (pool->BuildFile(proto) == nullptr) std::abort();
}

inline const google::protobuf::DescriptorPool& BookstorePool() {
  static const google::protobuf::DescriptorPool* pool = [] {
    auto* p = new google::protobuf::DescriptorPool();
    AddFile(gateway::transcoder::testing::Book::descriptor()->file(), p);
    return p;
  }();
  return *pool;
}

}  // namespace gateway::transcoder::bench

#endif  // GATEWAY_TRANSCODER_BENCH_UTIL_H_
