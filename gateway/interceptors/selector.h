// SelectorMap<T>: which rule applies to each method, resolved once.
//
// Rules name methods with selectors: a full method name ("pkg.Service.Method"), every
// method of a service ("pkg.Service.*") or every method ("*"); the most specific selector
// that names a method wins. Create() resolves every method of the descriptor pool once, so
// Find() is one pointer-keyed hash lookup per call (no string matching on the call path).
//
// Thread-safety: immutable after Create(); Find() is safe from any thread. The map belongs
// to one DescriptorPool: rebuild it when the pool changes.
//
// Example:
//   SelectorMap<Policy>::Builder builder;
//   RETURN_IF_ERROR(builder.Add("pkg.Svc.*", &policy_a, "rules[0].selectors[0]"));
//   absl::StatusOr<SelectorMap<Policy>> map = std::move(builder).Build(pool);
//   const Policy* p = map->Find(method_descriptor);  // nullptr: no rule

#ifndef GATEWAY_INTERCEPTORS_SELECTOR_H_
#define GATEWAY_INTERCEPTORS_SELECTOR_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace gateway {

// Checks the form of a selector: "*", "a.b.Service.*" or "a.b.Service.Method" (identifiers
// separated by dots). Returns INVALID_ARGUMENT naming `key` otherwise.
absl::Status CheckSelectorSyntax(const std::string& selector, const std::string& key);

template <typename T>
class SelectorMap {
 public:
  class Builder {
   public:
    // Adds a selector for `value` (not owned; must outlive the map). `key` names the
    // selector in errors. INVALID_ARGUMENT for a malformed selector or one given twice.
    absl::Status Add(const std::string& selector, const T* value, const std::string& key) {
      absl::Status status = CheckSelectorSyntax(selector, key);
      if (!status.ok()) return status;
      for (const Entry& e : entries_) {
        if (e.selector == selector) {
          return absl::InvalidArgumentError(
              absl::StrCat(key, ": selector \"", selector, "\" is already used by ", e.key));
        }
      }
      entries_.push_back({selector, value, key});
      return absl::OkStatus();
    }

    // Resolves every method of `pool`. INVALID_ARGUMENT when a selector names no method
    // of the pool (a typo would otherwise silently apply to nothing).
    absl::StatusOr<SelectorMap> Build(const google::protobuf::DescriptorPool& pool,
                                      const std::vector<std::string>& services) && {
      SelectorMap map;
      std::vector<bool> used(entries_.size(), false);
      for (const std::string& name : services) {
        const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName(name);
        if (service == nullptr) continue;
        for (int i = 0; i < service->method_count(); ++i) {
          const google::protobuf::MethodDescriptor* method = service->method(i);
          int best = -1;
          int best_rank = -1;
          for (std::size_t e = 0; e < entries_.size(); ++e) {
            const int rank = Rank(entries_[e].selector, *method);
            if (rank > best_rank) {
              best_rank = rank;
              best = static_cast<int>(e);
            }
          }
          if (best >= 0) {
            used[best] = true;
            map.by_method_[method] = entries_[best].value;
          }
        }
      }
      for (std::size_t e = 0; e < entries_.size(); ++e) {
        if (!used[e] && entries_[e].selector != "*") {
          return absl::InvalidArgumentError(absl::StrCat(
              entries_[e].key, ": \"", entries_[e].selector,
              "\" names no method of the served services"));
        }
      }
      return map;
    }

   private:
    struct Entry {
      std::string selector;
      const T* value;
      std::string key;
    };
    // 2: exact method, 1: the method's service, 0: "*", -1: no match.
    static int Rank(const std::string& selector,
                    const google::protobuf::MethodDescriptor& method) {
      if (selector == "*") return 0;
      if (absl::EndsWith(selector, ".*")) {
        return selector.compare(0, selector.size() - 2, method.service()->full_name()) == 0
                   ? 1
                   : -1;
      }
      return selector == method.full_name() ? 2 : -1;
    }
    std::vector<Entry> entries_;
  };

  // The rule for `method`, or nullptr when no selector names it.
  const T* Find(const google::protobuf::MethodDescriptor* method) const {
    auto it = by_method_.find(method);
    return it == by_method_.end() ? nullptr : it->second;
  }

  bool empty() const { return by_method_.empty(); }

 private:
  absl::flat_hash_map<const google::protobuf::MethodDescriptor*, const T*> by_method_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_SELECTOR_H_
