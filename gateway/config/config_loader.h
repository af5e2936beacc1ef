// Reads gatewayd's configuration (gateway.config.v1.Config) from YAML or JSON text.
//
// The text is mapped onto the protobuf schema field by field, so that every error names the
// key (as a path such as `backends[1].tls.ca_file`), its line, and what was wrong: an unknown
// key (with the known ones listed), a wrong type, a value out of range, a duplicate key.
// Keys are the proto field names; the lowerCamelCase JSON names are accepted too.
// `google.protobuf.Duration` fields take strings such as "10s", "250ms", "1.5s", "2m".
//
// A oneof takes one of its keys. Hostile text is refused with INVALID_ARGUMENT, not
// followed: lists or maps nested more than about 500 levels (yaml-cpp's parser guard), or
// 32 levels of config messages; YAML aliases that repeat the text into more than 100,000
// values or 16 MiB of strings ("billion laughs"). Values quoted in errors are cut to 64
// bytes and escaped.
//
// This only checks the shape of the text. Whether the values make sense together (required
// keys, backend names, files) is checked by CompileConfig (gateway/config/compiled_config.h).
//
// Thread-safe: these are free functions without shared state.
//
// Example:
//   absl::StatusOr<gateway::config::v1::Config> config =
//       gateway::LoadConfigFile("/etc/gatewayd/gateway.yaml");
//   if (!config.ok()) { std::cerr << config.status().message(); return 2; }

#ifndef GATEWAY_CONFIG_CONFIG_LOADER_H_
#define GATEWAY_CONFIG_CONFIG_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/v1/config.pb.h"

namespace gateway {

// Parses `text` (YAML, or JSON, which YAML reads as well) into a Config. `origin` names the
// source in error messages (usually the file name).
// Returns INVALID_ARGUMENT naming the key path, line and problem on any error.
absl::StatusOr<config::v1::Config> ParseConfigText(absl::string_view text,
                                                   absl::string_view origin);

// Reads and parses the file at `path`. Returns NOT_FOUND / PERMISSION_DENIED (from the file
// system) naming the path when it cannot be read, or ParseConfigText's errors.
absl::StatusOr<config::v1::Config> LoadConfigFile(const std::string& path);

// Reads a whole file into a string. Errors name the path and the system's reason.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace gateway

#endif  // GATEWAY_CONFIG_CONFIG_LOADER_H_
