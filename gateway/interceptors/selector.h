// SelectorMap<T>: which rule applies to a method.
//
// Rules name methods with selectors: a full method name ("pkg.Service.Method"), every
// method of a service ("pkg.Service.*") or every method ("*"); the most specific selector
// that names a method wins. Find() ranks the selectors for one method; it is meant to run
// when a route table is built (Interceptor::Resolve), not per call, so that methods of
// services registered at run time (in descriptor pools that did not exist when the rules
// were compiled) get the same treatment as the configured ones.
//
// Thread-safety: immutable after Build(); Find() is safe from any thread.
//
// Example:
//   SelectorMap<Policy>::Builder builder;
//   RETURN_IF_ERROR(builder.Add("pkg.Svc.*", &policy_a, "rules[0].selectors[0]"));
//   absl::StatusOr<SelectorMap<Policy>> map =
//       std::move(builder).Build(pool, services, SelectorCheck::kStrict);
//   const Policy* p = map->Find(method_descriptor);  // nullptr: no rule

#ifndef GATEWAY_INTERCEPTORS_SELECTOR_H_
#define GATEWAY_INTERCEPTORS_SELECTOR_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace gateway {

// Checks the form of a selector: "*", "a.b.Service.*" or "a.b.Service.Method" (identifiers
// separated by dots). Returns INVALID_ARGUMENT naming `key` otherwise.
absl::Status CheckSelectorSyntax(const std::string& selector, const std::string& key);

// How Build() treats selectors that name no configured method.
enum class SelectorCheck { kStrict, kOpen };

template <typename T>
class SelectorMap {
 private:
  struct Entry {
    std::string selector;
    const T* value;
    std::string key;
  };

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

    // Checks the selectors against the methods of `services` in `pool`: with kStrict,
    // INVALID_ARGUMENT when a selector other than "*" names no method of them (a typo would
    // otherwise silently apply to nothing); with kOpen (services may be registered at run
    // time) every well-formed selector is kept.
    absl::StatusOr<SelectorMap> Build(const google::protobuf::DescriptorPool& pool,
                                      const std::vector<std::string>& services,
                                      SelectorCheck check = SelectorCheck::kStrict) && {
      SelectorMap map;
      map.entries_ = std::move(entries_);
      if (check == SelectorCheck::kOpen) return map;
      std::vector<bool> used(map.entries_.size(), false);
      for (const std::string& name : services) {
        const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName(name);
        if (service == nullptr) continue;
        for (int i = 0; i < service->method_count(); ++i) {
          const int best = map.Best(*service->method(i));
          if (best >= 0) used[best] = true;
        }
      }
      for (std::size_t e = 0; e < map.entries_.size(); ++e) {
        if (!used[e] && map.entries_[e].selector != "*") {
          return absl::InvalidArgumentError(absl::StrCat(
              map.entries_[e].key, ": \"", map.entries_[e].selector,
              "\" names no method of the served services"));
        }
      }
      return map;
    }

   private:
    std::vector<Entry> entries_;
  };

  // The rule for `method`, or nullptr when no selector names it. Costs one comparison per
  // selector: call it when resolving routes, not per call.
  const T* Find(const google::protobuf::MethodDescriptor* method) const {
    const int best = Best(*method);
    return best < 0 ? nullptr : entries_[best].value;
  }

  bool empty() const { return entries_.empty(); }

 private:
  // The index of the most specific entry naming `method`, -1 when none does.
  int Best(const google::protobuf::MethodDescriptor& method) const {
    int best = -1;
    int best_rank = -1;
    for (std::size_t e = 0; e < entries_.size(); ++e) {
      const int rank = Rank(entries_[e].selector, method);
      if (rank > best_rank) {
        best_rank = rank;
        best = static_cast<int>(e);
      }
    }
    return best;
  }

  // 2: exact method, 1: the method's service, 0: "*", -1: no match.
  static int Rank(const std::string& selector, const google::protobuf::MethodDescriptor& method) {
    if (selector == "*") return 0;
    if (absl::EndsWith(selector, ".*")) {
      return selector.compare(0, selector.size() - 2, method.service()->full_name()) == 0 ? 1
                                                                                       : -1;
    }
    return selector == method.full_name() ? 2 : -1;
  }

  std::vector<Entry> entries_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_SELECTOR_H_
