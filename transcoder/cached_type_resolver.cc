#include "transcoder/cached_type_resolver.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace gateway::transcoder {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

std::string TypeUrl(const Descriptor* d) {
  return absl::StrCat(kTypeUrlPrefix, "/", d->full_name());
}

CachedTypeResolver::CachedTypeResolver(const google::protobuf::DescriptorPool& pool,
                                       const std::vector<const Descriptor*>& roots)
    : pool_resolver_(google::protobuf::util::NewTypeResolverForDescriptorPool(
          kTypeUrlPrefix, &pool)) {
  std::vector<const Descriptor*> pending(roots.begin(), roots.end());
  while (!pending.empty()) {
    const Descriptor* d = pending.back();
    pending.pop_back();
    if (d == nullptr) continue;
    std::string url = TypeUrl(d);
    if (messages_.contains(url)) continue;
    google::protobuf::Type type;
    if (!pool_resolver_->ResolveMessageType(url, &type).ok()) continue;
    messages_.emplace(url, std::move(type));
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->message_type() != nullptr) pending.push_back(f->message_type());
      if (f->enum_type() != nullptr) {
        std::string enum_url = absl::StrCat(kTypeUrlPrefix, "/", f->enum_type()->full_name());
        if (!enums_.contains(enum_url)) {
          google::protobuf::Enum e;
          if (pool_resolver_->ResolveEnumType(enum_url, &e).ok()) {
            enums_.emplace(enum_url, std::move(e));
          }
        }
      }
    }
  }
}

google::protobuf::util::Status CachedTypeResolver::ResolveMessageType(
    const std::string& type_url, google::protobuf::Type* message_type) {
  auto it = messages_.find(type_url);
  if (it != messages_.end()) {
    *message_type = it->second;
    return google::protobuf::util::Status();
  }
  return pool_resolver_->ResolveMessageType(type_url, message_type);
}

google::protobuf::util::Status CachedTypeResolver::ResolveEnumType(
    const std::string& type_url, google::protobuf::Enum* enum_type) {
  auto it = enums_.find(type_url);
  if (it != enums_.end()) {
    *enum_type = it->second;
    return google::protobuf::util::Status();
  }
  return pool_resolver_->ResolveEnumType(type_url, enum_type);
}

}  // namespace gateway::transcoder
