// The OpenAPI settings of a gateway config (http_listener.openapi, the transcoding options
// the schemas follow, the auth rules), validated once; and the offline document of a
// descriptor set with those settings (what `gatewayctl openapi` prints).
//
// Thread-safety: pure functions; OpenApiSettings is a plain value.
//
// Example:
//   absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
//   absl::StatusOr<std::string> doc =
//       OpenApiFromDescriptorSet(bytes, "bookstore.v1.Bookstore", *s);
#ifndef GATEWAY_OPENAPI_OPENAPI_CONFIG_H_
#define GATEWAY_OPENAPI_OPENAPI_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/openapi/openapi.h"
#include "transcoder/route_set.h"

namespace gateway::openapi {

struct OpenApiSettings {
  bool enabled = true;
  std::string path = "/openapi.json";
  std::string service_path_prefix = "/openapi/";
  // The whole document's options (title, version, JSON naming, stream format, auth).
  // A per-service document uses them with the service's name as its title.
  OpenApiOptions document;
  // How the routes are built (expose_grpc_paths), for the offline document.
  transcoder::RouteSetOptions routes;

  // The documentation page's path ("/docs/"); empty: no page.
  std::string docs_path;
  // Its files by name below docs_path ("" is the page itself), filled by LoadDocsPage.
  struct File {
    std::string content_type;
    std::string content;
  };
  std::map<std::string, File> docs_files;
};

// The settings of `config` (defaults applied). Returns INVALID_ARGUMENT naming the key
// (http_listener.openapi.path, ...) when a path does not start with "/", the prefix does
// not end with "/", a path holds '?', '#' or whitespace, or a path takes /healthz or
// /readyz; also when docs_path does not start and end with "/" or comes without
// docs_assets_directory. Reads no files (see LoadDocsPage).
absl::StatusOr<OpenApiSettings> OpenApiSettingsFromConfig(const config::v1::Config& config);

// With settings->docs_path set: reads Swagger UI's files (swagger-ui-bundle.js,
// swagger-ui.css) from http_listener.openapi.docs_assets_directory (relative to `base_dir`)
// and builds the page that shows the document at settings->path. Returns INVALID_ARGUMENT
// naming the key and the file that cannot be read. Does nothing without docs_path.
absl::Status LoadDocsPage(const config::v1::Config& config, const std::string& base_dir,
                          OpenApiSettings* settings);

// The document of `service` (a full name) from a serialized FileDescriptorSet (protoc
// --include_imports), as the gateway serves it at service_path_prefix + SERVICE + ".json".
// Returns INVALID_ARGUMENT when the bytes are not a valid set, a route is invalid (the
// route set's message) or `service` is empty, and NOT_FOUND when the set has no such
// service.
absl::StatusOr<std::string> OpenApiFromDescriptorSet(absl::string_view descriptor_set,
                                                     const std::string& service,
                                                     const OpenApiSettings& settings);

}  // namespace gateway::openapi

#endif  // GATEWAY_OPENAPI_OPENAPI_CONFIG_H_
