// OpenAPI 3.1 documents of the REST surface the gateway serves, generated from the same
// compiled routes the requests are matched against (transcoder::RouteSet), so the document
// can never describe a route the gateway does not serve or miss one it does.
//
// What a document holds:
//   - one path per google.api.http binding (additional bindings too), with its path
//     parameters (a variable spanning several segments, e.g. {name=shelves/*}, becomes its
//     literal segments plus one parameter per wildcard: /v1/shelves/{name_1}), and query
//     parameters for the request fields that neither the path nor the body sets, named as
//     RequestTranslator reads them: dotted names into singular messages, repeated fields as
//     repeated keys, enums by name, maps as deepObject ("labels[key]=value"), well-known
//     types with a string form (wrappers, Timestamp, Duration, FieldMask);
//   - the request body (body "*": the request message; body "field": that field;
//     google.api.HttpBody: any content type; client streams: a JSON array or NDJSON);
//   - the response (response_body, HttpBody as raw content, server streams as a JSON
//     array, NDJSON or Server-Sent Events) and, for every other status, the error body
//     {code, message, details} (components/schemas/google.rpc.Status);
//   - components/schemas: every message and enum reachable from the routes, in the proto3
//     JSON mapping as the gateway writes it (lowerCamelCase or proto names, 64-bit
//     integers as strings, enums as names or numbers, well-known types in their JSON
//     forms), with the descriptors' source comments as descriptions;
//   - security schemes from the auth config (JWT providers, API keys, client certificates)
//     and, per operation, the requirement of the auth rule that covers the method.
// Bidi-streaming methods (not callable over HTTP) and bindings with a custom HTTP method
// OpenAPI has no field for are left out.
//
// Output is deterministic: the same routes and options give the same bytes.
//
// Thread-safety: pure functions.
//
// Example:
//   OpenApiOptions options;
//   absl::StatusOr<std::string> doc =
//       GenerateOpenApi(table->transcoder().routes(), {"bookstore.v1.Bookstore"}, options);
#ifndef GATEWAY_OPENAPI_OPENAPI_H_
#define GATEWAY_OPENAPI_OPENAPI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config/v1/config.pb.h"
#include "transcoder/json_stream.h"
#include "transcoder/route_set.h"

namespace gateway::openapi {

struct OpenApiOptions {
  // info.title; empty: the service's full name for a one-service document, else "gatewayd".
  std::string title;
  // info.version.
  std::string version = "1";
  // How the gateway writes JSON (http_listener.transcoding), so that the schemas describe
  // what clients receive.
  bool use_proto_field_names = false;
  bool enums_as_ints = false;
  // The framing of a server stream when the Accept header chooses none.
  transcoder::StreamFormat default_stream_format = transcoder::StreamFormat::kJsonArray;
  // The auth config: security schemes and per-method requirements. Empty: none.
  config::v1::Auth auth;
};

// The OpenAPI 3.1 document (pretty-printed JSON) of the routes of `services` (full names)
// in `routes`; every service that has routes when `services` is empty. Returns NOT_FOUND
// naming a service of `services` that is not in the routes' pool.
absl::StatusOr<std::string> GenerateOpenApi(const transcoder::RouteSet& routes,
                                            const std::vector<std::string>& services,
                                            const OpenApiOptions& options);

}  // namespace gateway::openapi

#endif  // GATEWAY_OPENAPI_OPENAPI_H_
