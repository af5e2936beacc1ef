// OpenApiEndpoint: what the HTTP front end answers at the OpenAPI paths: the document of
// every served service at `path` ("/openapi.json"), and the document of one service at
// `service_path_prefix` + "<package.Service>.json". Documents are generated from the route
// table the request was served with (config and registered services), once per table: a
// registry change publishes a new table, and the next request generates anew.
//
// Thread-safety: thread-safe; Serve may be called from every event loop at once.
//
// Example:
//   auto endpoint = std::make_shared<const OpenApiEndpoint>(*settings);
//   if (std::optional<OpenApiEndpoint::Response> r = endpoint->Serve(path, table)) {
//     respond(r->status, r->content_type, r->body);
//   }
#ifndef GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_
#define GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "gateway/openapi/openapi_config.h"
#include "gateway/route_table.h"

namespace gateway::openapi {

class OpenApiEndpoint {
 public:
  struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };

  // `settings` as validated by OpenApiSettingsFromConfig.
  explicit OpenApiEndpoint(OpenApiSettings settings) : settings_(std::move(settings)) {}

  // For a request path (without the query): nullopt when the documents are disabled or
  // the path is not one of theirs; else 200 with the document, or 404 with the JSON error
  // body naming the service when `table` serves no service of that name. With a
  // documentation page, also 200 with the page (docs_path, with or without its last "/")
  // and its files (docs_path + name).
  std::optional<Response> Serve(absl::string_view path,
                                const std::shared_ptr<const RouteTable>& table) const;

  const OpenApiSettings& settings() const { return settings_; }

 private:
  // The documents generated for one route table.
  struct Cache {
    std::weak_ptr<const RouteTable> table;
    std::shared_ptr<const std::string> all;
    absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> services;
  };

  // The document for `service` (empty: all) of `table`, from the cache or generated.
  absl::StatusOr<std::shared_ptr<const std::string>> Document(
      const std::shared_ptr<const RouteTable>& table, const std::string& service) const;

  const OpenApiSettings settings_;
  mutable absl::Mutex mu_;
  mutable Cache cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::openapi

#endif  // GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_
