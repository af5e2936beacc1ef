// CachedTypeResolver: a google::protobuf::util::TypeResolver over a
// DescriptorPool that converts the message and enum types reachable from a
// set of root messages once, at construction, instead of on every call.
// protobuf's JSON converters ask their resolver for every type they meet on
// every conversion; the plain pool resolver rebuilds a google.protobuf.Type
// each time.
//
// Immutable after construction and thread-safe. Types not reachable from the
// roots (for example the contents of an Any) are resolved through the pool on
// each call. The pool must outlive the resolver.
//
// Example:
//   CachedTypeResolver resolver(pool, {pool.FindMessageTypeByName("pkg.Book")});
//   std::string json;
//   google::protobuf::util::BinaryToJsonString(
//       &resolver, "type.googleapis.com/pkg.Book", bytes, &json);
#ifndef GATEWAY_TRANSCODER_CACHED_TYPE_RESOLVER_H_
#define GATEWAY_TRANSCODER_CACHED_TYPE_RESOLVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/type_resolver.h"

namespace gateway::transcoder {

inline constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// "type.googleapis.com/<full name>".
std::string TypeUrl(const google::protobuf::Descriptor* d);

class CachedTypeResolver : public google::protobuf::util::TypeResolver {
 public:
  CachedTypeResolver(const google::protobuf::DescriptorPool& pool,
                     const std::vector<const google::protobuf::Descriptor*>& roots);

  google::protobuf::util::Status ResolveMessageType(
      const std::string& type_url, google::protobuf::Type* message_type) override;
  google::protobuf::util::Status ResolveEnumType(
      const std::string& type_url, google::protobuf::Enum* enum_type) override;

 private:
  std::unique_ptr<google::protobuf::util::TypeResolver> pool_resolver_;
  absl::flat_hash_map<std::string, google::protobuf::Type> messages_;
  absl::flat_hash_map<std::string, google::protobuf::Enum> enums_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_CACHED_TYPE_RESOLVER_H_
