// Fuzz target: the API keys file parser. A parsed set must find nothing for
// an empty key, and every key it holds must have a well-formed id.
#include <cstdint>
#include <cstdlib>

#include "auth/api_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::shared_ptr<const gateway::auth::ApiKeySet>> keys =
      gateway::auth::ApiKeySet::Parse(input);
  if (!keys.ok()) {
    if (keys.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if ((*keys)->Find("") != nullptr) std::abort();
  if (const gateway::auth::ApiKey* key = (*keys)->Find(input); key != nullptr) {
    if (key->id.empty() || key->line <= 0) std::abort();
  }
  return 0;
}
