// Transcoder: the one object the HTTP front end needs to serve REST/JSON
// calls of gRPC methods. Built once from a DescriptorPool and the services to
// expose, it routes (method, path) to a method binding, turns the HTTP request
// into protobuf bytes, turns protobuf responses into JSON (or raw HttpBody),
// and turns statuses into HTTP errors.
//
// Immutable after Create and thread-safe: share one instance between all
// threads (swap it as a whole when the descriptors change). The pool must
// outlive it.
//
// Example (one unary call):
//   absl::StatusOr<std::unique_ptr<const Transcoder>> t =
//       Transcoder::Create(pool, {"pkg.Bookstore"}, TranscoderOptions());
//   absl::StatusOr<RouteMatch> m = (*t)->Match("GET", "/v1/shelves/1/books");
//   if (!m.ok()) { /* 404: no route */ }
//   absl::StatusOr<std::string> request =
//       (*t)->TranslateRequest(*m, "page_size=5", body, content_type);
//   if (!request.ok()) {
//     /* 400 */ send(HttpStatusFromCode(request.status().code()),
//                    (*t)->ErrorBody(request.status()));
//   }
//   ... call m->plan->method with *request, get response bytes ...
//   absl::StatusOr<HttpResponseBody> out = (*t)->TranslateResponse(*m->plan, bytes);
//
// Streams: for a server stream, frame each TranslateResponse body with a
// StreamFramer(StreamFormatFor(accept)) and end with End() or, on a late
// error, Error(ErrorBody(status)). For a client stream, feed the body to a
// JsonStreamReader and send, for each message,
// request_translator().TranslateStreamMessage(...) followed by the bytes of
// request_translator().TranslatePathAndQuery(...).
#ifndef GATEWAY_TRANSCODER_TRANSCODER_H_
#define GATEWAY_TRANSCODER_TRANSCODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "transcoder/json_stream.h"
#include "transcoder/request_translator.h"
#include "transcoder/response_translator.h"
#include "transcoder/route_set.h"
#include "transcoder/status_mapping.h"

namespace gateway::transcoder {

struct TranscoderOptions {
  RouteSetOptions routes;
  RequestOptions request;
  ResponseOptions response;
  // Server-stream framing when the Accept header does not choose one.
  StreamFormat default_stream_format = StreamFormat::kJsonArray;
};

class Transcoder {
 public:
  // Builds the routes of `services` (see RouteSet::Create for the errors).
  static absl::StatusOr<std::unique_ptr<const Transcoder>> Create(
      const google::protobuf::DescriptorPool& pool,
      const std::vector<std::string>& services,
      const TranscoderOptions& options = TranscoderOptions());

  // NOT_FOUND when no route matches (see RouteSet::Match).
  absl::StatusOr<RouteMatch> Match(absl::string_view http_method,
                                   absl::string_view path) const {
    return routes_->Match(http_method, path);
  }

  // See RequestTranslator::Translate; uses the options given at Create.
  absl::StatusOr<std::string> TranslateRequest(const RouteMatch& match,
                                               absl::string_view query,
                                               absl::string_view body,
                                               absl::string_view content_type) const {
    return request_.Translate(match, query, body, content_type, options_.request);
  }

  // See ResponseTranslator::Translate; uses the options given at Create.
  absl::StatusOr<HttpResponseBody> TranslateResponse(const MethodPlan& plan,
                                                     absl::string_view proto) const {
    return response_.Translate(plan, proto, options_.response);
  }

  // The JSON error body for `status` (see ErrorBodyFormatter).
  std::string ErrorBody(const absl::Status& status) const {
    return errors_.Format(status);
  }
  std::string ErrorBody(absl::StatusCode code, absl::string_view message,
                        absl::string_view status_details_bin) const {
    return errors_.Format(code, message, status_details_bin);
  }

  // The server-stream framing for a request with this Accept header.
  StreamFormat StreamFormatFor(absl::string_view accept_header) const {
    return ChooseStreamFormat(accept_header, options_.default_stream_format);
  }

  const RouteSet& routes() const { return *routes_; }
  const RequestTranslator& request_translator() const { return request_; }
  const ResponseTranslator& response_translator() const { return response_; }
  const TranscoderOptions& options() const { return options_; }

 private:
  Transcoder(std::unique_ptr<const RouteSet> routes, const TranscoderOptions& options,
             const google::protobuf::DescriptorPool& pool)
      : routes_(std::move(routes)),
        options_(options),
        request_(*routes_),
        response_(*routes_),
        errors_(pool) {}

  std::unique_ptr<const RouteSet> routes_;
  TranscoderOptions options_;
  RequestTranslator request_;
  ResponseTranslator response_;
  ErrorBodyFormatter errors_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_TRANSCODER_H_
