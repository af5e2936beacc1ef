// PathMatcher: matches (HTTP method, URL path) against every google.api.http
// binding of every registered method, in time that depends on the number of
// path segments, not on the number of routes (a segment trie).
//
// PathMatcherBuilder is mutable and not thread-safe. The PathMatcher it builds
// is immutable and thread-safe: any number of threads may call Match at once.
//
// Example:
//   PathMatcherBuilder builder;
//   absl::StatusOr<HttpTemplate> t = ParseHttpTemplate("/v1/shelves/{shelf}");
//   absl::Status s = builder.Add("GET", *t, /*route_id=*/7, "Bookstore.GetShelf");
//   std::unique_ptr<const PathMatcher> matcher = std::move(builder).Build();
//   absl::StatusOr<PathMatch> m = matcher->Match("GET", "/v1/shelves/42");
//   // m->route_id == 7, m->bindings == {"42"}
//
// Matching rules:
// - A literal segment beats "*", which beats "**" (tried in that order, with
//   backtracking, so "/v1/a/b" still matches "/v1/*/c" | "/v1/a/b" correctly).
// - "*" matches one non-empty segment; "**" matches the remaining zero or more.
// - If the last path segment contains ':', the text after the last ':' is
//   first tried as the custom verb; if nothing matches that way, the path is
//   tried again as having no verb.
// - Bindings are percent-decoded: a single-segment variable decodes every
//   escape; a multi-segment variable keeps "%2F" encoded so that the segment
//   structure survives.
// - Literal segments are compared byte for byte with the raw path segment.
#ifndef GATEWAY_TRANSCODER_PATH_MATCHER_H_
#define GATEWAY_TRANSCODER_PATH_MATCHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "transcoder/http_template.h"

namespace gateway::transcoder {

struct PathMatch {
  int route_id = -1;
  // One decoded value per variable of the matched template, in the order of
  // HttpTemplate::variables.
  std::vector<std::string> bindings;
};

class PathMatcher {
 public:
  // Matches `path` (the URL path; anything from the first '?' or '#' on is
  // ignored) for `http_method` (compared exactly, e.g. "GET").
  // Returns the route and its variable bindings, or NOT_FOUND naming the
  // method and path when no route matches.
  absl::StatusOr<PathMatch> Match(absl::string_view http_method,
                                  absl::string_view path) const;

  // The number of routes added to the builder.
  size_t size() const { return routes_.size(); }

 private:
  friend class PathMatcherBuilder;
  struct Route {
    std::string http_method;
    HttpTemplate tmpl;
    int route_id;
  };
  struct Node {
    absl::flat_hash_map<std::string, std::unique_ptr<Node>> literals;
    std::unique_ptr<Node> wildcard;
    std::vector<int> ends;        // indexes into routes_: template ends here
    std::vector<int> multi_ends;  // indexes into routes_: "**" follows here
  };

  const Route* MatchNode(const Node& node, absl::Span<const absl::string_view> segs,
                         size_t i, absl::string_view http_method,
                         absl::string_view verb) const;
  const Route* Find(const std::vector<int>& candidates,
                    absl::string_view http_method, absl::string_view verb) const;

  Node root_;
  std::vector<Route> routes_;
};

class PathMatcherBuilder {
 public:
  // Adds one binding. `description` names the binding in conflict errors
  // (e.g. "pkg.Bookstore.GetBook (get \"/v1/books/{id}\")").
  // Returns INVALID_ARGUMENT when an earlier binding has the same HTTP method
  // and template shape (same literals, wildcards and verb, whatever the
  // variable names); the message names both descriptions.
  absl::Status Add(absl::string_view http_method, const HttpTemplate& tmpl,
                   int route_id, absl::string_view description);

  // Builds the matcher. The builder is left empty.
  std::unique_ptr<const PathMatcher> Build() &&;

 private:
  std::unique_ptr<PathMatcher> matcher_ = std::make_unique<PathMatcher>();
  absl::flat_hash_map<std::string, std::string> shapes_;  // key -> description
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_PATH_MATCHER_H_
