#include "gateway/interceptors/selector.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace gateway {

absl::Status CheckSelectorSyntax(const std::string& selector, const std::string& key) {
  if (selector == "*") return absl::OkStatus();
  absl::string_view body = selector;
  if (absl::EndsWith(body, ".*")) body.remove_suffix(2);
  const std::vector<absl::string_view> parts = absl::StrSplit(body, '.');
  bool valid = parts.size() >= 2;
  for (absl::string_view part : parts) {
    if (part.empty() || absl::ascii_isdigit(part[0])) valid = false;
    for (char c : part) {
      if (!absl::ascii_isalnum(c) && c != '_') valid = false;
    }
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, ": \"", selector,
        "\" is not a selector (\"pkg.Service.Method\", \"pkg.Service.*\" or \"*\")"));
  }
  return absl::OkStatus();
}

}  // namespace gateway
