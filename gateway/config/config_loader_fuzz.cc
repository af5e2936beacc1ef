// Fuzz target: the config loader (YAML or JSON text -> gateway.config.v1.Config).
//
// Besides not crashing, leaking or running away on hostile text (deep nesting, alias
// explosions, huge scalars): a refusal is INVALID_ARGUMENT with a message that starts with
// the origin; an accepted config, printed as JSON by protobuf, loads again into the same
// message (so the loader and the schema's own JSON form agree).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gateway/config/config_loader.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<gateway::config::v1::Config> config =
      gateway::ParseConfigText(text, "fuzz.yaml");
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument ||
        !absl::StartsWith(config.status().message(), "fuzz.yaml:")) {
      std::fprintf(stderr, "unexpected error: %s\n", config.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  std::string json;
  // Printing fails for strings that are not UTF-8, which YAML scalars may hold.
  if (!google::protobuf::util::MessageToJsonString(*config, &json).ok()) return 0;
  absl::StatusOr<gateway::config::v1::Config> again = gateway::ParseConfigText(json, "fuzz.json");
  if (!again.ok()) {
    std::fprintf(stderr, "the JSON form does not load: %s\n%s\n",
                 again.status().ToString().c_str(), json.c_str());
    std::abort();
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(*config, *again)) {
    std::fprintf(stderr, "the JSON form loads differently:\n%s\n%s\n",
                 config->DebugString().c_str(), again->DebugString().c_str());
    std::abort();
  }
  return 0;
}
