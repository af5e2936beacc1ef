#include "transcoder/path_matcher.h"

#include <utility>

#include "absl/container/inlined_vector.h"

#include "absl/strings/str_cat.h"
#include "transcoder/percent_encoding.h"

namespace gateway::transcoder {
namespace {

using Kind = HttpTemplate::Segment::Kind;

// Splits "/a/b/c" into {"a","b","c"}. "/" gives no segments; "/a/" gives
// {"a", ""} so that a trailing slash never matches a route without one.
using Segments = absl::InlinedVector<absl::string_view, 16>;

void SplitPath(absl::string_view path, Segments* segs) {
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  if (path.empty()) return;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == absl::string_view::npos) {
      segs->push_back(path.substr(start));
      return;
    }
    segs->push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

const PathMatcher::Route* PathMatcher::Find(const std::vector<int>& candidates,
                                            absl::string_view http_method,
                                            absl::string_view verb) const {
  for (int index : candidates) {
    const Route& r = routes_[index];
    if (r.http_method == http_method && r.tmpl.verb == verb) return &r;
  }
  return nullptr;
}

const PathMatcher::Route* PathMatcher::MatchNode(
    const Node& node, absl::Span<const absl::string_view> segs, size_t i,
    absl::string_view http_method, absl::string_view verb) const {
  if (i == segs.size()) {
    if (const Route* r = Find(node.ends, http_method, verb)) return r;
  } else {
    auto it = node.literals.find(segs[i]);
    if (it != node.literals.end()) {
      if (const Route* r = MatchNode(*it->second, segs, i + 1, http_method, verb)) {
        return r;
      }
    }
    if (node.wildcard != nullptr && !segs[i].empty()) {
      if (const Route* r = MatchNode(*node.wildcard, segs, i + 1, http_method, verb)) {
        return r;
      }
    }
  }
  return Find(node.multi_ends, http_method, verb);
}

absl::StatusOr<PathMatch> PathMatcher::Match(absl::string_view http_method,
                                             absl::string_view path) const {
  size_t cut = path.find_first_of("?#");
  if (cut != absl::string_view::npos) path = path.substr(0, cut);

  Segments segs;
  SplitPath(path, &segs);

  const Route* route = nullptr;
  if (!segs.empty()) {
    absl::string_view last = segs.back();
    size_t colon = last.rfind(':');
    if (colon != absl::string_view::npos) {
      absl::string_view verb = last.substr(colon + 1);
      segs.back() = last.substr(0, colon);
      route = MatchNode(root_, segs, 0, http_method, verb);
      if (route == nullptr) segs.back() = last;
    }
  }
  if (route == nullptr) route = MatchNode(root_, segs, 0, http_method, "");
  if (route == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no route for ", http_method, " ", path));
  }

  PathMatch match;
  match.route_id = route->route_id;
  match.bindings.reserve(route->tmpl.variables.size());
  for (const HttpTemplate::Variable& v : route->tmpl.variables) {
    size_t end = v.end_segment;
    if (end == route->tmpl.segments.size() && !route->tmpl.segments.empty() &&
        route->tmpl.segments.back().kind == Kind::kMultiWildcard) {
      end = segs.size();
    }
    std::string joined;
    for (size_t s = v.start_segment; s < end && s < segs.size(); ++s) {
      if (s != static_cast<size_t>(v.start_segment)) joined += '/';
      joined.append(segs[s].data(), segs[s].size());
    }
    match.bindings.push_back(PercentDecode(
        joined, v.multi_segment ? PercentDecodeMode::kKeepSlash
                                : PercentDecodeMode::kAll));
  }
  return match;
}

absl::Status PathMatcherBuilder::Add(absl::string_view http_method,
                                     const HttpTemplate& tmpl, int route_id,
                                     absl::string_view description) {
  std::string key = absl::StrCat(http_method, " ", tmpl.Shape());
  auto [it, inserted] = shapes_.emplace(key, std::string(description));
  if (!inserted) {
    return absl::InvalidArgumentError(
        absl::StrCat("conflicting HTTP rules: ", description, " and ", it->second,
                     " both match ", key));
  }
  int index = static_cast<int>(matcher_->routes_.size());
  matcher_->routes_.push_back(
      PathMatcher::Route{std::string(http_method), tmpl, route_id});

  PathMatcher::Node* node = &matcher_->root_;
  for (const HttpTemplate::Segment& seg : tmpl.segments) {
    switch (seg.kind) {
      case Kind::kLiteral: {
        std::unique_ptr<PathMatcher::Node>& child = node->literals[seg.literal];
        if (child == nullptr) child = std::make_unique<PathMatcher::Node>();
        node = child.get();
        break;
      }
      case Kind::kSingleWildcard:
        if (node->wildcard == nullptr) {
          node->wildcard = std::make_unique<PathMatcher::Node>();
        }
        node = node->wildcard.get();
        break;
      case Kind::kMultiWildcard:
        // Only the last segment can be "**" (enforced by the parser).
        node->multi_ends.push_back(index);
        return absl::OkStatus();
    }
  }
  node->ends.push_back(index);
  return absl::OkStatus();
}

std::unique_ptr<const PathMatcher> PathMatcherBuilder::Build() && {
  shapes_.clear();
  std::unique_ptr<const PathMatcher> result = std::move(matcher_);
  matcher_ = std::make_unique<PathMatcher>();
  return result;
}

}  // namespace gateway::transcoder
