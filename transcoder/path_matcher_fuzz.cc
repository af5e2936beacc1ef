// Fuzz target: the path matcher. The input is lines: every line but the last
// is "<METHOD> <template>" to add to a fresh matcher (invalid ones are
// skipped), the last line is "<METHOD> <path>" to match against it and
// against a fixed table of routes.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "transcoder/path_matcher.h"

namespace {

using gateway::transcoder::HttpTemplate;
using gateway::transcoder::ParseHttpTemplate;
using gateway::transcoder::PathMatcher;
using gateway::transcoder::PathMatcherBuilder;

const PathMatcher& FixedMatcher() {
  static const PathMatcher* matcher = [] {
    PathMatcherBuilder builder;
    const char* kRoutes[][2] = {
        {"GET", "/v1/shelves/{shelf}/books/{book}"},
        {"GET", "/v1/{name=shelves/*/books/*}:get"},
        {"POST", "/v1/{name=projects/*/files/**}"},
        {"GET", "/v1/**"},
        {"GET", "/v1/shelves/special/books/*"},
        {"PATCH", "/{a}/{b}/{c}/{d}"},
        {"GET", "/v2/*/a/*/b/*/c"},
        {"GET", "/v2/x/*/y/*/z/*"},
        {"GET", "/"},
    };
    for (const auto& r : kRoutes) {
      absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(r[1]);
      if (!t.ok() || !builder.Add(r[0], *t, 0, r[1]).ok()) std::abort();
    }
    return std::move(builder).Build().release();
  }();
  return *matcher;
}

void CheckMatch(const PathMatcher& matcher, absl::string_view line) {
  std::pair<absl::string_view, absl::string_view> mp =
      absl::StrSplit(line, absl::MaxSplits(' ', 1));
  absl::StatusOr<gateway::transcoder::PathMatch> m = matcher.Match(mp.first, mp.second);
  if (!m.ok() && m.status().code() != absl::StatusCode::kNotFound) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> lines = absl::StrSplit(input, '\n');
  PathMatcherBuilder builder;
  int id = 0;
  for (size_t i = 0; i + 1 < lines.size() && i < 32; ++i) {
    std::pair<absl::string_view, absl::string_view> mt =
        absl::StrSplit(lines[i], absl::MaxSplits(' ', 1));
    absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(mt.second);
    if (t.ok()) (void)builder.Add(mt.first, *t, id++, mt.second);
  }
  std::unique_ptr<const PathMatcher> matcher = std::move(builder).Build();
  CheckMatch(*matcher, lines.back());
  CheckMatch(FixedMatcher(), lines.back());
  return 0;
}
