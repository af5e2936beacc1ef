// OpenApiEndpoint: what the HTTP front end answers at the OpenAPI paths: the document of
// every served service at `path` ("/openapi.json"), and the document of one service at
// `service_path_prefix` + "<package.Service>.json".
//
// The documents are generated off the event loops: Prepare(table), called when a route
// table is published (config reload, registry change), hands the table to the endpoint's
// generator thread, which builds the whole document and every per-service document of that
// table and then swaps them in at once. Serve only reads finished bytes: until the new
// table's documents are ready it answers the previous table's (which describe the routes
// that were current a moment ago); before any document is ready it answers 503 with
// Retry-After: 1. Several tables published while one is generated collapse into the latest.
// The generator thread starts with the first Prepare; an endpoint never prepared (or
// disabled) starts none.
//
// Thread-safety: thread-safe; Serve may be called from every event loop at once, Prepare
// and WaitReady from any thread.
//
// Example:
//   auto endpoint = std::make_shared<const OpenApiEndpoint>(*settings);
//   endpoint->Prepare(table);                       // where the table is published
//   if (std::optional<OpenApiEndpoint::Response> r = endpoint->Serve(path, table)) {
//     respond(r->status, r->content_type, r->body);  // + Retry-After when retry_after_seconds
//   }
#ifndef GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_
#define GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/openapi/openapi_config.h"
#include "gateway/route_table.h"

namespace gateway::openapi {

class OpenApiEndpoint {
 public:
  struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    // > 0: answer a Retry-After header of this many seconds (the 503 while no document is
    // ready).
    int retry_after_seconds = 0;
  };

  // `settings` as validated by OpenApiSettingsFromConfig.
  explicit OpenApiEndpoint(OpenApiSettings settings) : settings_(std::move(settings)) {}
  // Stops the generator thread (waiting for a document being generated).
  ~OpenApiEndpoint();

  OpenApiEndpoint(const OpenApiEndpoint&) = delete;
  OpenApiEndpoint& operator=(const OpenApiEndpoint&) = delete;

  // For a request path (without the query): nullopt when the documents are disabled or
  // the path is not one of theirs; 404 with the JSON error body naming the service when
  // `table` serves no service of that name; else 200 with the latest ready document (of
  // `table`, or of the table published before it while `table`'s is generated), or 503
  // (retry_after_seconds = 1) with an UNAVAILABLE error body when no document (or none of
  // that service) is ready yet. Never generates. With a documentation page, also 200 with
  // the page (docs_path, with or without its last "/") and its files (docs_path + name).
  std::optional<Response> Serve(absl::string_view path,
                                const std::shared_ptr<const RouteTable>& table) const;

  // Hands `table` to the generator thread (started on the first call) and returns at once;
  // a table still waiting is replaced. Nothing when the documents are disabled.
  void Prepare(std::shared_ptr<const RouteTable> table) const;

  // Waits until the documents of `table` (null: of any table) are ready, at most
  // `timeout`; true when they are.
  bool WaitReady(const std::shared_ptr<const RouteTable>& table, absl::Duration timeout) const;

  const OpenApiSettings& settings() const { return settings_; }

 private:
  // The documents of one route table, immutable once made.
  struct Documents {
    std::weak_ptr<const RouteTable> table;
    // Not ok: generation failed; Serve answers this error.
    absl::Status status;
    std::shared_ptr<const std::string> all;
    absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> services;
  };

  std::shared_ptr<const Documents> Generate(const std::shared_ptr<const RouteTable>& table) const;
  void Run() const;
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const OpenApiSettings settings_;
  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const Documents> ready_ ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const RouteTable> pending_ ABSL_GUARDED_BY(mu_);
  mutable bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable std::thread generator_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::openapi

#endif  // GATEWAY_OPENAPI_OPENAPI_ENDPOINT_H_
